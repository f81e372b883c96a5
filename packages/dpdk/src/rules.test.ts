import { describe, expect, it } from 'vitest';

import { ACL_RULE_WIRE_SIZE, compileAcl, compileAclAsync, packAcl } from './acl';
import { PipelineError } from './errors';
import { parseIp, parsePrefix } from './ip';
import { compileRoutes } from './lpm';
import { buildPacket, ipv4Checksum } from './packet';

describe('ACL rule validation', () => {
  it('compiles rules: families, ports, protocols, default first-match priorities', () => {
    const c = compileAcl([
      { action: 'permit', proto: 'udp', src: '10.0.0.0/8', dstPort: 53 },
      { action: 'deny', proto: 'tcp', dstPort: [20, 23] },
      { action: 'permit', dst: '2001:db8::/32', priority: 7 },
    ]);
    expect(c).toHaveLength(4); // the second rule has no address: IPv4 and IPv6
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
  });

  it.each([
    [{ action: 'allow' }, 'rules[0].action'],
    [{ action: 'permit', proto: 'gre' }, 'rules[0].proto'],
    [{ action: 'permit', proto: 300 }, 'rules[0].proto'],
    [{ action: 'permit', src: '10.0.0.0/33' }, 'rules[0].src'],
    [{ action: 'permit', src: '10.0.0.0/8', dst: '::/0' }, 'rules[0]'],
    [{ action: 'permit', dstPort: [90, 80] }, 'rules[0].dstPort'],
    [{ action: 'permit', proto: 'icmp', dstPort: 80 }, 'rules[0]'],
    [{ action: 'permit', priority: 0 }, 'rules[0].priority'],
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
  it('compiles routes, next hops and local addresses', () => {
    const t = compileRoutes(
      {
        nextHops: [{ port: 1, mac: '02:00:00:00:00:01' }],
        routes: [
          { prefix: '10.1.2.3/16', nextHop: 0 },
          { prefix: '2001:db8::/32', nextHop: 0 },
        ],
        localAddresses: ['10.0.0.1', 'fe80::1'],
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
    expect(t.nexthops[0]!.srcMac).toEqual(mac());
    expect(t.local4).toHaveLength(1);
    expect(t.local6).toHaveLength(1);
  });
  it('rejects bad next hops, duplicate prefixes and bad addresses with their path', () => {
    const nh = [{ port: 0, mac: '02:00:00:00:00:01' }];
    expect(() =>
      compileRoutes({ nextHops: nh, routes: [{ prefix: '10.0.0.0/8', nextHop: 1 }] }, mac),
    ).toThrow(/routes\[0\].nextHop/);
    expect(() =>
      compileRoutes(
        {
          nextHops: nh,
          routes: [
            { prefix: '10.0.0.0/8', nextHop: 0 },
            { prefix: '10.9.0.0/8', nextHop: 0 },
          ],
        },
        mac,
      ),
    ).toThrow(/routes\[1\].prefix.*also routes\[0\]/);
    expect(() => compileRoutes({ nextHops: [{ port: 0, mac: 'nope' }], routes: [] }, mac)).toThrow(
      /nextHops\[0\].mac/,
    );
    expect(() =>
      compileRoutes({ nextHops: nh, routes: [], localAddresses: ['300.1.1.1'] }, mac),
    ).toThrow(/localAddresses\[0\]/);
  });
});

describe('addresses and packets', () => {
  it('parses IPv4/IPv6 addresses and prefixes', () => {
    expect(parseIp('::ffff:1.2.3.4').bytes.toString('hex')).toBe(
      '00000000000000000000ffff01020304',
    );
    expect(parseIp('2001:db8::1').bytes.toString('hex')).toBe('20010db8000000000000000000000001');
    expect(parsePrefix('2001:db8:ffff::/33').addr.toString('hex')).toBe(
      '20010db8800000000000000000000000',
    );
    expect(() => parsePrefix('1.2.3.4/x')).toThrow(/0\.\.32/);
  });
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
      proto: 'udp' as const,
      dstPort: i,
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
        proto: 'tcp',
        src: '10.1.2.0/24',
        srcPort: [1, 2],
        dstPort: 443,
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
