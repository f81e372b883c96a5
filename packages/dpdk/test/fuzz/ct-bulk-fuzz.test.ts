/**
 * Builds the libFuzzer differential harness over conntrack's burst lookup
 * (native/fuzz/ct_bulk_fuzz.c: fl_ct_track_bulk, which runs a burst's packets grouped by their
 * flow's kind, against fl_ct_track packet by packet, on two tables given the same bursts) with
 * AddressSanitizer and UBSan, and runs it for a bounded time. It must end by itself with exit
 * code 0 (the harness aborts on any answer, commit or counter that differs), having taken every
 * path the grouping can reorder: replies, cached denials, ICMP errors about a flow, expiry,
 * eviction and flushes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { buildConntrackFuzzer, hasClang, runFuzzer } from '../support/fuzz';

const work = mkdtempSync(path.join(tmpdir(), 'fl-ct-bulk-fuzz-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Bursts as the harness reads them: per packet flow, flags, ACL byte; a tick after a burst. */
function seeds(): Buffer[] {
  let x = 0x2545f491;
  const rnd = (): number => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
  const out: Buffer[] = [];
  // every flow opened (a SYN, a UDP packet, an echo request: 128 flows a family fill its 64
  // slots and evict), answered, then acknowledged with a third of them denied; bursts of 32
  // with no time between them
  const opening: number[] = [];
  for (const [ctl, acl] of [
    [0, 0],
    [(1 << 1) | 1, 0],
    [2 << 1, 1],
  ] as const)
    for (let id = 0; id < 256; id++) opening.push(id, ctl, id % 3 === 0 ? acl : 0);
  out.push(Buffer.from(opening));
  for (let s = 0; s < 8; s++) {
    const b: number[] = [];
    for (let i = 0; i < 200; i++) {
      const r = rnd();
      b.push(
        r & 255,
        (r >>> 8) & (s % 2 ? 0xff : 0x7f),
        ((r >>> 16) & 1) | (i % 24 === 23 ? 0x40 : 0),
      );
      if (i % 24 === 23) b.push(s === 3 ? 0xf8 : (r >>> 24) & (s % 4 ? 7 : 0x7f));
    }
    out.push(Buffer.from(b));
  }
  return out;
}

describe('conntrack burst lookup against packet-by-packet tracking, under libFuzzer', () => {
  it.skipIf(!hasClang)(
    'gives every packet, commit and counter the same answer for 15 s of fuzzed bursts (ASan + UBSan)',
    () => {
      const bin = buildConntrackFuzzer(work, 'ct_bulk_fuzz');
      const log = runFuzzer(work, bin, seeds(), 15);
      const reached = /ct_bulk_fuzz: (.*)/.exec(log);
      expect(reached).not.toBeNull();
      for (const what of [
        'created',
        'hits',
        'reply',
        'denied',
        'denied_hits',
        'related',
        'expired',
        'evicted',
        'flushed',
      ]) {
        const m = new RegExp(`\\b${what} (\\d+)`).exec(reached![1]!);
        expect(m, what).not.toBeNull();
        expect(Number(m![1]), what).toBeGreaterThan(0);
      }
    },
    150_000,
  );
});
