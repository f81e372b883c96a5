import {
  type MatchFields,
  parseAddress,
  parseMac,
  parsePrefix,
  validateMatch,
} from '@flowline/packet';
import { describe, expect, it } from 'vitest';

import { ACL_RULE_WIRE_SIZE, compileAcl, compileAclAsync, packAcl } from './acl';
import { PipelineError } from './errors';
import { compileRoutes, type NextHop } from './lpm';
import { buildPacket, ipv4Checksum } from './packet';

/** A match as the rules' users make one: the API's fields through @flowline/packet. */
const match = (fields: MatchFields) => validateMatch(fields, 'test');

describe('ACL rule validation', () => {
  it('compiles rules: families, ports, protocols, default first-match priorities', () => {
    const c = compileAcl([
      {
        action: 'permit',
        match: match({
          protocol: 'udp',
          srcPrefix: '10.0.0.0/8',
          dstPorts: { first: 53, last: 53 },
        }),
      },
      {
        action: 'deny',
        match: match({ protocol: 'tcp', dstPorts: { first: 20, last: 23 } }),
      },
      { action: 'permit', match: match({ dstPrefix: '2001:db8::/32' }), priority: 7 },
      { action: 'deny', match: match({ protocol: 'icmp' }) },
    ]);
    expect(c).toHaveLength(5); // the second rule has no address: IPv4 and IPv6; icmp is IPv4
    expect(c[0]).toMatchObject({
      family: 4,
      proto: 17,
      protoMask: 255,
      srcLen: 8,
      dportLo: 53,
      dportHi: 53,
      sportLo: 0,
      sportHi: 65535,
      action: 0,
      owner: 0,
    });
    expect(c[0]!.src.subarray(0, 4)).toEqual(Buffer.from([10, 0, 0, 0]));
    expect(c.slice(1, 3).map((r) => r.family)).toEqual([4, 6]);
    expect(c[1]!.priority).toBeGreaterThan(c[3]!.priority);
    expect(c[3]).toMatchObject({ family: 6, dstLen: 32, priority: 7, owner: 2 });
    expect(c[3]!.dst.subarray(0, 4)).toEqual(Buffer.from([0x20, 0x01, 0x0d, 0xb8]));
    expect(c[4]).toMatchObject({ family: 4, proto: 1, owner: 3 });
  });

  it('matches every packet of both families without a match', () => {
    const c = compileAcl([{ action: 'deny' }]);
    expect(c.map((r) => [r.family, r.protoMask, r.srcLen, r.dstLen, r.dportHi])).toEqual([
      [4, 0, 0, 0, 65535],
      [6, 0, 0, 0, 65535],
    ]);
  });

  it.each([
    [{ action: 'allow' }, 'rules[0].action'],
    [{ action: 'permit', priority: 0 }, 'rules[0].priority'],
    [{ action: 'permit', priority: 0x20000000 }, 'rules[0].priority'],
  ])('rejects %j at %s', (rule, path) => {
    let err: unknown;
    try {
      compileAcl([rule as never]);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PipelineError);
    expect((err as PipelineError).path).toBe(path);
  });
});

describe('routes', () => {
  const mac = (): Buffer => Buffer.from([2, 0, 0, 0, 0, 9]);
  const route = (prefix: string, nextHop = 0) => ({ prefix: parsePrefix(prefix), nextHop });
  const nh: NextHop[] = [{ port: 0, mac: parseMac('02:00:00:00:00:01') }];
  it('compiles routes, next hops and local addresses', () => {
    const t = compileRoutes(
      {
        nextHops: [
          { port: 1, mac: parseMac('02:00:00:00:00:01') },
          { port: 2, mac: parseMac('02:00:00:00:00:02'), mtu: 1442 },
        ],
        routes: [route('10.1.0.0/16'), route('2001:db8::/32')],
        localAddresses: [parseAddress('10.0.0.1'), parseAddress('fe80::1')],
      },
      mac,
    );
    expect(t.routes[0]).toEqual({
      family: 4,
      addr: Buffer.from([10, 1, 0, 0]),
      len: 16,
      nexthop: 0,
    });
    expect(t.routes[1]!.len).toBe(32);
    expect(t.routes[1]!.addr).toHaveLength(16);
    expect(t.nexthops[0]!.dstMac).toEqual(Buffer.from([2, 0, 0, 0, 0, 1]));
    expect(t.nexthops[0]!.srcMac).toEqual(mac());
    expect(t.nexthops.map((h) => h.mtu)).toEqual([0, 1442]); // 0: no limit
    expect(t.local4).toEqual([Buffer.from([10, 0, 0, 1])]);
    expect(t.local6).toHaveLength(1);
  });
  it('rejects bad next hops, duplicate prefixes and values of the wrong size with their path', () => {
    expect(() => compileRoutes({ nextHops: nh, routes: [route('10.0.0.0/8', 1)] }, mac)).toThrow(
      /routes\[0\].nextHop/,
    );
    expect(() =>
      compileRoutes({ nextHops: nh, routes: [route('10.0.0.0/8'), route('10.0.0.0/8')] }, mac),
    ).toThrow(/routes\[1\].prefix.*also routes\[0\]/);
    expect(() =>
      compileRoutes({ nextHops: [{ port: 0, mac: Uint8Array.of(2, 0, 0) }], routes: [] }, mac),
    ).toThrow(/nextHops\[0\].mac/);
    expect(() =>
      compileRoutes(
        {
          nextHops: nh,
          routes: [],
          localAddresses: [{ family: 6, bytes: Uint8Array.of(10, 0, 0, 1) }],
        },
        mac,
      ),
    ).toThrow(/localAddresses\[0\]/);
    for (const mtu of [67, 65_536, 1500.5, Number.NaN])
      expect(() =>
        compileRoutes({ nextHops: [{ ...nh[0]!, mtu }], routes: [] }, mac, 'rt'),
      ).toThrow(`rt.nextHops[0].mtu: mtu ${mtu} is not a whole number of bytes 68..65535`);
    for (const mtu of [68, 65_535])
      expect(
        compileRoutes({ nextHops: [{ ...nh[0]!, mtu }], routes: [] }, mac).nexthops[0]!.mtu,
      ).toBe(mtu);
  });
});

describe('packets', () => {
  it('builds IPv4 packets with a valid header checksum', () => {
    const p = buildPacket({ src: '10.0.0.1', dst: '10.0.0.2', ttl: 9 });
    expect(p.length).toBe(64);
    expect(ipv4Checksum(p.subarray(14, 34))).toBe(p.readUInt16BE(24));
  });
});

describe('ACL rules for large tables', () => {
  it('compileAclAsync compiles as compileAcl does, yielding to the event loop between slices', async () => {
    const rules = Array.from({ length: 5000 }, (_, i) => ({
      action: 'permit' as const,
      match: match({ protocol: 'udp', dstPorts: { first: i + 1, last: i + 1 } }),
    }));
    let ticks = 0;
    const t = setImmediate(function tick() {
      ticks++;
      if (ticks < 1000) setImmediate(tick);
    });
    const c = await compileAclAsync(rules, 'rules', 1000);
    clearImmediate(t);
    expect(c).toEqual(compileAcl(rules));
    expect(ticks).toBeGreaterThanOrEqual(4); // one turn of the loop per slice at least
    const bad = [...rules, { action: 'allow' }] as never[];
    await expect(compileAclAsync(bad, 'rules', 1000)).rejects.toThrow(
      /^rules\[5000\]\.action: action must be/,
    );
  });

  it('packAcl lays native rules out as the addon reads them', () => {
    const [r] = compileAcl([
      {
        action: 'deny',
        match: match({
          protocol: 'tcp',
          srcPrefix: '10.1.2.0/24',
          srcPorts: { first: 1, last: 2 },
          dstPorts: { first: 443, last: 443 },
        }),
        priority: 0x1234567,
      },
    ]);
    const b = packAcl([r!, r!]);
    expect(b.length).toBe(2 * ACL_RULE_WIRE_SIZE);
    expect([...b.subarray(0, 6)]).toEqual([4, 6, 0xff, 24, 0, 1]);
    expect([2, 4, 6, 8].map((k) => b.readUInt16LE(4 + k))).toEqual([1, 2, 443, 443]);
    expect(b.readUInt32LE(16)).toBe(0x1234567);
    expect([...b.subarray(20, 24)]).toEqual([10, 1, 2, 0]);
    expect(b.subarray(ACL_RULE_WIRE_SIZE)).toEqual(b.subarray(0, ACL_RULE_WIRE_SIZE));
  });
});
