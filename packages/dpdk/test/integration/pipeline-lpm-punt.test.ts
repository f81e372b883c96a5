/**
 * The LPM stage (IPv4 and IPv6) and the punt/inject path on real hugepages with net_ring ports:
 * next-hop MAC rewrite, TTL/hop-limit decrement with a valid IPv4 checksum after, and ARP, ND,
 * local, no-route, TTL-expired and too-big (over the next hop's MTU) packets handed to
 * JavaScript and injected back out.
 */
import { describe, expect, it } from 'vitest';

import {
  PacketBatch,
  buildPacket,
  ipv4Checksum,
  l3Offset,
  reasons,
  type PacketSpec,
  type Port,
} from '../../src/index';
import { dataplaneReady } from '../support/env';
import { routingTable } from '../support/tables';
import {
  arpRequest,
  drain,
  ipv4ChecksumOk,
  sendAll,
  settle,
  tagOf,
  tagged,
  takePunted,
  eachFileRig,
  lpmPipeline,
} from '../support/rig';

const rigOf = eachFileRig('plpm', 4);

const NH0 = '02:0b:00:00:00:01';
const NH1 = '02:0c:00:00:00:01';
const NH1_SRC = '02:5c:00:00:00:01';

/** An IPv4 packet with 4 bytes of options (IHL 6) and a correct header checksum. */
function withOptions(spec: PacketSpec, id: number): Buffer {
  const f = tagged(id, spec);
  const out = Buffer.concat([f.subarray(0, 34), Buffer.from([1, 1, 1, 1]), f.subarray(34)]);
  out[14] = 0x46;
  out.writeUInt16BE(out.readUInt16BE(16) + 4, 16);
  out.writeUInt16BE(ipv4Checksum(out.subarray(14, 38)), 24);
  return out;
}

/** A packet of exactly `l3` bytes of IP (IPv4 total length, IPv6 40 + payload). */
function sized(spec: PacketSpec, l3: number, df = false): Buffer {
  const f = buildPacket({ ...spec, size: (spec.vlan !== undefined ? 18 : 14) + l3 });
  const at = l3Offset(f);
  if (df && f[at]! >> 4 === 4) {
    f[at + 6] = 0x40;
    f.writeUInt16BE(ipv4Checksum(f.subarray(at, at + 20)), at + 10);
  }
  return f;
}

/** What the LPM stage makes of a packet it forwards: MACs, TTL - 1, the IPv4 checksum. */
function routed(f: Buffer, dstMac: string, srcMac: Buffer): Buffer {
  const out = Buffer.from(f);
  out.set(Buffer.from(dstMac.replace(/:/g, ''), 'hex'), 0);
  out.set(srcMac, 6);
  const at = l3Offset(f);
  if (out[at]! >> 4 === 6) {
    out[at + 7]!--;
  } else {
    out[at + 8]!--;
    out.writeUInt16BE(ipv4Checksum(out.subarray(at, at + 20)), at + 10);
  }
  return out;
}

describe.skipIf(dataplaneReady())('pipeline LPM and punt/inject (root, hugepages)', () => {
  it('routes IPv4 and IPv6 by longest prefix, rewrites MACs, decrements TTL, punts the rest', async () => {
    const [a, b, c, d] = rigOf().ports as [Port, Port, Port, Port];
    const table = routingTable({
      nextHops: [
        { port: b.id, mac: NH0 },
        { port: c.id, mac: NH1, srcMac: NH1_SRC },
      ],
      routes: [
        { prefix: '10.0.0.0/8', nextHop: 0 },
        { prefix: '10.1.0.0/16', nextHop: 1 },
        { prefix: '10.1.2.0/24', nextHop: 0 },
        { prefix: '2001:db8::/32', nextHop: 1 },
        { prefix: '2001:db8:1::/48', nextHop: 0 },
        { prefix: '2001:db8:1:2::/64', nextHop: 1 },
      ],
      localAddresses: ['10.0.0.1', '2001:db8::1'],
    });
    const p = lpmPipeline(a, { table, noRoute: 'punt' });
    const batch = new PacketBatch(rigOf().pool, 64);
    try {
      p.start();
      // [spec, where it must go: 'b' | 'c' | a punt reason | 'drop:<reason>']
      const cases: [PacketSpec, string][] = [
        [{ src: '192.0.2.1', dst: '10.2.3.4' }, 'b'],
        [{ src: '192.0.2.1', dst: '10.1.5.5', proto: 'tcp' }, 'c'],
        [{ src: '192.0.2.1', dst: '10.1.2.9' }, 'b'],
        [{ src: '192.0.2.1', dst: '10.255.255.255', ttl: 2 }, 'b'],
        [{ src: '192.0.2.1', dst: '11.0.0.1' }, 'no_route'],
        [{ src: '192.0.2.1', dst: '10.1.2.9', ttl: 1 }, 'ttl_expired'],
        [{ src: '192.0.2.1', dst: '10.1.2.9', ttl: 0 }, 'ttl_expired'],
        [{ src: '192.0.2.1', dst: '10.0.0.1', ttl: 1 }, 'local'],
        [{ src: '2001:db8:9::1', dst: '2001:db8:ffff::1' }, 'c'],
        [{ src: '2001:db8:9::1', dst: '2001:db8:1::1', proto: 'tcp' }, 'b'],
        [{ src: '2001:db8:9::1', dst: '2001:db8:1:2::7', ttl: 2 }, 'c'],
        [{ src: '2001:db8:9::1', dst: '2001:db9::1' }, 'no_route'],
        [{ src: '2001:db8:9::1', dst: '2001:db8::1' }, 'local'],
        [{ src: '2001:db8:9::1', dst: '2001:db8:1::1', ttl: 1 }, 'ttl_expired'],
        [{ src: 'fe80::1', dst: 'ff02::1:ff00:1', proto: 'icmp', sport: 135 }, 'nd'],
        [{ src: 'fe80::1', dst: 'fe80::2', proto: 'icmp', sport: 136 }, 'nd'],
      ];
      const pkts: Buffer[] = [];
      const want: Record<string, number[]> = {};
      cases.forEach(([spec, to], k) => {
        for (let r = 0; r <= k % 3; r++) {
          const id = k * 10 + r;
          pkts.push(tagged(id, spec));
          (want[to] ??= []).push(id);
        }
      });
      const opt = withOptions({ src: '192.0.2.1', dst: '10.2.3.4' }, 999);
      const arp = arpRequest('10.0.0.7', '10.0.0.1');
      const lldp = Buffer.from(arp);
      lldp.writeUInt16BE(0x88cc, 12);
      const sent = [...pkts, opt, arp, arp, lldp];
      await sendAll(a, rigOf().pool, sent);
      await settle(p, sent.length);

      const l4 = (f: Buffer): number => (f[f.readUInt16BE(12) === 0x86dd ? 20 : 23] === 6 ? 20 : 8);
      const byTag = new Map(pkts.map((f) => [tagOf(f, l4(f)), f]));
      const atB = drain(b);
      const atC = drain(c);
      const opts = atB.filter((f) => f[14] === 0x46);
      expect(opts).toHaveLength(1);
      const plainB = atB.filter((f) => f[14] !== 0x46);
      expect(plainB.map((f) => tagOf(f, l4(f)))).toEqual(want.b);
      expect(atC.map((f) => tagOf(f, l4(f)))).toEqual(want.c);
      const check = (f: Buffer, dst: string, src: Buffer): void => {
        const orig = byTag.get(tagOf(f, l4(f))) ?? opt;
        expect(f.subarray(0, 6).toString('hex')).toBe(dst.replace(/:/g, ''));
        expect(f.subarray(6, 12).equals(src)).toBe(true);
        const v6 = f.readUInt16BE(12) === 0x86dd;
        const ttlAt = v6 ? 21 : 22;
        expect(f[ttlAt]).toBe(orig[ttlAt]! - 1);
        if (!v6) expect(ipv4ChecksumOk(f)).toBe(true);
        // nothing else changed
        const a1 = Buffer.from(f.subarray(12));
        const b1 = Buffer.from(orig.subarray(12));
        a1[ttlAt - 12] = b1[ttlAt - 12]!;
        if (!v6) a1.writeUInt16BE(b1.readUInt16BE(12), 12);
        expect(a1.equals(b1)).toBe(true);
      };
      const macB = b.macBytes();
      for (const f of atB) check(f, NH0, macB);
      for (const f of atC) check(f, NH1, Buffer.from(NH1_SRC.replace(/:/g, ''), 'hex'));
      expect(drain(d)).toEqual([]);

      const punted = takePunted(p, batch);
      const names = reasons();
      const got: Record<string, number[]> = {};
      for (const x of punted) {
        const r = names[x.reason]!;
        if (r === 'arp') {
          expect(x.bytes.equals(arp)).toBe(true);
          (got.arp ??= []).push(-1);
          continue;
        }
        (got[r] ??= []).push(tagOf(x.bytes, l4(x.bytes)));
        expect(x.bytes.equals(byTag.get(tagOf(x.bytes, l4(x.bytes)))!)).toBe(true); // untouched
      }
      for (const r of ['no_route', 'ttl_expired', 'local', 'nd'])
        expect(got[r]?.sort((x, y) => x - y)).toEqual(want[r]);
      expect(got.arp).toHaveLength(2);

      const ctr = p.counters();
      const n = (r: string): number => want[r]?.length ?? 0;
      const fwd = n('b') + n('c') + 1;
      expect(ctr.rx).toBe(sent.length);
      expect(ctr.tx).toBe(fwd);
      const punts = {
        arp: 2,
        local: n('local'),
        nd: n('nd'),
        no_route: n('no_route'),
        ttl_expired: n('ttl_expired'),
      };
      expect(ctr.punts).toEqual(punts);
      expect(ctr.stages[0]).toMatchObject({
        in: sent.length,
        out: fwd,
        drops: { not_ip: 1 },
        punts,
      });
    } finally {
      batch.free();
      p.close();
    }
  });

  it('a default route never takes the half of an explicit /1, whichever is given first (IPv4, IPv6, with and without routeHits)', async () => {
    const [a, b, c] = rigOf().ports as [Port, Port, Port];
    const explicit = [
      { prefix: '0.0.0.0/1', nextHop: 0 },
      { prefix: '::/1', nextHop: 0 },
    ];
    const defaults = [
      { prefix: '0.0.0.0/0', nextHop: 1 },
      { prefix: '::/0', nextHop: 1 },
    ];
    // in the explicit /1s (to b), and in the other halves, which only the defaults cover (to c)
    const toB = ['10.1.2.3', '2001:db8::1'];
    const toC = ['200.1.2.3', 'fd00::7'];
    for (const order of ['/1 first', '/0 first'] as const)
      for (const countHits of [false, true]) {
        const routes =
          order === '/1 first' ? [...explicit, ...defaults] : [...defaults, ...explicit];
        const table = routingTable({
          nextHops: [
            { port: b.id, mac: NH0 },
            { port: c.id, mac: NH1 },
          ],
          routes,
        });
        const p = lpmPipeline(a, { table, noRoute: 'drop', countHits });
        try {
          p.start();
          const pkts = [...toB, ...toC].map((dst, i) =>
            tagged(i, { src: dst.includes(':') ? '2001:db8:9::1' : '192.0.2.1', dst }),
          );
          await sendAll(a, rigOf().pool, pkts);
          await settle(p, pkts.length);
          const tags = (fs: Buffer[]): number[] => fs.map((f) => tagOf(f, 8));
          const what = `${order}, countHits ${countHits}`;
          expect({ what, b: tags(drain(b)), c: tags(drain(c)) }).toEqual({
            what,
            b: [0, 1],
            c: [2, 3],
          });
          if (countHits) {
            // each /1 and each default route forwarded its own destination
            const hits = [...p.routeHits('rt')];
            expect({ what, hits }).toEqual({ what, hits: [1, 1, 1, 1] });
          }
        } finally {
          p.close();
        }
      }
  });

  it('leaves the IPv4 header checksum a full recomputation gives, through every carry of its update', async () => {
    const [a, b] = rigOf().ports as [Port, Port, Port, Port];
    const p = lpmPipeline(a, {
      table: routingTable({
        nextHops: [{ port: b.id, mac: NH0 }],
        routes: [{ prefix: '10.0.0.0/8', nextHop: 0 }],
      }),
      noRoute: 'drop',
    });
    try {
      p.start();
      // The stage adds 0x0100 to the checksum for the TTL's loss: from 0xfe00 up the sum leaves
      // 16 bits or is 0xfeff + 0x0100 = 0xffff (which a recomputation writes as 0x0000). Every
      // such checksum before the decrement (0xffff is none: a header's sum is never zero), and
      // a spread of the others.
      const before = [
        ...Array.from({ length: 0xffff - 0xfe00 }, (_, i) => 0xfe00 + i),
        ...Array.from({ length: 64 }, (_, i) => (i * 0x3fd + 0xff) & 0xfdff),
      ];
      const sent = before.map((ck, i) => {
        const f = tagged(i, { src: '192.0.2.1', dst: '10.2.3.4', ttl: 2 + (i % 250) });
        // the IP identification (bytes 18-19) that makes the header's checksum ck: the header's
        // one's complement sum must become ~ck
        f.writeUInt16BE(0, 18);
        const without = ~ipv4Checksum(f.subarray(14, 34)) & 0xffff;
        let id = (~ck & 0xffff) + (~without & 0xffff);
        id = (id & 0xffff) + (id >>> 16);
        f.writeUInt16BE(id & 0xffff, 18);
        f.writeUInt16BE(ipv4Checksum(f.subarray(14, 34)), 24);
        expect(f.readUInt16BE(24)).toBe(ck);
        return f;
      });
      await sendAll(a, rigOf().pool, sent);
      await settle(p, sent.length);
      const got = drain(b).map((f) => f.toString('hex'));
      expect(got).toEqual(sent.map((f) => routed(f, NH0, b.macBytes()).toString('hex')));
      expect(p.counters().tx).toBe(sent.length);
    } finally {
      p.close();
    }
  });

  it("punts packets longer than their next hop's MTU (too_big), untouched; forwards the rest", async () => {
    const [a, b, c, d] = rigOf().ports as [Port, Port, Port, Port];
    const NH2 = '02:0d:00:00:00:01';
    const p = lpmPipeline(a, {
      countHits: true,
      table: routingTable({
        nextHops: [
          { port: b.id, mac: NH0, mtu: 1000 },
          { port: c.id, mac: NH1, mtu: 1280 },
          { port: d.id, mac: NH2 }, // no limit
        ],
        routes: [
          { prefix: '10.0.0.0/8', nextHop: 0 },
          { prefix: '10.1.0.0/16', nextHop: 2 },
          { prefix: '2001:db8::/32', nextHop: 1 },
          { prefix: '2001:db8:2::/48', nextHop: 2 },
        ],
      }),
    });
    const batch = new PacketBatch(rigOf().pool, 64);
    try {
      p.start();
      const v4 = { src: '192.0.2.1', dst: '10.2.3.4' };
      const v6 = { src: '2001:db8:9::1', dst: '2001:db8::1' };
      const trailer = Buffer.concat([sized(v4, 1000, true), Buffer.alloc(40, 0xee)]);
      // [packet, where: 'b' | 'c' | 'd' | a punt reason]
      const cases: [Buffer, string][] = [
        [sized(v4, 1000, true), 'b'], // exactly the MTU
        [sized(v4, 1001, true), 'too_big'], // DF
        [sized(v4, 1001), 'too_big'], // no DF: the slow path's to fragment
        [sized({ ...v4, vlan: 7 }, 1000, true), 'b'], // the L3 length, not the frame's
        [sized({ ...v4, vlan: 7 }, 1001, true), 'too_big'],
        [trailer, 'b'], // bytes after the IP packet are not counted
        [sized({ ...v4, ttl: 1 }, 1500, true), 'ttl_expired'], // expiry first
        [sized({ ...v4, dst: '11.0.0.1' }, 1500, true), 'no_route'],
        [sized({ ...v4, dst: '10.1.0.5' }, 1500, true), 'd'],
        [sized(v6, 1280), 'c'],
        [sized(v6, 1281), 'too_big'],
        [sized({ ...v6, proto: 'tcp' }, 1999), 'too_big'],
        [sized({ ...v6, dst: '2001:db8:2::1' }, 2000), 'd'],
      ];
      const sent = cases.map(([f]) => f);
      await sendAll(a, rigOf().pool, sent);
      await settle(p, sent.length);

      const at = (to: string): Buffer[] => cases.filter(([, w]) => w === to).map(([f]) => f);
      const hex = (fs: Buffer[]): string[] => fs.map((f) => f.toString('hex'));
      expect(hex(drain(b))).toEqual(hex(at('b').map((f) => routed(f, NH0, b.macBytes()))));
      expect(hex(drain(c))).toEqual(hex(at('c').map((f) => routed(f, NH1, c.macBytes()))));
      expect(hex(drain(d))).toEqual(hex(at('d').map((f) => routed(f, NH2, d.macBytes()))));
      // punted as they came in, in order, with their reason
      const names = reasons();
      const punted = takePunted(p, batch).map((x) => [names[x.reason], x.bytes.toString('hex')]);
      expect(punted).toEqual(
        cases.filter(([, w]) => w.length > 1).map(([f, w]) => [w, f.toString('hex')]),
      );
      const ctr = p.counters();
      const punts = { too_big: at('too_big').length, ttl_expired: 1, no_route: 1 };
      expect([ctr.rx, ctr.tx, ctr.punts, ctr.drops]).toEqual([sent.length, 6, punts, {}]);
      const st = ctr.stages[0]!;
      expect([st.in, st.out, st.punts, st.drops]).toEqual([sent.length, 6, punts, {}]);
      // a route counts the packets it forwarded, not those too big for it
      expect(Array.from(p.routeHits('rt'))).toEqual([3, 1, 1, 1]);
    } finally {
      batch.free();
      p.close();
    }
  });

  it('hands punted packets to JavaScript, which rewrites them and injects them back out', async () => {
    const [a, b, , d] = rigOf().ports as [Port, Port, Port, Port];
    const p = lpmPipeline(a, {
      table: routingTable({
        nextHops: [{ port: b.id, mac: NH0 }],
        routes: [],
        localAddresses: ['10.0.0.1'],
      }),
      noRoute: 'drop',
    });
    const batch = new PacketBatch(rigOf().pool, 16);
    try {
      p.start();
      const reqs = Array.from({ length: 10 }, (_, i) => arpRequest(`10.0.0.${10 + i}`, '10.0.0.1'));
      const noRoute = buildPacket({ src: '10.0.0.5', dst: '8.8.8.8' });
      await sendAll(a, rigOf().pool, [...reqs, noRoute, noRoute]);
      await settle(p, 12);
      expect(p.counters().stages[0]).toMatchObject({ drops: { no_route: 2 }, punts: { arp: 10 } });
      const names = reasons();
      const replies: Buffer[] = [];
      let queued = 0;
      for (let round = 0; round < 10 && replies.length < 10; round++) {
        const n = p.punted(batch);
        for (let i = 0; i < n; i++) {
          expect(names[batch.reasonCode(i)]).toBe('arp');
          expect(batch.port(i)).toBe(a.id);
          // turn the request into a reply in place (zero-copy view into the mbuf)
          const v = batch.packet(i);
          const req = Buffer.from(v);
          const mine = Buffer.from('02aa00000001', 'hex');
          v.set(req.subarray(6, 12), 0);
          v.set(mine, 6);
          v[21] = 2;
          v.set(mine, 22);
          v.set(req.subarray(38, 42), 28);
          v.set(req.subarray(22, 32), 32);
          if (i % 5 === 4)
            batch.drop(i); // JavaScript may also drop some
          else replies.push(Buffer.from(v));
        }
        if (n) queued += p.inject(batch, d);
      }
      expect(queued).toBe(8);
      const out: Buffer[] = [];
      const end = Date.now() + 5000;
      while (out.length < 8 && Date.now() < end) {
        out.push(...drain(d));
        await new Promise((r) => setTimeout(r, 2));
      }
      expect(out).toHaveLength(8);
      expect(out.map((f) => f.toString('hex'))).toEqual(replies.map((f) => f.toString('hex')));
      expect(
        out.every((f) => f[21] === 2 && f.subarray(28, 32).toString('hex') === '0a000001'),
      ).toBe(true);
      expect(drain(b)).toEqual([]);
      expect(rigOf().pool.info().inUse).toBe(0);
    } finally {
      batch.free();
      p.close();
    }
  });
});
