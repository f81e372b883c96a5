/**
 * The benchmark's tables, made deterministically (a seeded generator, so every run classifies
 * against the same rules): a 1,000-rule ACL and a 10,000-route LPM table. testpmd's flowgen
 * sends UDP from 10.254.0.0/16 to 10.253.0.0/16 (ports 1000 -> 1001); exactly one ACL rule and a
 * /16 route cover that traffic, and every other rule or route is realistic noise around it.
 */
import type { AclRule, RoutingTable } from '@flowline/dpdk';
import { type MatchFields, parseMac, parsePrefix, validateMatch } from '@flowline/packet';

import { must } from '../must';

/** An ACL rule as the bench writes it (also as JSON between processes): the API's match fields. */
export interface TextAclRule {
  id: string;
  action: 'permit' | 'deny';
  match: MatchFields;
}

/** A routing table as the bench writes it: prefixes and MACs as text. */
export interface TextRoutingTable {
  nextHops: { port: number; mac: string }[];
  routes: { prefix: string; nextHop: number }[];
}

/** The bench's rules in @flowline/dpdk's form, parsed and validated by @flowline/packet. */
export function parseAcl(rules: readonly TextAclRule[]): AclRule[] {
  return rules.map((r, i) => ({
    id: r.id,
    action: r.action,
    match: validateMatch(r.match, `rules[${i}]`),
  }));
}

/** The bench's table in @flowline/dpdk's form, parsed by @flowline/packet. */
export function parseRoutes(t: TextRoutingTable): RoutingTable {
  return {
    nextHops: t.nextHops.map((h) => ({ port: h.port, mac: parseMac(h.mac) })),
    routes: t.routes.map((r) => ({ prefix: parsePrefix(r.prefix), nextHop: r.nextHop })),
  };
}

/** xorshift32: small, deterministic, good enough to scatter prefixes. */
export function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

const ip4 = (n: number): string => [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');

function prefix4(r: () => number, minLen: number, maxLen: number, avoid: number): string {
  for (;;) {
    const len = minLen + (r() % (maxLen - minLen + 1));
    const addr = (r() & (len === 0 ? 0 : ~0 << (32 - len))) >>> 0;
    const first = addr >>> 24;
    if (first === 0 || first >= 224 || first === avoid) continue; // keep flowgen's 10/8 clear
    return `${ip4(addr)}/${len}`;
  }
}

/** The ACL: 999 rules that do not match flowgen's traffic, then the one that permits it. */
export function benchAcl(n = 1000): TextAclRule[] {
  const r = rng(0xac1);
  const rules: TextAclRule[] = [];
  for (let i = 0; i < n - 1; i++) {
    const lo = r() % 60000;
    const proto = must((['tcp', 'udp', 'tcp', 'udp', 'icmp'] as const)[r() % 5], 'protocol');
    rules.push({
      id: `noise${i}`,
      action: r() % 3 ? 'deny' : 'permit',
      match: {
        protocol: proto,
        srcPrefix: prefix4(r, 8, 32, 10),
        dstPrefix: prefix4(r, 8, 32, 10),
        ...(proto !== 'icmp' ? { dstPorts: { first: lo, last: lo + (r() % 2000) } } : {}),
      },
    });
  }
  rules.push({
    id: 'flowgen',
    action: 'permit',
    match: {
      protocol: 'udp',
      srcPrefix: '10.254.0.0/16',
      dstPrefix: '10.253.0.0/16',
      dstPorts: { first: 1001, last: 1001 },
    },
  });
  return rules;
}

/** 10,000 routes over 16 next hops on the NF's one port; flowgen's /16 among them. */
export function benchRoutes(port: number, n = 10_000): TextRoutingTable {
  const r = rng(0x1b3);
  const nextHops = Array.from({ length: 16 }, (_, i) => ({
    port,
    mac: `02:00:00:00:01:${i.toString(16).padStart(2, '0')}`,
  }));
  const seen = new Set<string>(['10.253.0.0/16']);
  const routes = [{ prefix: '10.253.0.0/16', nextHop: 0 }];
  while (routes.length < n) {
    const p = prefix4(r, 12, 28, 10);
    if (seen.has(p)) continue;
    seen.add(p);
    routes.push({ prefix: p, nextHop: r() % nextHops.length });
  }
  return { nextHops, routes };
}
