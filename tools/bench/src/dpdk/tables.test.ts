import { compileAcl, compileRoutes } from '@flowline/dpdk';
import { parseAddress, parsePrefix, prefixContains } from '@flowline/packet';
import { describe, expect, it } from 'vitest';

import { benchAcl, benchRoutes, parseAcl, parseRoutes, rng } from './tables';

/** Does the IPv4 prefix contain the address (both as dotted strings)? */
const contains = (prefix: string, addr: string): boolean =>
  prefixContains(parsePrefix(prefix), parseAddress(addr).bytes);

describe('benchmark tables', () => {
  it('are the same on every run', () => {
    expect(benchAcl()).toEqual(benchAcl());
    expect(benchRoutes(0).routes.slice(0, 50)).toEqual(benchRoutes(0).routes.slice(0, 50));
    const r = rng(7);
    expect(new Set(Array.from({ length: 1000 }, r)).size).toBe(1000);
  });

  it('ACL: 1,000 valid rules of which only the last matches flowgen traffic', () => {
    const rules = benchAcl();
    expect(rules).toHaveLength(1000);
    expect(compileAcl(parseAcl(rules))).toHaveLength(1000);
    const flowgen = { src: '10.254.0.1', dst: '10.253.3.255' };
    const hits = rules.filter(
      ({ match: x }) =>
        (x.protocol === undefined || x.protocol === 'udp') &&
        contains(x.srcPrefix ?? '0.0.0.0/0', flowgen.src) &&
        contains(x.dstPrefix ?? '0.0.0.0/0', flowgen.dst),
    );
    expect(hits.map((x) => x.id)).toEqual(['flowgen']);
    expect(rules.filter((x) => x.action === 'deny').length).toBeGreaterThan(500);
  });

  it('LPM: 10,000 distinct valid routes; flowgen destinations resolve through 10.253.0.0/16', () => {
    const t = benchRoutes(3);
    expect(t.routes).toHaveLength(10_000);
    expect(new Set(t.routes.map((r) => r.prefix)).size).toBe(10_000);
    const compiled = compileRoutes(parseRoutes(t), () => Buffer.alloc(6));
    expect(compiled.routes).toHaveLength(10_000);
    expect(t.nextHops.every((n) => n.port === 3)).toBe(true);
    const covering = t.routes.filter((r) => contains(r.prefix, '10.253.1.1'));
    expect(covering.map((r) => r.prefix)).toEqual(['10.253.0.0/16']);
  });
});
