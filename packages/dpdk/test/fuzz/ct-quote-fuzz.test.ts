/**
 * Builds the libFuzzer harness over conntrack's packet reading (native/fuzz/ct_quote_fuzz.c:
 * above all the quote inside ICMP/ICMPv6 errors, read at offsets the packet gives) with
 * AddressSanitizer and UBSan, and runs it for a bounded time on ICMP errors quoting UDP, TCP
 * and echo packets over IPv4 and IPv6. It must end by itself with exit code 0, having taken the
 * RELATED path (an error about a committed flow) at least once.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { buildPacket } from '../../src/packet';
import { buildConntrackFuzzer, hasClang, runFuzzer } from '../support/fuzz';

const work = mkdtempSync(path.join(tmpdir(), 'fl-ct-fuzz-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function seeds(): Buffer[] {
  const out: Buffer[] = [];
  for (const [router, host, peer] of [
    ['198.51.100.254', '10.0.0.1', '192.0.2.1'],
    ['2001:db8:ff::fe', '2001:db8:1::9', '2001:db8:ff::9'],
  ] as const) {
    const v6 = host.includes(':');
    const quoted = [
      buildPacket({ src: host, dst: peer, proto: 'udp', sport: 5000, dport: 53 }),
      buildPacket({ src: host, dst: peer, proto: 'tcp', sport: 4000, dport: 443 }),
      buildPacket({ src: host, dst: peer, proto: 'icmp', sport: v6 ? 128 : 8 }),
    ];
    for (const q of quoted)
      for (const type of v6 ? [1, 2, 3, 4] : [3, 11, 12]) {
        out.push(q);
        out.push(
          buildPacket({
            src: router,
            dst: host,
            proto: 'icmp',
            sport: type,
            payload: q.subarray(14, 14 + (v6 ? 48 : 28)),
          }),
        );
      }
  }
  return out;
}

describe('conntrack ICMP-error quote parser under libFuzzer', () => {
  it.skipIf(!hasClang)(
    'survives 15 s of coverage-guided fuzzing (ASan + UBSan) and reaches the RELATED path',
    () => {
      const bin = buildConntrackFuzzer(work, 'ct_quote_fuzz');
      const log = runFuzzer(work, bin, seeds(), 15);
      const related = /ct_quote_fuzz: related (\d+)/.exec(log);
      expect(related).not.toBeNull();
      expect(Number(related![1])).toBeGreaterThan(0);
    },
    150_000,
  );
});
