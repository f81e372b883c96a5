/**
 * Malformed packets through a running ACL + LPM pipeline: truncated L2/L3/L4, bad IHL and length
 * fields, IPv6 extension chains and fragments. Each is dropped with its reason counter (or
 * forwarded when it is well formed after all), random garbage never stalls or crashes the
 * worker, and good traffic still flows afterwards.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';

import {
  PacketBatch,
  Pipeline,
  buildPacket,
  ipv4Checksum,
  parsePacket,
  type Port,
} from '../../src/index';
import { dataplaneReady } from '../support/env';
import { acl, routingTable } from '../support/tables';
import { BACKOFF, drain, eachFileRig, sendAll, settle, takePunted } from '../support/rig';

const rigOf = eachFileRig('pmal', 2);

const v4 = (o: Partial<Parameters<typeof buildPacket>[0]> = {}): Buffer =>
  buildPacket({ src: '10.0.0.1', dst: '10.9.0.1', size: 80, ...o });
const v6 = (o: Partial<Parameters<typeof buildPacket>[0]> = {}): Buffer =>
  buildPacket({ src: '2001:db8::1', dst: '2001:db8:9::1', size: 100, ...o });

function fixSum(f: Buffer): Buffer {
  const ihl = (f[14]! & 0xf) * 4;
  if (f.length >= 14 + ihl) f.writeUInt16BE(ipv4Checksum(f.subarray(14, 14 + ihl)), 24);
  return f;
}

/** v4 with its IP total length (and UDP/TCP header) edited by fn. */
function v4edit(
  fn: (f: Buffer) => void,
  o: Partial<Parameters<typeof buildPacket>[0]> = {},
): Buffer {
  const f = v4(o);
  fn(f);
  return fixSum(f);
}

/**
 * IPv6 with extension headers before a UDP header: each entry is [next-header type of this
 * extension, its length in bytes (multiple of 8)].
 */
function v6ext(exts: [number, number][], udpDport = 9, total = 160): Buffer {
  const base = v6({ dport: udpDport });
  const l2 = base.subarray(0, 14);
  const ip = Buffer.from(base.subarray(14, 54));
  const udp = Buffer.alloc(8);
  udp.writeUInt16BE(1024, 0);
  udp.writeUInt16BE(udpDport, 2);
  const parts: Buffer[] = [];
  exts.forEach(([, len], i) => {
    const h = Buffer.alloc(len);
    h[0] = i + 1 < exts.length ? exts[i + 1]![0] : 17;
    h[1] = exts[i]![0] === 51 ? len / 4 - 2 : len / 8 - 1;
    parts.push(h);
  });
  ip[6] = exts.length ? exts[0]![0] : 17;
  const pad = Math.max(0, total - 54 - parts.reduce((a, p) => a + p.length, 0) - 8);
  udp.writeUInt16BE(8 + pad, 4);
  const payload = Buffer.concat([...parts, udp, Buffer.alloc(pad)]);
  ip.writeUInt16BE(payload.length, 4);
  return Buffer.concat([l2, ip, payload]);
}

/** An IPv6 fragment header (offset in 8-byte units, more-fragments flag) before UDP. */
function v6frag(offset: number, more: boolean): Buffer {
  const f = v6ext([[44, 8]], 53);
  f.writeUInt16BE((offset << 3) | (more ? 1 : 0), 54 + 2);
  if (offset === 0 && more) f.writeUInt16BE(1000, 54 + 8 + 4); // UDP length: the whole datagram
  return f;
}

describe.skipIf(dataplaneReady())(
  'malformed packets through a running pipeline (root, hugepages)',
  () => {
    it('drops each malformed packet with its reason, forwards the well-formed odd ones', async () => {
      const [a, b] = rigOf().ports as [Port, Port];
      const p = Pipeline.create({
        inputs: [a],
        backoff: BACKOFF,
        stages: [
          {
            kind: 'acl',
            name: 'fw',
            rules: acl([
              { id: 'echo-deny', action: 'deny', protocol: 'udp', dstPorts: { first: 7, last: 7 } },
            ]),
            defaultAction: 'permit',
            fragments: 'drop',
          },
          {
            kind: 'lpm',
            name: 'rt',
            table: routingTable({
              nextHops: [{ port: b.id, mac: '02:0b:00:00:00:01' }],
              routes: [
                { prefix: '0.0.0.0/0', nextHop: 0 },
                { prefix: '::/0', nextHop: 0 },
              ],
            }),
          },
        ],
      });
      try {
        p.start();
        const vlan = buildPacket({ src: '10.0.0.1', dst: '10.9.0.1', vlan: 42, size: 80 });
        // [name, frame, expected fate: 'fwd' or the ACL stage's drop reason]
        const cases: [string, Buffer, string][] = [
          ['10-byte frame', randomBytes(10), 'malformed_l2'],
          [
            'truncated VLAN tag',
            Buffer.concat([v4().subarray(0, 12), Buffer.from([0x81, 0, 0, 1])]),
            'malformed_l2',
          ],
          ['IPv4 header cut at 19 bytes', v4().subarray(0, 33), 'malformed_l3'],
          ['IPv4 version 5', v4edit((f) => (f[14] = 0x55)), 'malformed_l3'],
          ['IPv4 IHL 4', v4edit((f) => (f[14] = 0x44)), 'malformed_l3'],
          [
            'IPv4 IHL beyond the frame',
            v4edit((f) => (f[14] = 0x4f)).subarray(0, 60),
            'malformed_l3',
          ],
          [
            'IPv4 total length beyond the frame',
            v4edit((f) => f.writeUInt16BE(400, 16)),
            'malformed_l3',
          ],
          ['IPv4 total length below IHL', v4edit((f) => f.writeUInt16BE(12, 16)), 'malformed_l3'],
          [
            'TCP cut by the IP length',
            v4edit((f) => f.writeUInt16BE(30, 16), { proto: 'tcp' }),
            'malformed_l4',
          ],
          ['TCP data offset 4', v4edit((f) => (f[46] = 0x40), { proto: 'tcp' }), 'malformed_l4'],
          [
            'TCP data offset beyond the IP length',
            v4edit((f) => (f[46] = 0xf0), { proto: 'tcp', size: 60 }),
            'malformed_l4',
          ],
          ['UDP length 4', v4edit((f) => f.writeUInt16BE(4, 38)), 'malformed_l4'],
          [
            'UDP length beyond the IP length',
            v4edit((f) => f.writeUInt16BE(300, 38)),
            'malformed_l4',
          ],
          [
            'ICMP with 2 bytes',
            v4edit((f) => f.writeUInt16BE(22, 16), { proto: 'icmp' }),
            'malformed_l4',
          ],
          [
            'ARP cut at 20 bytes',
            Buffer.concat([v4().subarray(0, 12), Buffer.from([8, 6]), Buffer.alloc(20)]),
            'malformed_l3',
          ],
          ['IPv6 header cut at 39 bytes', v6().subarray(0, 53), 'malformed_l3'],
          [
            'IPv6 version 4',
            (() => {
              const f = v6();
              f[14] = 0x40;
              return f;
            })(),
            'malformed_l3',
          ],
          [
            'IPv6 payload length beyond the frame',
            (() => {
              const f = v6();
              f.writeUInt16BE(500, 18);
              return f;
            })(),
            'malformed_l3',
          ],
          [
            'IPv6 jumbogram (payload length 0)',
            (() => {
              const f = v6();
              f.writeUInt16BE(0, 18);
              return f;
            })(),
            'malformed_l3',
          ],
          [
            'hop-by-hop after a routing header',
            v6ext([
              [43, 8],
              [0, 8],
            ]),
            'bad_ext_header',
          ],
          [
            'routing header longer than the payload',
            (() => {
              const f = v6ext([[43, 8]]);
              f[55] = 30;
              return f;
            })(),
            'bad_ext_header',
          ],
          [
            'nine destination-options headers',
            v6ext(
              Array.from({ length: 9 }, (): [number, number] => [60, 8]),
              9,
              200,
            ),
            'bad_ext_header',
          ],
          ['extension header cut short', v6ext([[60, 16]]).subarray(0, 54 + 6), 'malformed_l3'],
          [
            'IPv6 UDP cut by the payload length',
            (() => {
              const f = v6();
              f.writeUInt16BE(4, 18);
              return f;
            })(),
            'malformed_l4',
          ],
          ['IPv4 later fragment', v4edit((f) => f.writeUInt16BE(0x0020, 20)), 'fragment'],
          ['IPv6 later fragment', v6frag(8, false), 'fragment'],
          // well formed after all
          [
            'hop-by-hop, dest-opts, routing, AH then UDP',
            v6ext([
              [0, 8],
              [60, 16],
              [43, 8],
              [51, 16],
            ]),
            'fwd',
          ],
          [
            'UDP port 7 behind an extension chain (ACL sees the port)',
            v6ext(
              [
                [0, 8],
                [60, 8],
              ],
              7,
            ),
            'acl_deny',
          ],
          [
            "IPv4 first fragment (UDP length is the datagram's)",
            v4edit((f) => {
              f.writeUInt16BE(0x2000, 20);
              f.writeUInt16BE(1400, 38);
            }),
            'fwd',
          ],
          ['IPv6 first fragment', v6frag(0, true), 'fwd'],
          ['IPv6 atomic fragment', v6frag(0, false), 'fwd'],
          ['IPv4 with VLAN tag', vlan, 'fwd'],
          [
            'Ethernet padding after the IP packet',
            v4edit((f) => {
              f.writeUInt16BE(30, 16);
              f.writeUInt16BE(10, 38);
            }),
            'fwd',
          ],
        ];
        // the C parser agrees with the expected fate (fragments are well formed to it)
        for (const [name, f, fate] of cases) {
          const r = parsePacket(f).reason;
          const want = fate === 'fwd' || fate === 'acl_deny' || fate === 'fragment' ? 'ok' : fate;
          expect(`${name}: ${r}`).toBe(`${name}: ${want}`);
        }
        const sent: Buffer[] = [];
        const want: Record<string, number> = {};
        let fwd = 0;
        cases.forEach(([, f, fate], k) => {
          for (let r = 0; r <= k % 4; r++) sent.push(f);
          if (fate === 'fwd') fwd += (k % 4) + 1;
          else want[fate] = (want[fate] ?? 0) + (k % 4) + 1;
        });
        await sendAll(a, rigOf().pool, sent);
        await settle(p, sent.length);
        const c = p.counters();
        expect(c.stages[0]).toMatchObject({ name: 'fw', in: sent.length, out: fwd, drops: want });
        expect(c.stages[1]).toMatchObject({ name: 'rt', in: fwd, out: fwd, drops: {}, punts: {} });
        const out = drain(b);
        expect(out).toHaveLength(fwd);
        const vlanOut = out.filter((f) => f.readUInt16BE(12) === 0x8100);
        expect(vlanOut).toHaveLength((cases.findIndex((x) => x[1] === vlan) % 4) + 1);
        expect(vlanOut.every((f) => f[18 + 8] === 63)).toBe(true); // TTL found behind the tag

        // garbage: random lengths and bytes, with valid-looking ethertypes half the time
        const ets = [0x0800, 0x86dd, 0x0806, 0x8100, 0x88a8];
        const junk = Array.from({ length: 3000 }, (_, i) => {
          const f = randomBytes(i % 150);
          if (i % 2 && f.length >= 15) {
            f.writeUInt16BE(ets[i % ets.length]!, 12);
            f[14] = i % 3 ? 0x45 : 0x60;
          }
          return f;
        });
        await sendAll(a, rigOf().pool, junk);
        const good = Array.from({ length: 100 }, (_, i) => v4({ sport: i }));
        await sendAll(a, rigOf().pool, good);
        await settle(p, sent.length + junk.length + good.length);
        const after = drain(b);
        // every good packet still comes out, behind whatever junk happened to be well formed
        const goodOut = after.filter((f) => f.length === 80 && f.readUInt32BE(30) === 0x0a090001);
        expect(goodOut.length).toBeGreaterThanOrEqual(100);
        expect(goodOut.slice(-100).map((f) => f.readUInt16BE(34))).toEqual(good.map((_, i) => i));
        // junk that parsed as IP with a TTL of 0 or 1 was punted; nothing else was held back
        const batch = new PacketBatch(rigOf().pool, 64);
        const punted = takePunted(p, batch);
        batch.free();
        expect(punted.length).toBe(Object.values(p.counters().punts).reduce((x, y) => x + y, 0));
        expect(rigOf().pool.info().inUse).toBe(0);
      } finally {
        p.close();
      }
    });
  },
);
