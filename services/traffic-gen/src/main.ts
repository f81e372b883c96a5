#!/usr/bin/env node
import { main } from '@flowline/nf-runtime';
import { trafficGen } from './nf';

main(trafficGen);
