#!/usr/bin/env node
/** flowline-ipsec-gw: the IPsec gateway NF as a process (pods, the local node, tests). */
import { main } from '@flowline/nf-runtime';
import { ipsecGatewayDefinition } from './gateway';

main(ipsecGatewayDefinition);
