#!/usr/bin/env node
/** flowline-router: the router NF as a process (pods, the local node, tests). */
import { main } from '@flowline/nf-runtime';
import { routerDefinition } from './router';

main(routerDefinition);
