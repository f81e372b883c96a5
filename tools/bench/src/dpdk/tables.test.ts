import { compileAcl, compileRoutes } from '@flowline/dpdk';
import { parseAddress, parseFrame, parsePrefix, prefixContains } from '@flowline/packet';
import { describe, expect, it } from 'vitest';

import {
  GENERATOR_FLOWS,
  benchAcl,
  benchRoutes,
  generatorFrames,
  parseAcl,
  parseRoutes,
  rng,
} from './tables';

/** The generator's frames as the tables see them. */
const flows = generatorFrames().map((f) => {
  const p = parseFrame(f);
  return {
    len: f.length,
    src: p.ipv4?.src ?? '',
    dst: p.ipv4?.dst ?? '',
    l4: p.l4,
    proto: p.ipv4?.protocol,
  };
});

describe('benchmark tables', () => {
  it('are the same on every run', () => {
    expect(benchAcl()).toEqual(benchAcl());
    expect(benchRoutes(0).routes.slice(0, 50)).toEqual(benchRoutes(0).routes.slice(0, 50));
    const r = rng(7);
    expect(new Set(Array.from({ length: 1000 }, r)).size).toBe(1000);
  });

  it('the generator: GENERATOR_FLOWS distinct 60-byte UDP frames to port 1001', () => {
    expect(flows).toHaveLength(GENERATOR_FLOWS);
    expect(new Set(flows.map((f) => `${f.src}>${f.dst}:${f.l4?.srcPort}`)).size).toBe(
      GENERATOR_FLOWS,
    );
    expect(flows.every((f) => f.len === 60 && f.proto === 17 && f.l4?.dstPort === 1001)).toBe(true);
  });

  it('ACL: 1,000 valid rules of which only the last matches any of the generator frames', () => {
    const rules = benchAcl();
    expect(rules).toHaveLength(1000);
    expect(compileAcl(parseAcl(rules))).toHaveLength(1000);
    const acl = parseAcl(rules);
    for (const f of flows) {
      const src = parseAddress(f.src).bytes;
      const dst = parseAddress(f.dst).bytes;
      const port = f.l4?.dstPort ?? -1;
      const hits = acl.filter(
        ({ match: m }) =>
          m === undefined ||
          ((m.protocol === undefined || m.protocol === f.proto) &&
            (m.src === undefined || prefixContains(m.src, src)) &&
            (m.dst === undefined || prefixContains(m.dst, dst)) &&
            (m.dstPorts === undefined || (m.dstPorts[0] <= port && port <= m.dstPorts[1]))),
      );
      expect(hits.map((x) => x.id)).toEqual(['generator']);
    }
    expect(rules.filter((x) => x.action === 'deny').length).toBeGreaterThan(500);
  });

  it('LPM: 10,000 distinct valid routes; the generator destinations resolve through 10.253.0.0/16', () => {
    const t = benchRoutes(3);
    expect(t.routes).toHaveLength(10_000);
    expect(new Set(t.routes.map((r) => r.prefix)).size).toBe(10_000);
    const compiled = compileRoutes(parseRoutes(t), () => Buffer.alloc(6));
    expect(compiled.routes).toHaveLength(10_000);
    expect(t.nextHops.every((n) => n.port === 3)).toBe(true);
    const prefixes = t.routes.map((r) => ({ text: r.prefix, p: parsePrefix(r.prefix) }));
    for (const f of flows) {
      const dst = parseAddress(f.dst).bytes;
      const covering = prefixes.filter((r) => prefixContains(r.p, dst));
      expect(covering.map((r) => r.text)).toEqual(['10.253.0.0/16']);
    }
  });
});
