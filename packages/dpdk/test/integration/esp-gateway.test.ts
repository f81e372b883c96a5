/**
 * One pipeline for both directions of an IPsec gateway, with policies (an SPD): ring port
 * `inner` (the protected side) and ring port `outer` (the unprotected side), one worker polling
 * both on queue 0 and sending on queue 1 (so it never reads its own output), stages
 * esp-out (outbound, inputs [inner], policies) -> esp-in (inbound, inputs [outer], policies) ->
 * l2fwd inner <-> outer. The peer is scapy (test/support/esp_peer.py; this machine's kernel has
 * no ESP). Checked: each stage takes only its port's packets; outbound protect / bypass /
 * discard / no policy; inbound ESP decrypted only when its inner packet matches a protect policy
 * of its SA, clear packets in only by a bypass policy; exact per-policy and per-SA counts, the
 * retired set's final counts at a swap, a policy naming a deleted SA, refused sets.
 */
import { validateMatch } from '@flowline/packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  ESP_VDEVS,
  Mempool,
  Pipeline,
  PipelineError,
  Port,
  buildPacket,
  devargs,
  initEal,
  type Eal,
  type EspPolicy,
} from '../../src/index';
import { dataplaneReady, scrubPrefix, sleep, testPrefix } from '../support/env';
import { frame, packetOf, peer, sa } from '../support/esp';
import { BACKOFF, decided } from '../support/rig';

const notReady = dataplaneReady();
const prefix = testPrefix('espgw');
let eal: Eal | undefined;
let pool: Mempool;
let inner: Port;
let outer: Port;

beforeAll(() => {
  if (notReady) return;
  eal = initEal({ filePrefix: prefix, lcores: [0, 1], vdevs: [...ESP_VDEVS] });
  pool = Mempool.create({ size: 8191 });
  const q = { rxQueues: 2, txQueues: 2, rxDescriptors: 1024 };
  inner = Port.open(devargs.ring({ id: 'espgwIn' }), pool, q);
  outer = Port.open(devargs.ring({ id: 'espgwOut' }), pool, q);
});

afterAll(() => {
  eal?.cleanup();
  scrubPrefix(prefix);
});

function gateway(): Pipeline {
  const p = Pipeline.create({
    layout: [
      {
        lcore: 1,
        txQueue: 1,
        inputs: [
          { port: inner, queue: 0 },
          { port: outer, queue: 0 },
        ],
      },
    ],
    backoff: BACKOFF,
    stages: [
      { kind: 'esp', name: 'esp-out', direction: 'outbound', inputs: [inner], policies: true },
      { kind: 'esp', name: 'esp-in', direction: 'inbound', inputs: [outer], policies: true },
      {
        kind: 'l2fwd',
        forward: [
          { from: inner, to: outer },
          { from: outer, to: inner },
        ],
      },
    ],
  });
  return p;
}

/** Sends frames into port's queue 0, waits for every fate, returns what left by `to`. */
async function through(p: Pipeline, from: Port, to: Port, frames: Buffer[]): Promise<Buffer[]> {
  const before = p.counters().rx;
  let sent = 0;
  while (sent < frames.length) {
    sent += from.send(0, pool, frames.slice(sent));
    if (sent < frames.length) await sleep(1);
  }
  const end = Date.now() + 10_000;
  for (;;) {
    const c = p.counters();
    if (c.rx === before + frames.length && decided(c) === c.rx) break;
    if (Date.now() > end) throw new Error(`not all decided: ${JSON.stringify(c)}`);
    await sleep(2);
  }
  const out: Buffer[] = [];
  for (let got = to.receive(1, 256); got.length; got = to.receive(1, 256)) out.push(...got);
  return out;
}

const udp = (src: string, dst: string, dport: number, i: number, size = 64 + i * 37): Buffer =>
  buildPacket({ src, dst, sport: 1000 + i, dport, size });
const m = (fields: Parameters<typeof validateMatch>[0]) => validateMatch(fields, 'match');
/** The PipelineError fn throws. */
function refusal(fn: () => unknown): PipelineError {
  try {
    fn();
  } catch (e) {
    if (e instanceof PipelineError) return e;
    throw e;
  }
  throw new Error('it was not refused');
}
const drops = (p: Pipeline, stage: string) =>
  p.counters().stages.find((s) => s.name === stage)?.drops;

describe.skipIf(notReady)('ESP gateway pipeline: direction by port, policies', () => {
  it('outbound and inbound in one pipeline, each by its port and its policies', async () => {
    const out = sa('aes-gcm-128', 4, 4);
    const inb = sa('aes-gcm-128', 4, 4, { tunnel: { src: '192.0.2.2', dst: '192.0.2.1' } });
    const p = gateway();
    try {
      p.addSa('esp-out', out);
      p.addSa('esp-in', inb);
      const outPolicies: EspPolicy[] = [
        {
          id: 'remote',
          action: 'protect',
          spi: out.spi,
          match: m({ dstPrefix: '10.2.0.0/16', protocol: 'udp' }),
        },
        { id: 'mgmt', action: 'bypass', match: m({ dstPrefix: '10.9.0.0/16' }) },
        {
          id: 'telnet',
          action: 'discard',
          match: m({ protocol: 'tcp', dstPorts: { first: 23, last: 23 } }),
        },
      ];
      p.setEspPolicies('esp-out', outPolicies);
      p.setEspPolicies('esp-in', [
        {
          id: 'from-remote',
          action: 'protect',
          spi: inb.spi,
          match: m({ srcPrefix: '10.2.0.0/16', dstPrefix: '10.1.0.0/16' }),
        },
        {
          id: 'ike',
          action: 'bypass',
          match: m({ ipVersion: 4, protocol: 'udp', dstPorts: { first: 500, last: 500 } }),
        },
      ]);
      p.start();

      // Outbound: 12 protected, 3 bypass, 2 discarded by policy, 4 that no policy matches.
      const prot = Array.from({ length: 12 }, (_, i) => udp('10.1.0.1', '10.2.0.7', 53, i));
      const byp = Array.from({ length: 3 }, (_, i) => udp('10.1.0.1', '10.9.0.1', 161, i));
      const tel = [0, 1].map((i) =>
        buildPacket({ src: '10.1.0.1', dst: '10.5.0.1', proto: 'tcp', sport: 4000 + i, dport: 23 }),
      );
      const none = Array.from({ length: 4 }, (_, i) => udp('10.1.0.1', '10.7.0.1', 53, i));
      const enc = await through(p, inner, outer, prot);
      expect(enc).toHaveLength(12);
      const dec = peer(
        out,
        enc.map((f) => ({ op: 'decrypt' as const, packet: f.subarray(14) })),
      );
      dec.forEach((r, i) => expect(packetOf(r)).toEqual(prot[i]!.subarray(14)));
      expect(await through(p, inner, outer, byp)).toEqual(byp);
      expect(await through(p, inner, outer, [...tel, ...none])).toEqual([]);
      expect(p.espPolicyHits('esp-out')).toEqual({
        policies: [
          { id: 'remote', packets: 12 },
          { id: 'mgmt', packets: 3 },
          { id: 'telnet', packets: 2 },
        ],
        unmatched: 4,
      });
      expect(drops(p, 'esp-out')).toEqual({ esp_policy: 6 });
      expect(p.saCounters('esp-out', out.spi).packets).toBe(12);

      // Inbound: 10 ESP from the peer, 2 ESP whose inner packet no policy of the SA covers,
      // 2 clear IKE (bypass), 3 clear others (no policy), 1 clear packet a protect policy
      // covers (it must come protected).
      const good = Array.from({ length: 10 }, (_, i) => udp('10.2.0.7', '10.1.0.1', 53, i));
      const stray = [0, 1].map((i) => udp('10.3.0.1', '10.1.0.1', 53, i));
      const sealed = peer(
        inb,
        [...good, ...stray].map((f, i) => ({
          op: 'encrypt' as const,
          packet: f.subarray(14),
          seq: i + 1,
        })),
      ).map((r) => frame(packetOf(r)));
      const got = await through(p, outer, inner, sealed);
      expect(got.map((f) => f.subarray(14))).toEqual(good.map((f) => f.subarray(14)));
      const ike = [0, 1].map((i) => udp('198.51.100.1', '192.0.2.1', 500, i));
      const clear = Array.from({ length: 3 }, (_, i) => udp('198.51.100.1', '192.0.2.1', 53, i));
      const plain = [udp('10.2.0.7', '10.1.0.1', 53, 99, 100)];
      expect(await through(p, outer, inner, [...ike, ...clear, ...plain])).toEqual(ike);
      expect(p.espPolicyHits('esp-in')).toEqual({
        policies: [
          { id: 'from-remote', packets: 11 },
          { id: 'ike', packets: 2 },
        ],
        unmatched: 5,
      });
      expect(drops(p, 'esp-in')).toEqual({ esp_policy: 6 });
      expect(p.saCounters('esp-in', inb.spi)).toMatchObject({ packets: 10, authFailures: 0 });
      // A rekey's new inbound SA (the same tunnel) is taken while the policy still names the
      // old one; an SA of another tunnel is not, for the same traffic.
      const rekeyed = sa('aes-gcm-128', 4, 4, { tunnel: { src: '192.0.2.2', dst: '192.0.2.1' } });
      const other = sa('aes-gcm-128', 4, 4, { tunnel: { src: '192.0.2.9', dst: '192.0.2.1' } });
      p.addSa('esp-in', rekeyed);
      p.addSa('esp-in', other);
      const seal = (s: typeof inb, pkts: Buffer[]) =>
        peer(
          s,
          pkts.map((f, i) => ({ op: 'encrypt' as const, packet: f.subarray(14), seq: i + 1 })),
        ).map((r) => frame(packetOf(r)));
      const more = good.slice(0, 3);
      const viaNew = await through(p, outer, inner, seal(rekeyed, more));
      expect(viaNew.map((f) => f.subarray(14))).toEqual(more.map((f) => f.subarray(14)));
      expect(await through(p, outer, inner, seal(other, good.slice(0, 2)))).toEqual([]);
      expect(drops(p, 'esp-in')).toEqual({ esp_policy: 8 });
      expect(p.espPolicyHits('esp-in').policies[0]).toEqual({ id: 'from-remote', packets: 16 });
      expect(p.saCounters('esp-in', other.spi).packets).toBe(0);
      // Neither stage touched the other side's packets.
      expect(drops(p, 'esp-out')).toEqual({ esp_policy: 6 });
      expect(p.saCounters('esp-out', out.spi).packets).toBe(12);

      // A set the stage refuses changes nothing; the swap returns the old set's final counts.
      expect(
        refusal(() =>
          p.setEspPolicies('esp-out', [{ id: 'x', action: 'protect', match: m({ ipVersion: 4 }) }]),
        ).path,
      ).toBe('stages[esp-out].policies[0].spi');
      expect(await through(p, inner, outer, byp)).toEqual(byp);
      const swap = p.setEspPolicies('esp-out', [
        { id: 'remote', action: 'protect', spi: out.spi, match: m({ ipVersion: 4 }) },
      ]);
      expect(swap.retired).toEqual({
        policies: [
          { id: 'remote', packets: 12 },
          { id: 'mgmt', packets: 6 },
          { id: 'telnet', packets: 2 },
        ],
        unmatched: 4,
      });
      expect(await through(p, inner, outer, byp)).toHaveLength(3);
      expect(p.saCounters('esp-out', out.spi).packets).toBe(15);
      // A protect policy whose SA is gone drops its packets (esp_no_sa).
      p.deleteSa('esp-out', out.spi);
      expect(await through(p, inner, outer, byp)).toEqual([]);
      expect(drops(p, 'esp-out')).toEqual({ esp_policy: 6, esp_no_sa: 3 });
      expect(p.espPolicyHits('esp-out').policies).toEqual([{ id: 'remote', packets: 6 }]);
    } finally {
      p.close();
    }
  });

  it('refuses policies on a stage made without them, naming it', () => {
    const p = Pipeline.create({
      inputs: [inner],
      backoff: BACKOFF,
      stages: [
        { kind: 'esp', name: 'plain', direction: 'outbound' },
        { kind: 'l2fwd', forward: [{ from: inner, to: outer }] },
      ],
    });
    try {
      expect(
        refusal(() => p.setEspPolicies('plain', [{ id: 'a', action: 'bypass' }])).message,
      ).toMatch(/stages\[plain\]\.policies: .*without spd/);
      expect(
        refusal(() =>
          Pipeline.create({
            inputs: [inner],
            stages: [{ kind: 'esp', direction: 'outbound', inputs: [64] }],
          }),
        ).path,
      ).toBe('stages[0].inputs[0]');
    } finally {
      p.close();
    }
  });
});
