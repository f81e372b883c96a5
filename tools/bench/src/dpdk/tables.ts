/**
 * The vhost-user topology's traffic and tables, made deterministically (a seeded generator, so
 * every run classifies against the same rules): the generator's frames, UDP from 10.254.0.0/16
 * to 10.253.0.0/16 (destination port 1001), a 1,000-rule ACL and a 10,000-route LPM table.
 * Exactly one ACL rule and a /16 route cover that traffic, and every other rule or route is
 * realistic noise around it.
 */
import type { AclRule, RoutingTable } from '@flowline/dpdk';
import {
  type MatchFields,
  flowFrame,
  parseMac,
  parsePrefix,
  validateMatch,
} from '@flowline/packet';

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
    if (first === 0 || first >= 224 || first === avoid) continue; // keep the generator's 10/8 clear
    return `${ip4(addr)}/${len}`;
  }
}

/** The ACL: 999 rules that do not match the generator's frames, then the one that permits them. */
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
    id: 'generator',
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

/** 10,000 routes over 16 next hops on the NF's one port; the generator's /16 among them. */
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

/** Flows the generator sends, one 60-byte frame each (64 on the wire). */
export const GENERATOR_FLOWS = 1024;

/**
 * The generator's frames: UDP from 10.254.0.0/16 to 10.253.0.0/16, destination port 1001, source
 * ports 1024 and up; both addresses vary, so the NFs see GENERATOR_FLOWS flows.
 */
export function generatorFrames(n = GENERATOR_FLOWS): Buffer[] {
  return Array.from({ length: n }, (_, i) =>
    flowFrame({
      srcMac: '02:00:00:00:00:01',
      dstMac: '02:00:00:00:00:02',
      src: `10.254.${i >> 8}.${i & 255}`,
      dst: `10.253.${i & 255}.${(i * 37) & 255}`,
      protocol: 'udp',
      srcPort: 1024 + i,
      dstPort: 1001,
      // 14 + 20 + 8 + 18 = 60 bytes
      payload: new Uint8Array(18),
    }),
  );
}
