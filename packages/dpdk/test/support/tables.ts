/**
 * ACL rules and routing tables as the tests write them (text, in the API's field names), parsed
 * by @flowline/packet into the values the pipeline takes, as a firewall or router does.
 */
import {
  type MatchFields,
  parseAddress,
  parseMac,
  parsePrefix,
  validateMatch,
} from '@flowline/packet';

import type { AclRule, RoutingTable } from '../../src/index';

/** A rule as firewall.v1 writes one: id, action, priority and the match fields, flat. */
export interface TestRule extends MatchFields {
  id?: string;
  action: 'permit' | 'deny';
  priority?: number;
}

export function acl(rules: readonly TestRule[]): AclRule[] {
  return rules.map(({ id, action, priority, ...fields }, i) => ({
    ...(id !== undefined ? { id } : {}),
    action,
    ...(priority !== undefined ? { priority } : {}),
    match: validateMatch(fields, `rules[${i}]`),
  }));
}

export interface TestTable {
  nextHops: { port: number; mac: string; srcMac?: string; mtu?: number }[];
  routes: { prefix: string; nextHop: number }[];
  localAddresses?: string[];
}

export function routingTable(t: TestTable): RoutingTable {
  return {
    nextHops: t.nextHops.map((h) => ({
      port: h.port,
      mac: parseMac(h.mac),
      ...(h.srcMac !== undefined ? { srcMac: parseMac(h.srcMac) } : {}),
      ...(h.mtu !== undefined ? { mtu: h.mtu } : {}),
    })),
    routes: t.routes.map((r) => ({ prefix: parsePrefix(r.prefix), nextHop: r.nextHop })),
    ...(t.localAddresses ? { localAddresses: t.localAddresses.map(parseAddress) } : {}),
  };
}
