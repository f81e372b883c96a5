import { compileAcl, compileRoutes, parsePacket } from '@flowline/dpdk';
import { parseAddress, parsePrefix } from '@flowline/packet';
import { describe, expect, it } from 'vitest';

import { parseAcl, parseRoutes } from '../dpdk/tables';

import {
  BROAD_RULES,
  aclFlows,
  benchRoutes4,
  benchRoutes6,
  benchRules,
  firstMatch,
  ip4,
  openflowAcl,
  portMasks,
  toAclRules,
} from './rules';
import { FRAME4, FRAME6, pcapOf, readPcap, rng } from './trace';

/** Longest prefix match by brute force over route strings (IPv4 or IPv6 bytes). */
function lpm(prefixes: string[], addr: Uint8Array): number {
  let best = -1;
  let bestLen = -1;
  prefixes.forEach((p, i) => {
    const x = parsePrefix(p);
    if (x.bytes.length !== addr.length || x.length <= bestLen) return;
    for (let bit = 0; bit < x.length; bit++) {
      const m = 0x80 >> (bit & 7);
      if ((x.bytes[bit >> 3]! & m) !== (addr[bit >> 3]! & m)) return;
    }
    best = i;
    bestLen = x.length;
  });
  return best;
}

const be = (n: number): Uint8Array => parseAddress(ip4(n)).bytes;

describe('NF-bound benchmark tables and flows', () => {
  it('every ACL flow hits the rule it says, by a first-match scan of every rule', () => {
    for (const n of [40, 1000]) {
      const rules = benchRules(n);
      expect(rules).toHaveLength(n);
      const f = aclFlows(rules, 5000);
      const src = f.src as Uint32Array;
      const dst = f.dst as Uint32Array;
      for (let i = 0; i < f.length; i++)
        expect(firstMatch(rules, src[i]!, dst[i]!, f.proto[i]!, f.dport[i]!)).toBe(f.expect[i]);
    }
  });

  it('ACL flows reach every specific rule, some broad rules and the default; a third deny', () => {
    const rules = benchRules(1000);
    const f = aclFlows(rules, 65_536);
    const hit = new Set(f.expect);
    for (let r = 0; r < 1000 - BROAD_RULES; r++) expect(hit.has(r)).toBe(true);
    expect(hit.has(1000)).toBe(true); // the default
    expect([...hit].filter((r) => r >= 1000 - BROAD_RULES && r < 1000).length).toBeGreaterThan(1);
    const deny = rules.filter((r) => r.action === 'deny').length;
    expect(deny).toBeGreaterThan(250);
    expect(deny).toBeLessThan(420);
    expect(rules.some((r) => r.dport[1] > r.dport[0])).toBe(true); // ranges
    expect(new Set(rules.slice(0, -BROAD_RULES).map((r) => r.srcLen))).toEqual(
      new Set([8, 16, 24, 32]),
    );
    expect(new Set(rules.slice(0, -BROAD_RULES).map((r) => r.dstLen))).toEqual(
      new Set([24, 28, 32]),
    );
  });

  it('the rules are valid Flowline rules, the same on every run', () => {
    const a = toAclRules(benchRules(1000));
    expect(compileAcl(parseAcl(a))).toHaveLength(1000);
    expect(a).toEqual(toAclRules(benchRules(1000)));
    expect(aclFlows(benchRules(100), 100).expect).toEqual(aclFlows(benchRules(100), 100).expect);
  });

  it('IPv4 routes: every flow lands on its own route as the longest prefix; /8../32, tbl8 groups', () => {
    const r = benchRoutes4(3000, 7);
    expect(r.table.routes).toHaveLength(3000);
    const prefixes = r.table.routes.map((x) => x.prefix);
    expect(new Set(prefixes).size).toBe(3000);
    expect(new Set(r.flows.expect).size).toBe(3000);
    for (let i = 0; i < r.flows.length; i += 7)
      expect(lpm(prefixes, be((r.flows.dst as Uint32Array)[i]!))).toBe(r.flows.expect[i]);
    const lens = new Set(r.lens);
    for (const l of [8, 16, 24, 25, 26, 27, 28, 29, 30, 31, 32]) expect(lens.has(l)).toBe(true);
    expect(compileRoutes(parseRoutes(r.table), () => Buffer.alloc(6)).routes).toHaveLength(3000);
    expect(benchRoutes4(1_000_000, 0).table.routes).toHaveLength(1_000_000);
  });

  it('IPv6 routes: 8,192 of /16../128, flows spread evenly, longest prefix is theirs', () => {
    const r = benchRoutes6(16_384, 1);
    const prefixes = r.table.routes.map((x) => x.prefix);
    expect(prefixes).toHaveLength(8192);
    expect(new Set(prefixes).size).toBe(8192);
    const counts = new Map<number, number>();
    for (const e of r.flows.expect) counts.set(e, (counts.get(e) ?? 0) + 1);
    expect(counts.size).toBe(8192);
    expect([...counts.values()].every((c) => c === 2)).toBe(true);
    for (let i = 0; i < r.flows.length; i += 97)
      expect(lpm(prefixes, (r.flows.dst as Uint8Array).subarray(i * 16, i * 16 + 16))).toBe(
        r.flows.expect[i],
      );
    expect(new Set(prefixes.map((p) => p.split('/')[1]))).toEqual(
      new Set(['16', '32', '48', '56', '64', '128']),
    );
  });

  it('the pcap holds one well-formed 64-byte frame per flow, in trace order', () => {
    const rules = benchRules(50);
    const f = aclFlows(rules, 300);
    const frames = readPcap(pcapOf(f));
    expect(frames).toHaveLength(300);
    frames.forEach((fr, i) => {
      expect(fr.length).toBe(FRAME4);
      const p = parsePacket(fr);
      expect(p.reason).toBe('ok');
      expect(p.proto).toBe(f.proto[i]);
      expect(p.dport).toBe(f.dport[i]);
      expect(p.sport).toBe(f.sport[i]);
      expect(fr.readUInt32BE(30)).toBe((f.dst as Uint32Array)[i]);
      expect(fr.readUInt32BE(26)).toBe((f.src as Uint32Array)[i]);
    });
    const v6 = readPcap(pcapOf(benchRoutes6(10, 0).flows));
    expect(v6.every((x) => x.length === FRAME6 && parsePacket(x).reason === 'ok')).toBe(true);
  });

  it('port ranges become exactly covering value/mask pairs', () => {
    const r = rng(3);
    for (let k = 0; k < 200; k++) {
      const lo = r() % 65536;
      const hi = Math.min(65535, lo + (r() % 3000));
      const masks = portMasks(lo, hi);
      expect(masks.length).toBeLessThanOrEqual(30);
      const covered = (p: number): boolean => masks.some(([v, m]) => (p & m) === v);
      for (let p = Math.max(0, lo - 40); p <= Math.min(65535, hi + 40); p++)
        expect(covered(p)).toBe(p >= lo && p <= hi);
    }
    expect(portMasks(0, 65535)).toEqual([[0, 0]]);
  });

  it('OpenFlow: one priority per rule, first rule highest, a default flow', () => {
    const rules = benchRules(10);
    const flows = openflowAcl(rules, {
      table: 1,
      permit: 'output:2',
      deny: 'drop',
      default: 'drop',
    });
    const prios = new Set(flows.map((l) => /priority=(\d+)/.exec(l)![1]));
    expect(prios.size).toBe(11);
    expect(flows.at(-1)).toBe('table=1,priority=0 actions=drop');
    expect(flows[0]).toMatch(/^table=1,priority=60000,(tcp|udp),nw_src=.*,nw_dst=.*actions=/);
  });
});
