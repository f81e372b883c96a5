/**
 * The tables of the NF-bound benchmark and the flows that exercise them, deterministic (seeded):
 *
 * - ACL: `n` rules; rule i (of n - 4) owns the destination block 10.0.0.0 + i * 256, with a
 *   destination prefix /24, /28 or /32 inside it, a source prefix /8, /16, /24 or /32 anywhere,
 *   TCP or UDP, and an exact destination port (70%) or a range of up to 1,000; a third deny. Four broad rules follow (/8 and /9
 *   destinations, port ranges), then the default (deny). 90% of flows fit their rule; 10% miss
 *   it on the port and fall through to the broad rules or the default. Since no other specific
 *   rule reaches into a rule's block, the rule a flow hits is known by construction (the unit
 *   tests check it against a first-match scan of every rule).
 * - IPv4 routes: /8s, /16s, /24s and, every 50th /24, a group of eight /25../32 routes (tbl8
 *   groups), nested so that every route has an address that it, and no longer route, covers;
 *   one flow per route.
 * - IPv6 routes: /16, /32, and per /48 block a /56, four /64s and a /128, 8,192 in all.
 *
 * Also the same ACL as OpenFlow flows (port ranges as value/mask matches) for OVS.
 */
import type { TextAclRule, TextRoutingTable } from '../dpdk/tables';
import { must } from '../must';

import { TCP, UDP, newFlows, rng, shuffle, type Flows } from './trace';

export interface BenchRule {
  action: 'permit' | 'deny';
  proto: number;
  src: number;
  srcLen: number;
  dst: number;
  dstLen: number;
  /** inclusive; [0, 65535] is any port */
  dport: [number, number];
}

export const ip4 = (n: number): string => [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');
const mask = (len: number): number => (len === 0 ? 0 : (~0 << (32 - len)) >>> 0);
export const BROAD_RULES = 4;

const broad: BenchRule[] = [
  { action: 'deny', proto: TCP, src: 0, srcLen: 0, dst: 0x0a000000, dstLen: 9, dport: [0, 1023] },
  {
    action: 'permit',
    proto: UDP,
    src: 0,
    srcLen: 0,
    dst: 0x0a000000,
    dstLen: 8,
    dport: [1024, 65535],
  },
  {
    action: 'permit',
    proto: TCP,
    src: 0,
    srcLen: 0,
    dst: 0x0a800000,
    dstLen: 9,
    dport: [1024, 65535],
  },
  { action: 'deny', proto: TCP, src: 0, srcLen: 0, dst: 0x0a000000, dstLen: 8, dport: [0, 32767] },
];

/** n rules in priority order (first match wins): n - 4 specific ones, then the 4 broad ones. */
export function benchRules(n: number, seed = 0xac1): BenchRule[] {
  if (n <= BROAD_RULES) throw new RangeError(`an ACL of ${n} rules: at least ${BROAD_RULES + 1}`);
  const r = rng(seed);
  const out: BenchRule[] = [];
  for (let i = 0; i < n - BROAD_RULES; i++) {
    // the lengths firewall rules use: subnets and hosts (OVS's megaflow cache has one subtable
    // per combination of masks, so these lengths also decide how many it searches)
    const dstLen = must([24, 28, 32][r() % 3], 'destination prefix length');
    const block = (0x0a000000 + i * 256) >>> 0;
    const dst = (block | (r() & 0xff & mask(dstLen))) >>> 0;
    const srcLen = must([8, 16, 24, 24, 32, 32][r() % 6], 'source prefix length');
    let first = 1 + (r() % 223);
    if (first === 10 || first === 127) first = 11;
    const src = ((first << 24) | (r() & 0xffffff)) & mask(srcLen);
    const lo = 1 + (r() % 60_000);
    const dport: [number, number] = r() % 10 < 7 ? [lo, lo] : [lo, lo + (r() % 1000)];
    out.push({
      action: r() % 3 === 0 ? 'deny' : 'permit',
      proto: r() % 2 ? UDP : TCP,
      src: src >>> 0,
      srcLen,
      dst,
      dstLen,
      dport,
    });
  }
  return [...out, ...broad];
}

/** The rules as Flowline rules (the API's match fields; parseAcl makes them @flowline/dpdk's). */
export function toAclRules(rules: readonly BenchRule[]): TextAclRule[] {
  return rules.map((x, i) => ({
    id: `r${i}`,
    action: x.action,
    match: {
      protocol: x.proto === TCP ? 'tcp' : 'udp',
      ...(x.srcLen ? { srcPrefix: `${ip4(x.src)}/${x.srcLen}` } : {}),
      dstPrefix: `${ip4(x.dst)}/${x.dstLen}`,
      ...(x.dport[0] === 0 && x.dport[1] === 65535
        ? {}
        : { dstPorts: { first: x.dport[0], last: x.dport[1] } }),
    },
  }));
}

/** Does the rule match the 5-tuple? */
export function ruleMatches(
  x: BenchRule,
  src: number,
  dst: number,
  proto: number,
  dport: number,
): boolean {
  return (
    x.proto === proto &&
    ((src ^ x.src) & mask(x.srcLen)) === 0 &&
    ((dst ^ x.dst) & mask(x.dstLen)) === 0 &&
    dport >= x.dport[0] &&
    dport <= x.dport[1]
  );
}

/** The index of the first matching rule, or rules.length (the default action). */
export function firstMatch(
  rules: readonly BenchRule[],
  src: number,
  dst: number,
  proto: number,
  dport: number,
  from = 0,
): number {
  const at = rules.slice(from).findIndex((x) => ruleMatches(x, src, dst, proto, dport));
  return at < 0 ? rules.length : from + at;
}

/**
 * `n` flows over the rules, flow f built for specific rule f mod (rules - 4), shuffled; each
 * one's `expect` is the rule it hits (rules.length: the default).
 */
export function aclFlows(rules: readonly BenchRule[], n: number, seed = 0xf10): Flows {
  const specific = rules.length - BROAD_RULES;
  const r = rng(seed);
  const f = newFlows(4, n);
  const src = f.src as Uint32Array;
  const dst = f.dst as Uint32Array;
  for (let i = 0; i < n; i++) {
    const k = i % specific;
    const x = must(rules[k], 'specific rule');
    src[i] = (x.src | (r() & ~mask(x.srcLen))) >>> 0;
    dst[i] = (x.dst | (r() & ~mask(x.dstLen))) >>> 0;
    f.proto[i] = x.proto;
    // flows of one rule differ in their source port: no two flows of a trace are the same flow
    f.sport[i] = 1024 + Math.floor(i / specific);
    const miss = r() % 10 === 0;
    const [lo, hi] = x.dport;
    f.dport[i] = miss ? (hi < 65535 ? hi + 1 : lo - 1) : lo + (r() % (hi - lo + 1));
    // read back as stored: a typed array converts what it is given
    f.expect[i] = miss
      ? firstMatch(
          rules,
          must(src[i], 'flow source'),
          must(dst[i], 'flow destination'),
          x.proto,
          must(f.dport[i], 'flow destination port'),
          specific,
        )
      : k;
  }
  shuffle(f, seed ^ 0x5a5a);
  return f;
}

export interface Routes4 {
  /** routes in order: route i's hits are routeHits()[i] */
  table: TextRoutingTable;
  lens: Uint8Array;
  flows: Flows;
}

/**
 * About `n` IPv4 routes (exactly n when n is large enough) over 16 next hops on `port`, with
 * one flow per route to an address only that route covers as the longest prefix.
 */
export function benchRoutes4(n: number, port: number, seed = 0x1b3): Routes4 {
  const prefixes: number[] = [];
  const lens: number[] = [];
  const reps: number[] = [];
  const add = (a: number, len: number, rep: number): void => {
    prefixes.push(a >>> 0);
    lens.push(len);
    reps.push(rep >>> 0);
  };
  // the /8s own x.255.0.0/16 (no /16 there), each /16 owns a.b.255.0/24 (no /24 there)
  const eights = Math.max(1, Math.min(40, Math.ceil(n / 60_000)));
  for (let a = 0; a < eights; a++) add((11 + a) << 24, 8, ((11 + a) << 24) | 0xff0001);
  // within a tbl8 /24 the longer routes nest: .128/25 > .192/27 > .200/30, .250/32 in /25,
  // .64/26 > .96/28, .16/29, .40/31; each one's own address in brackets
  const long: [number, number, number][] = [
    [128, 25, 129],
    [192, 27, 193],
    [200, 30, 201],
    [250, 32, 250],
    [64, 26, 65],
    [96, 28, 97],
    [16, 29, 17],
    [40, 31, 40],
  ];
  outer: for (let a = 0; a < eights; a++) {
    for (let b = 0; b < 255; b++) {
      const b16 = ((11 + a) << 24) | (b << 16);
      if (prefixes.length >= n) break outer;
      add(b16, 16, b16 | 0xff01);
      for (let c = 0; c < 255; c++) {
        const c24 = b16 | (c << 8);
        const group = prefixes.length % 50 === 0;
        if (prefixes.length + (group ? 9 : 1) > n) break outer;
        add(c24, 24, c24 | 1);
        if (group) for (const [off, len, rep] of long) add(c24 | off, len, c24 | rep);
      }
    }
  }
  const r = rng(seed);
  const nextHops = Array.from({ length: 16 }, (_, i) => ({
    port,
    mac: `02:00:00:00:01:${i.toString(16).padStart(2, '0')}`,
  }));
  const table: TextRoutingTable = {
    nextHops,
    routes: prefixes.map((p, i) => ({ prefix: `${ip4(p)}/${lens[i]}`, nextHop: r() % 16 })),
  };
  const flows = newFlows(4, prefixes.length);
  const src = flows.src as Uint32Array;
  const dst = flows.dst as Uint32Array;
  // reps has an entry per prefix (add)
  for (const [i, rep] of reps.entries()) {
    src[i] = (0xc0000000 | (r() & 0xffffff)) >>> 0;
    dst[i] = rep;
    flows.proto[i] = UDP;
    flows.sport[i] = 1024 + (r() % 64_000);
    flows.dport[i] = 1 + (r() % 65_000);
    flows.expect[i] = i;
  }
  shuffle(flows, seed ^ 0x77);
  return { table, lens: Uint8Array.from(lens), flows };
}

function ip6(words: number[]): Uint8Array {
  const b = new Uint8Array(16);
  words.forEach((w, i) => {
    b[i * 2] = w >>> 8;
    b[i * 2 + 1] = w & 0xff;
  });
  return b;
}
const fmt6 = (b: Uint8Array): string => {
  const words = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return Array.from({ length: 8 }, (_, i) => words.getUint16(i * 2).toString(16)).join(':');
};

export interface Routes6 {
  table: TextRoutingTable;
  flows: Flows;
}

/** 8,192 IPv6 routes (/16 to /128) and `n` flows spread evenly over them. */
export function benchRoutes6(n: number, port: number, seed = 0x6b3): Routes6 {
  const routes: [Uint8Array, number, Uint8Array][] = [
    [ip6([0x2001]), 16, ip6([0x2001, 1, 0, 0, 0, 0, 0, 1])],
    [ip6([0x2001, 0xdb8]), 32, ip6([0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 1])],
  ];
  for (let k = 0; routes.length + 7 <= 8192; k++) {
    routes.push([ip6([0x2001, 0xdb8, k]), 48, ip6([0x2001, 0xdb8, k, 0xffff, 0, 0, 0, 1])]);
    routes.push([ip6([0x2001, 0xdb8, k, 0x100]), 56, ip6([0x2001, 0xdb8, k, 0x1ff, 0, 0, 0, 1])]);
    for (let j = 0; j < 4; j++)
      routes.push([ip6([0x2001, 0xdb8, k, j]), 64, ip6([0x2001, 0xdb8, k, j, 0, 0, 0, 1])]);
    const host = ip6([0x2001, 0xdb8, k, 0, 0, 0, 0, 0xff]);
    routes.push([host, 128, host]);
  }
  const r = rng(seed);
  const table: TextRoutingTable = {
    nextHops: Array.from({ length: 16 }, (_, i) => ({
      port,
      mac: `02:00:00:00:06:${i.toString(16).padStart(2, '0')}`,
    })),
    routes: routes.map(([a, len]) => ({ prefix: `${fmt6(a)}/${len}`, nextHop: r() % 16 })),
  };
  const flows = newFlows(6, n);
  const src = flows.src as Uint8Array;
  const dst = flows.dst as Uint8Array;
  for (let i = 0; i < n; i++) {
    const k = i % routes.length;
    src.set(ip6([0x2001, 0xdb9, r() & 0xffff, 0, 0, 0, 0, r() & 0xffff]), i * 16);
    dst.set(must(routes[k], 'route')[2], i * 16);
    flows.proto[i] = UDP;
    flows.sport[i] = 1024 + (r() % 64_000);
    flows.dport[i] = 1 + (r() % 65_000);
    flows.expect[i] = k;
  }
  shuffle(flows, seed ^ 0x66);
  return { table, flows };
}

/** [value, mask] pairs whose union is exactly lo..hi (16-bit). */
export function portMasks(lo: number, hi: number): [number, number][] {
  const out: [number, number][] = [];
  let v = lo;
  while (v <= hi) {
    let size = v === 0 ? 65536 : v & -v;
    while (v + size - 1 > hi) size >>= 1;
    out.push([v, 0xffff & ~(size - 1)]);
    v += size;
  }
  return out;
}

/**
 * The rules as OpenFlow flows in `table` (first rule highest priority), `permit` and `deny`
 * the actions; `match` is prepended to every match (e.g. "ct_state=+trk+new,").
 */
export function openflowAcl(
  rules: readonly BenchRule[],
  o: { table: number; permit: string; deny: string; match?: string; default: string },
): string[] {
  const flows: string[] = [];
  rules.forEach((x, i) => {
    const base =
      `table=${o.table},priority=${60_000 - i},${o.match ?? ''}${x.proto === TCP ? 'tcp' : 'udp'}` +
      (x.srcLen ? `,nw_src=${ip4(x.src)}/${x.srcLen}` : '') +
      `,nw_dst=${ip4(x.dst)}/${x.dstLen}`;
    const act = ` actions=${x.action === 'permit' ? o.permit : o.deny}`;
    if (x.dport[0] === 0 && x.dport[1] === 65535) flows.push(base + act);
    else
      for (const [v, m] of portMasks(x.dport[0], x.dport[1]))
        flows.push(`${base},tp_dst=0x${v.toString(16)}/0x${m.toString(16)}${act}`);
  });
  flows.push(`table=${o.table},priority=0 actions=${o.default}`);
  return flows;
}

/**
 * The rules as an nftables ruleset for the Linux kernel peer (table `inet flnb`, forward hook):
 * the specific rules, whose destination blocks never overlap, as one interval verdict map keyed
 * on protocol . source . destination . destination port (a set lookup, the way an nftables user
 * writes a large ACL; first match is kept because no two specific rules overlap), then the broad
 * rules in order, then the default; a counter on every rule. Stateful: a flow the ACL permitted
 * is marked at commit (`ct mark 1`) and its later packets skip the ACL, as in the OVS ct() case
 * (the trace's flows are one-way SYNs, so Linux keeps them `new` and +est never matches).
 */
export function nftAcl(rules: readonly BenchRule[], o: { stateful: boolean }): string {
  const specific = rules.length - BROAD_RULES;
  for (const [i, x] of rules.entries()) {
    if (i >= specific) break;
    if (x.dstLen < 24 || x.dst >>> 8 !== (0x0a000000 + i * 256) >>> 8)
      throw new RangeError(`rule ${i} leaves its destination block: no verdict map for it`);
  }
  const proto = (x: BenchRule): string => (x.proto === TCP ? 'tcp' : 'udp');
  const ports = (x: BenchRule): string =>
    x.dport[0] === x.dport[1] ? `${x.dport[0]}` : `${x.dport[0]}-${x.dport[1]}`;
  const permit = o.stateful ? 'jump permit_flow' : 'accept';
  const verdict = (x: BenchRule): string => (x.action === 'permit' ? permit : 'drop');
  const elements = rules
    .slice(0, specific)
    .map(
      (x) =>
        `${proto(x)} . ${ip4(x.src)}/${x.srcLen} . ${ip4(x.dst)}/${x.dstLen} . ${ports(x)} : ${verdict(x)}`,
    );
  const broad = rules
    .slice(specific)
    .map(
      (x) =>
        `    ${x.srcLen ? `ip saddr ${ip4(x.src)}/${x.srcLen} ` : ''}ip daddr ${ip4(x.dst)}/${x.dstLen} ` +
        `${proto(x)} dport ${ports(x)} counter ${verdict(x)}`,
    );
  return [
    'table inet flnb {',
    '  map acl {',
    '    type inet_proto . ipv4_addr . ipv4_addr . inet_service : verdict',
    '    flags interval',
    '    counter',
    `    elements = { ${elements.join(',\n      ')} }`,
    '  }',
    ...(o.stateful ? ['  chain permit_flow {', '    ct mark set 1 accept', '  }'] : []),
    '  chain acl_forward {',
    '    type filter hook forward priority 0; policy drop;',
    ...(o.stateful ? ['    ct mark 1 counter accept'] : []),
    '    meta l4proto . ip saddr . ip daddr . th dport vmap @acl',
    ...broad,
    '    counter drop',
    '  }',
    '}',
    '',
  ].join('\n');
}
