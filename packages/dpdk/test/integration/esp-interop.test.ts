/**
 * The ESP stage against an independent ESP implementation, scapy's SecurityAssociation
 * (test/support/esp_peer.py): the Linux kernel of this machine has no ESP (CONFIG_INET_ESP,
 * CONFIG_CRYPTO_GCM and CONFIG_CRYPTO_AUTHENC unset, see the README), so it cannot be the peer.
 * One worker runs ring port A -> esp -> l2fwd -> ring port B; packets go in on A and come out of
 * B. For each algorithm and each IP version (inner and outer, and mixed): what Flowline encrypts
 * scapy decrypts to the exact inner packet, and what scapy encrypts Flowline decrypts to the
 * exact inner packet; a wrong key counts auth failures and delivers nothing, a replay counts a
 * replay, the sequence numbers cross 2^32 with ESN, and malformed ESP is dropped by reason.
 */
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';

import {
  ESP_VDEVS,
  Pipeline,
  PipelineError,
  buildPacket,
  ipv4Checksum,
  type EspAlgorithm,
  type EspSa,
  type StageCounters,
} from '../../src/index';
import { addonFile } from '../../src/native';
import { dataplaneReady, sleep } from '../support/env';
import {
  ALGS,
  checkOuter,
  espDrops,
  espFileRig,
  frame,
  innerFrames,
  key,
  packetOf,
  peer,
  sa,
  withPipeline,
} from '../support/esp';
import { BACKOFF, drain, settle } from '../support/rig';
import { routingTable } from '../support/tables';

const notReady = dataplaneReady();
const rig = espFileRig('esp', [...ESP_VDEVS], notReady);
const espPipeline = rig.pipeline;
const through = rig.through;

/** An IPv6 frame with a destination-options header of len bytes (a multiple of 8) before ESP. */
function withDestOpts(f: Buffer, len: number): Buffer {
  const opts = Buffer.alloc(len);
  opts[0] = f[20]!; // the next header: ESP
  opts[1] = len / 8 - 1;
  for (let at = 2; at < len;) {
    const n = Math.min(len - at, 257); // PadN options over the rest
    opts[at] = 1;
    opts[at + 1] = n - 2;
    at += n;
  }
  const out = Buffer.concat([f.subarray(0, 54), opts, f.subarray(54)]);
  out[20] = 60;
  out.writeUInt16BE(out.length - 54, 18);
  return out;
}

const CASES: [EspAlgorithm, 4 | 6, 4 | 6][] = [
  ...ALGS.flatMap((a): [EspAlgorithm, 4 | 6, 4 | 6][] => [
    [a, 4, 4],
    [a, 6, 6],
  ]),
  ['aes-gcm-128', 4, 6],
  ['aes-cbc-128-hmac-sha256', 6, 4],
];
const N = 24;

describe.skipIf(notReady)('ESP stage interop with scapy (root, hugepages, python3-scapy)', () => {
  it.each(CASES)(
    '%s, IPv%s in IPv%s: Flowline encrypts, scapy decrypts the exact inner packets',
    async (alg, inner, outer) => {
      const s = sa(alg, inner, outer);
      const frames = innerFrames(inner, N);
      await withPipeline(espPipeline('outbound', [s]), async (p) => {
        const out = await through(p, frames);
        expect(out).toHaveLength(N);
        const outers = out.map((f, i) => checkOuter(f, s, outer, i + 1));
        const dec = peer(
          s,
          outers.map((packet) => ({ op: 'decrypt', packet })),
        );
        dec.forEach((r, i) => expect(packetOf(r)).toEqual(frames[i]!.subarray(14)));
        const c = p.saCounters('esp', s.spi);
        expect(c.packets).toBe(N);
        expect(c.bytes).toBe(frames.reduce((a, f) => a + f.length - 14, 0));
        expect(c.seq).toBe(BigInt(N + 1));
        // AES-CBC outbound runs lookaside for its IVs (see the IV test below).
        expect(c.cpuCrypto).toBe(alg.startsWith('aes-gcm'));
      });
    },
  );

  it.each(CASES)(
    '%s, IPv%s in IPv%s: scapy encrypts, Flowline decrypts exactly; wrong key and replay counted',
    async (alg, inner, outer) => {
      const s = sa(alg, inner, outer);
      const frames = innerFrames(inner, N);
      const enc = peer(
        s,
        frames.map((f, i) => ({ op: 'encrypt', packet: f.subarray(14), seq: i + 1 })),
      ).map((r) => frame(packetOf(r)));
      // The same SPI with other keys: every packet fails its ICV.
      const wrong = { ...s, key: key(s.key.length), ...(s.authKey ? { authKey: key(32) } : {}) };
      const forged = peer(
        wrong,
        frames
          .slice(0, 5)
          .map((f, i) => ({ op: 'encrypt', packet: f.subarray(14), seq: N + 1 + i })),
      ).map((r) => frame(packetOf(r)));
      const fresh = frame(
        packetOf(peer(s, [{ op: 'encrypt', packet: frames[0]!.subarray(14), seq: N + 10 }])[0]),
      );
      await withPipeline(espPipeline('inbound', [s]), async (p) => {
        const out = await through(p, enc);
        expect(out).toHaveLength(N);
        out.forEach((f, i) => {
          expect(f.subarray(0, 12)).toEqual(enc[i]!.subarray(0, 12));
          expect(f.readUInt16BE(12)).toBe(inner === 4 ? 0x0800 : 0x86dd);
          expect(f.subarray(14)).toEqual(frames[i]!.subarray(14));
        });
        expect(await through(p, forged, N)).toHaveLength(0);
        expect(await through(p, [enc[3]!, enc[N - 1]!], N + 5)).toHaveLength(0);
        // A new packet twice in one burst: both pass the window check before either is
        // decrypted; the second loses at the window update.
        const twice = await through(p, [fresh, fresh], N + 7);
        expect(twice.map((f) => f.subarray(14))).toEqual([frames[0]!.subarray(14)]);
        // And again later: the newest packet, its low 6 bits 32..63 (rte_ipsec misses these).
        expect(await through(p, [fresh], N + 9)).toHaveLength(0);
        const c = p.saCounters('esp', s.spi);
        expect(c).toMatchObject({ packets: N + 1, authFailures: 5, replays: 4, trailerErrors: 0 });
        expect(c.seq).toBe(BigInt(N + 10));
        expect(espDrops(p)).toEqual({ esp_auth: 5, esp_replay: 4 });
      });
    },
  );

  it('AES-CBC: each packet has its own IV, not its sequence number (RFC 3602: unpredictable)', async () => {
    for (const alg of ['aes-cbc-128-hmac-sha256', 'aes-cbc-256-hmac-sha256'] as const) {
      const s = sa(alg, 4, 4);
      const [f] = innerFrames(4, 1, [200]);
      await withPipeline(espPipeline('outbound', [s]), async (p) => {
        const out = await through(p, Array<Buffer>(16).fill(f!));
        expect(out).toHaveLength(16);
        const ivs = out.map((o) => o.subarray(14 + 28, 14 + 44).toString('hex'));
        expect(new Set(ivs).size).toBe(16);
        ivs.forEach((iv, i) =>
          expect(iv).not.toBe(`${(i + 1).toString(16).padStart(16, '0')}${'0'.repeat(16)}`),
        );
        // Identical packets, so identical first blocks would show equal ciphertext after the IV.
        expect(new Set(out.map((o) => o.subarray(14 + 44, 14 + 60).toString('hex'))).size).toBe(16);
        peer(
          s,
          out.map((o) => ({ op: 'decrypt', packet: o.subarray(14) })),
        ).forEach((r) => expect(packetOf(r)).toEqual(f!.subarray(14)));
      });
    }
  });

  it('ESN: outbound sequence numbers cross 2^32 and scapy checks them with the high half', async () => {
    for (const alg of ['aes-gcm-128', 'aes-cbc-256-hmac-sha256'] as const) {
      const start = 2 ** 32 - 2;
      const s = sa(alg, 4, 4, { esn: true, seq: start });
      const frames = innerFrames(4, 4);
      await withPipeline(espPipeline('outbound', [s]), async (p) => {
        const out = await through(p, frames);
        expect(out).toHaveLength(4);
        const outers = out.map((f, i) => checkOuter(f, s, 4, start + i));
        const dec = peer(
          s,
          outers.map((packet, i) => ({
            op: 'decrypt',
            packet,
            esnHigh: start + i >= 2 ** 32 ? 1 : 0,
          })),
        );
        dec.forEach((r, i) => expect(packetOf(r)).toEqual(frames[i]!.subarray(14)));
        // The high half is in the ICV: the wrong one fails at the peer.
        expect(peer(s, [{ op: 'decrypt', packet: outers[3]!, esnHigh: 0 }])[0]).toHaveProperty(
          'error',
        );
        expect(p.saCounters('esp', s.spi).seq).toBe(BigInt(start + 4));
      });
    }
  });

  it('ESN: inbound reconstructs the high half across 2^32; a wrong high half fails the ICV', async () => {
    for (const alg of ['aes-gcm-256', 'aes-cbc-128-hmac-sha256'] as const) {
      const s = sa(alg, 6, 6, { esn: true, seq: 2 ** 32 - 3 });
      const frames = innerFrames(6, 5);
      const seqs: [number, number][] = [
        [0xfffffffe, 0],
        [0xffffffff, 0],
        [0, 1],
        [1, 1],
      ];
      const enc = peer(s, [
        ...seqs.map(([seq, esnHigh], i) => ({
          op: 'encrypt' as const,
          packet: frames[i]!.subarray(14),
          seq,
          esnHigh,
        })),
        // Sequence 2 with the high half 0 (2^32 behind): Flowline takes it as 2^32 + 2.
        { op: 'encrypt', packet: frames[4]!.subarray(14), seq: 2, esnHigh: 0 },
      ]).map((r) => frame(packetOf(r)));
      await withPipeline(espPipeline('inbound', [s]), async (p) => {
        const out = await through(p, enc);
        expect(out.map((f) => f.subarray(14))).toEqual(
          frames.slice(0, 4).map((f) => f.subarray(14)),
        );
        const c = p.saCounters('esp', s.spi);
        expect(c).toMatchObject({ packets: 4, authFailures: 1, replays: 0 });
        expect(c.seq).toBe(2n ** 32n + 1n);
      });
    }
  });

  it('drops malformed ESP by reason: short, not whole blocks, bad padding, unknown SPI, not ESP, ESP too deep', async () => {
    const s = sa('aes-gcm-128', 4, 4);
    const c = sa('aes-cbc-128-hmac-sha256', 4, 4, {
      tunnel: { src: '192.0.2.9', dst: '192.0.2.2' },
    });
    const [f] = innerFrames(4, 1, [100]);
    const good = frame(packetOf(peer(s, [{ op: 'encrypt', packet: f!.subarray(14), seq: 1 }])[0]));
    // 104 bytes of inner packet: GCM pads 2 bytes, CBC 6, which badPad inverts.
    const [g] = innerFrames(4, 1, [118]);
    const badPad = frame(
      packetOf(peer(s, [{ op: 'encrypt', packet: g!.subarray(14), seq: 2, badPad: true }])[0]),
    );
    const badPadCbc = frame(
      packetOf(peer(c, [{ op: 'encrypt', packet: g!.subarray(14), seq: 1, badPad: true }])[0]),
    );
    const cut = (fr: Buffer, n: number): Buffer => {
      const b = Buffer.from(fr.subarray(0, fr.length - n));
      b.writeUInt16BE(b.length - 14, 16);
      b.writeUInt16BE(0, 24);
      b.writeUInt16BE(ipv4Checksum(b.subarray(14, 34)), 24);
      return b;
    };
    const short = cut(good, good.length - 14 - 20 - 12); // 12 bytes of ESP
    const ragged = cut(good, 1); // ciphertext not a multiple of 4
    const unknown = Buffer.from(good);
    unknown.writeUInt32BE(s.spi + 999, 34);
    const otherDst = Buffer.from(good);
    otherDst.writeUInt32BE(0xc0000263, 30); // 192.0.2.99
    otherDst.writeUInt16BE(0, 24);
    otherDst.writeUInt16BE(ipv4Checksum(otherDst.subarray(14, 34)), 24);
    // IPv6: the outer header is not covered by the ICV in tunnel mode, so an extension header
    // put before ESP keeps the packet good; one of 520 bytes puts ESP past what rte_ipsec takes.
    const s6 = sa('aes-gcm-128', 6, 6);
    const [f6] = innerFrames(6, 1, [90]);
    const good6 = frame(
      packetOf(peer(s6, [{ op: 'encrypt', packet: f6!.subarray(14), seq: 1 }])[0]),
    );
    const ext = withDestOpts(good6, 8);
    const longExt = withDestOpts(good6, 520);
    await withPipeline(espPipeline('inbound', [s, c, s6]), async (p) => {
      const out = await through(p, [
        short,
        ragged,
        unknown,
        otherDst,
        badPad,
        badPadCbc,
        f!,
        good,
        longExt,
        ext,
      ]);
      expect(out.map((x) => x.subarray(14))).toEqual([f!.subarray(14), f6!.subarray(14)]);
      expect(p.saCounters('esp', s6.spi)).toMatchObject({ packets: 1, errors: 1 });
      expect(espDrops(p)).toEqual({
        esp_malformed: 3,
        esp_no_sa: 2,
        esp_trailer: 2,
        not_esp: 1,
      });
      expect(p.saCounters('esp', s.spi)).toMatchObject({ packets: 1, trailerErrors: 1, errors: 2 });
      expect(p.saCounters('esp', c.spi)).toMatchObject({ packets: 0, trailerErrors: 1 });
    });
  });

  it('lifetimes in packets and bytes: soft marks the SA, hard drops its packets', async () => {
    const s = sa('aes-gcm-128', 4, 4, { lifetime: { softPackets: 3, hardPackets: 5 } });
    await withPipeline(espPipeline('outbound', [s]), async (p) => {
      expect(await through(p, innerFrames(4, 2))).toHaveLength(2);
      expect(p.saCounters('esp', s.spi)).toMatchObject({ softExpired: false, hardExpired: false });
      expect(await through(p, innerFrames(4, 6), 2)).toHaveLength(3);
      expect(p.saCounters('esp', s.spi)).toMatchObject({
        packets: 5,
        lifetimeDrops: 3,
        softExpired: true,
        hardExpired: true,
      });
      expect(espDrops(p)).toEqual({ esp_lifetime: 3 });
    });
    // In inner IP bytes: 64-byte frames carry 50.
    const b = sa('aes-cbc-128-hmac-sha256', 4, 4, { lifetime: { softBytes: 100, hardBytes: 150 } });
    await withPipeline(espPipeline('outbound', [b]), async (p) => {
      expect(await through(p, innerFrames(4, 5, [64]))).toHaveLength(3);
      expect(p.saCounters('esp', b.spi)).toMatchObject({
        packets: 3,
        bytes: 150,
        lifetimeDrops: 2,
        softExpired: true,
        hardExpired: true,
      });
    });
  });

  it('without ESN the sequence number does not cycle: the SA is used up before 2^32', async () => {
    // rte_ipsec sends up to 2^32 - 2 (its next number must fit in 32 bits).
    const s = sa('aes-gcm-128', 6, 4, { seq: 2 ** 32 - 3 });
    const frames = innerFrames(6, 5);
    await withPipeline(espPipeline('outbound', [s]), async (p) => {
      const out = await through(p, frames);
      expect(out).toHaveLength(2);
      out.forEach((f, i) => checkOuter(f, s, 4, 2 ** 32 - 3 + i));
      peer(
        s,
        out.map((f) => ({ op: 'decrypt', packet: f.subarray(14) })),
      ).forEach((r, i) => expect(packetOf(r)).toEqual(frames[i]!.subarray(14)));
      expect(p.saCounters('esp', s.spi)).toMatchObject({
        packets: 2,
        lifetimeDrops: 3,
        hardExpired: true,
        seq: 2n ** 32n - 1n,
      });
      expect(await through(p, frames.slice(0, 1), 5)).toHaveLength(0);
      expect(espDrops(p)).toEqual({ esp_lifetime: 4 });
    });
  });

  it('VLAN tags: an inner frame is encrypted without its tag, an ESP frame decrypted without it', async () => {
    const s = sa('aes-gcm-256', 4, 6);
    const inner = buildPacket({ src: '10.1.0.9', dst: '10.2.0.9', size: 120, vlan: 42 });
    const o = await withPipeline(espPipeline('outbound', [s]), async (p) => {
      const [out] = await through(p, [inner]);
      const ip = checkOuter(out!, s, 6, 1);
      expect(packetOf(peer(s, [{ op: 'decrypt', packet: ip }])[0])).toEqual(inner.subarray(18));
      return out!;
    });
    const tag = Buffer.from([0x81, 0, 0, 7]);
    const tagged = Buffer.concat([o.subarray(0, 12), tag, o.subarray(12)]);
    await withPipeline(espPipeline('inbound', [s]), async (q) => {
      const [d] = await through(q, [tagged]);
      expect(d!.subarray(0, 12)).toEqual(o.subarray(0, 12));
      expect(d!.readUInt16BE(12)).toBe(0x0800);
      expect(d!.subarray(14)).toEqual(inner.subarray(18));
    });
  });

  it('later stages see the decrypted packet: inbound esp -> lpm routes the inner destination', async () => {
    const s = sa('aes-gcm-128', 4, 4);
    const frames = innerFrames(4, 8);
    const enc = peer(
      s,
      frames.map((f, i) => ({ op: 'encrypt', packet: f.subarray(14), seq: i + 1 })),
    ).map((r) => frame(packetOf(r)));
    const [a, b] = rig.ports();
    // Only the inner destination (10.2.0.1) has a route: the outer one (192.0.2.2) would punt.
    const p = Pipeline.create({
      inputs: [a],
      backoff: BACKOFF,
      stages: [
        { kind: 'esp', name: 'esp', direction: 'inbound' },
        {
          kind: 'lpm',
          name: 'rt',
          table: routingTable({
            nextHops: [{ port: b.id, mac: '02:00:00:00:00:99' }],
            routes: [{ prefix: '10.2.0.0/16', nextHop: 0 }],
          }),
        },
      ],
    });
    await withPipeline(p, async (q) => {
      q.addSa('esp', s);
      q.start();
      const out = await through(q, enc);
      expect(out).toHaveLength(frames.length);
      out.forEach((f, i) => {
        expect(f.subarray(0, 6)).toEqual(Buffer.from('020000000099', 'hex'));
        expect(f[22]).toBe(frames[i]![22]! - 1); // the inner TTL, decremented
        expect(ipv4Checksum(f.subarray(14, 34))).toBe(f.readUInt16BE(24));
        expect(f.subarray(34)).toEqual(frames[i]!.subarray(34));
      });
    });
  });

  it('SAs added and deleted 40 times under traffic: every packet accounted for, by an SA', async () => {
    const base = sa('aes-gcm-128', 4, 4);
    const [a, b] = rig.ports();
    const p = espPipeline('outbound', [base]);
    const stop = new SharedArrayBuffer(4);
    let sender: Worker | undefined;
    try {
      sender = new Worker(path.join(__dirname, '../support/sender-thread.mjs'), {
        workerData: {
          addon: addonFile(),
          port: a.id,
          pool: rig.pool().handle,
          burst: 32,
          stop,
          frames: innerFrames(4, 16),
        },
      });
      const report = new Promise<{ sent: number }>((resolve, reject) => {
        sender!.once('message', resolve);
        sender!.once('error', reject);
      });
      const esp = (): StageCounters => p.counters().stages[0]!;
      const start = Date.now();
      while (esp().in < 5_000 && Date.now() - start < 10_000) await sleep(2);
      let byDeleted = 0;
      let during = 0;
      for (let i = 0; i < 40; i++) {
        const s = sa(i % 2 ? 'aes-cbc-256-hmac-sha256' : 'aes-gcm-256', 4, i % 3 ? 4 : 6);
        p.addSa('esp', s); // the newest SA of the family: it takes the traffic at once
        const before = esp().in;
        // traffic through it: at least 2 ms, and until the stage has taken more (on a loaded
        // machine the sender or the worker may stall for longer; bounded at 200 ms)
        const until = Date.now() + 200;
        await sleep(2);
        while (esp().in === before && Date.now() < until) await sleep(2);
        drain(b);
        byDeleted += p.deleteSa('esp', s.spi).packets; // final: no worker can count into it now
        if (esp().in > before) during++;
      }
      Atomics.store(new Int32Array(stop), 0, 1);
      const { sent } = await report;
      await settle(p, sent, 20_000);
      drain(b);
      const c = esp();
      expect(sent).toBeGreaterThan(20_000);
      expect(during).toBeGreaterThanOrEqual(20);
      expect(byDeleted).toBeGreaterThan(0);
      expect(c).toMatchObject({ in: sent, out: sent, drops: {} });
      expect(p.saCounters('esp', base.spi).packets + byDeleted).toBe(sent);
      expect(p.sas('esp')).toEqual([base.spi]);
    } finally {
      Atomics.store(new Int32Array(stop), 0, 1);
      await sender?.terminate();
      p.close();
    }
    expect(rig.pool().info().inUse).toBe(0);
  }, 60_000);

  it('refuses bad SAs by field and changes nothing; deletes and rekeys while running', async () => {
    const s = sa('aes-gcm-128', 4, 4);
    await withPipeline(espPipeline('outbound', [s]), async (p) => {
      const refused = (bad: EspSa, field: string, msg: RegExp): void => {
        let err: unknown;
        try {
          p.addSa('esp', bad);
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(PipelineError);
        expect((err as PipelineError).path).toBe(`stages[esp].sas[${bad.spi}].${field}`);
        expect((err as PipelineError).message).toMatch(msg);
      };
      refused(
        { ...sa('aes-gcm-128', 4, 4), algorithm: 'aes-ctr' as EspAlgorithm },
        'algorithm',
        /unknown algorithm/,
      );
      refused({ ...sa('aes-gcm-256', 4, 4), key: key(32) }, 'key', /36-byte key/);
      refused({ ...sa('aes-cbc-128-hmac-sha256', 4, 4), authKey: key(20) }, 'authKey', /32-byte/);
      refused({ ...sa('aes-gcm-128', 4, 4), spi: s.spi }, 'spi', /SPI \d+ already/);
      refused({ ...sa('aes-gcm-128', 4, 4), replayWindow: 5000 }, 'replayWindow', /0\.\.4096/);
      expect(p.sas('esp')).toEqual([s.spi]);
      // Traffic still uses s.
      const [f] = innerFrames(4, 1);
      const [o] = await through(p, [f!]);
      expect(packetOf(peer(s, [{ op: 'decrypt', packet: o!.subarray(14) }])[0])).toEqual(
        f!.subarray(14),
      );
      // Rekey: the newer SA of the family takes the traffic; deleting it gives it back.
      const s2 = sa('aes-cbc-256-hmac-sha256', 4, 4);
      p.addSa('esp', s2);
      const [o2] = await through(p, [f!], 1);
      expect(o2!.readUInt32BE(34)).toBe(s2.spi);
      expect(p.deleteSa('esp', s2.spi)).toMatchObject({ packets: 1 });
      const [o3] = await through(p, [f!], 2);
      expect(o3!.readUInt32BE(34)).toBe(s.spi);
      expect(p.sas('esp')).toEqual([s.spi]);
      expect(() => p.deleteSa('esp', s2.spi)).toThrow(/no SA with SPI/);
    });
  });
});
