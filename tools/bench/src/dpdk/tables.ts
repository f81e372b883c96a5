/**
 * The benchmark's tables, made deterministically (a seeded generator, so every run classifies
 * against the same rules): a 1,000-rule ACL and a 10,000-route LPM table. testpmd's flowgen
 * sends UDP from 10.254.0.0/16 to 10.253.0.0/16 (ports 1000 -> 1001); exactly one ACL rule and a
 * /16 route cover that traffic, and every other rule or route is realistic noise around it.
 */
import type { AclRule, RoutingTable } from '@flowline/dpdk';

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
export function benchAcl(n = 1000): AclRule[] {
  const r = rng(0xac1);
  const rules: AclRule[] = [];
  for (let i = 0; i < n - 1; i++) {
    const lo = r() % 60000;
    const proto = (['tcp', 'udp', 'tcp', 'udp', 'icmp'] as const)[r() % 5]!;
    rules.push({
      id: `noise${i}`,
      action: r() % 3 ? 'deny' : 'permit',
      proto,
      src: prefix4(r, 8, 32, 10),
      dst: prefix4(r, 8, 32, 10),
      ...(proto !== 'icmp' ? { dstPort: [lo, lo + (r() % 2000)] as [number, number] } : {}),
    });
  }
  rules.push({
    id: 'flowgen',
    action: 'permit',
    proto: 'udp',
    src: '10.254.0.0/16',
    dst: '10.253.0.0/16',
    dstPort: 1001,
  });
  return rules;
}

/** 10,000 routes over 16 next hops on the NF's one port; flowgen's /16 among them. */
export function benchRoutes(port: number, n = 10_000): RoutingTable {
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
