/**
 * The ESP stage's fallback crypto path: with only crypto_openssl (no synchronous CPU crypto),
 * SAs run lookaside, their packets enqueued to the stage's own queue pair and dequeued within
 * the burst. Against scapy (test/support/esp_peer.py) as in esp-interop.test.ts, one algorithm
 * of each kind: both directions exact, a wrong key counted and nothing delivered.
 */
import { describe, expect, it } from 'vitest';

import {
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
import { dataplaneReady } from '../support/env';

const notReady = dataplaneReady();
const rig = espFileRig('esplk', ['crypto_openssl0'], notReady);

describe.skipIf(notReady)('ESP stage on lookaside crypto (crypto_openssl)', () => {
  it('aes-gcm-128 IPv4 in IPv4: Flowline encrypts on crypto_openssl0, scapy decrypts exactly', async () => {
    const s = sa('aes-gcm-128', 4, 4);
    const frames = innerFrames(4, 40);
    await withPipeline(rig.pipeline('outbound', [s]), async (p) => {
      const out = await rig.through(p, frames);
      expect(out).toHaveLength(frames.length);
      const outers = out.map((f, i) => checkOuter(f, s, 4, i + 1));
      peer(
        s,
        outers.map((packet) => ({ op: 'decrypt', packet })),
      ).forEach((r, i) => expect(packetOf(r)).toEqual(frames[i]!.subarray(14)));
      expect(p.saCounters('esp', s.spi)).toMatchObject({
        packets: frames.length,
        cpuCrypto: false,
        device: 'crypto_openssl0',
      });
    });
  });

  it('aes-cbc-256-hmac-sha256 IPv6 in IPv6 with ESN: scapy encrypts, Flowline decrypts exactly; a wrong key is counted', async () => {
    const s = sa('aes-cbc-256-hmac-sha256', 6, 6, { esn: true });
    const frames = innerFrames(6, 40);
    const enc = peer(
      s,
      frames.map((f, i) => ({ op: 'encrypt', packet: f.subarray(14), seq: i + 1 })),
    ).map((r) => frame(packetOf(r)));
    const wrong = { ...s, authKey: key(32) };
    const forged = peer(wrong, [{ op: 'encrypt', packet: frames[0]!.subarray(14), seq: 100 }]).map(
      (r) => frame(packetOf(r)),
    );
    await withPipeline(rig.pipeline('inbound', [s]), async (p) => {
      const out = await rig.through(p, [...enc, ...forged]);
      expect(out.map((f) => f.subarray(14))).toEqual(frames.map((f) => f.subarray(14)));
      expect(p.saCounters('esp', s.spi)).toMatchObject({
        packets: frames.length,
        authFailures: 1,
        cpuCrypto: false,
      });
      expect(espDrops(p)).toEqual({ esp_auth: 1 });
    });
  });

  it('a closed stage gives its queue pair back: 12 stages come and go beside one that stays', async () => {
    // crypto_openssl0 has 8 queue pairs; each lookaside stage holds one while it lives.
    const stays = rig.pipeline('outbound', [sa('aes-gcm-128', 4, 4)]);
    try {
      stays.stop();
      for (let i = 0; i < 12; i++) {
        const s = sa('aes-cbc-128-hmac-sha256', 4, 4);
        await withPipeline(rig.pipeline('outbound', [s]), async (p) => {
          const [f] = innerFrames(4, 1);
          const [o] = await rig.through(p, [f!]);
          expect(packetOf(peer(s, [{ op: 'decrypt', packet: o!.subarray(14) }])[0])).toEqual(
            f!.subarray(14),
          );
        });
      }
    } finally {
      stays.close();
    }
  });
});
