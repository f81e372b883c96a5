#!/usr/bin/env node
/** flowline-firewall: the firewall NF as a process (pods, the local node, tests). */
import { main } from '@flowline/nf-runtime';
import { firewallDefinition } from './firewall';

main(firewallDefinition);
