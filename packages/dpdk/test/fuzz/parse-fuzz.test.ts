/**
 * Builds the libFuzzer harness over the C packet parser (native/fuzz/parse_fuzz.c, with
 * AddressSanitizer and UBSan) and runs it for a bounded time on a seed corpus of well-formed
 * frames made here. It must end by itself with exit code 0: no crash, no sanitizer report, no
 * broken invariant.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, it } from 'vitest';

import { buildPacket } from '../../src/packet';
import { buildFuzzer, hasClang, runFuzzer } from '../support/fuzz';
const work = mkdtempSync(path.join(tmpdir(), 'fl-parse-fuzz-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function seeds(): Buffer[] {
  const out: Buffer[] = [];
  for (const [src, dst] of [
    ['10.0.0.1', '10.0.0.2'],
    ['2001:db8::1', '2001:db8::2'],
  ] as const)
    for (const proto of ['udp', 'tcp', 'icmp', 132, 47] as const) {
      out.push(buildPacket({ src, dst, proto }));
      out.push(buildPacket({ src, dst, proto, vlan: 7, size: 90 }));
    }
  const v6 = buildPacket({ src: '2001:db8::1', dst: '2001:db8::2', size: 120 });
  const ext = Buffer.concat([v6.subarray(0, 54), Buffer.alloc(8), v6.subarray(54, 112)]);
  ext[20] = 0; // hop-by-hop, then UDP
  ext[54] = 17;
  ext.writeUInt16BE(ext.length - 54, 18);
  out.push(ext);
  const frag = Buffer.from(ext);
  frag[20] = 44;
  frag.writeUInt16BE(0x0008, 56); // fragment offset 1
  out.push(frag);
  const arp = Buffer.alloc(42);
  arp.writeUInt16BE(0x0806, 12);
  out.push(arp);
  // tag stacks: two tags (0x9100 outside), and three (malformed)
  const v4 = buildPacket({ src: '10.0.0.1', dst: '10.0.0.2', proto: 'tcp' });
  for (const tpids of [
    [0x9100, 0x8100],
    [0x88a8, 0x8100, 0x8100],
  ]) {
    const tags = Buffer.alloc(4 * tpids.length);
    tpids.forEach((t, i) => tags.writeUInt16BE(t, 4 * i));
    out.push(Buffer.concat([v4.subarray(0, 12), tags, v4.subarray(12)]));
  }
  return out;
}

describe('C packet parser under libFuzzer', () => {
  // fl_parse_inline has an SSSE3 build (the addon's: DPDK's flags carry -march=corei7) and a
  // portable one; the harness holds each to fl_parse's result
  for (const [build, flags, seconds] of [
    ['SSSE3', ['-mssse3'], 20],
    ['portable', [], 10],
  ] as const)
    it.skipIf(!hasClang)(
      `survives ${seconds} s of coverage-guided fuzzing (ASan + UBSan), ${build} build`,
      () => {
        const dir = mkdtempSync(path.join(work, `${build}-`));
        const bin = buildFuzzer(dir, 'parse_fuzz', ['fl_parse.c'], [...flags]);
        runFuzzer(dir, bin, seeds(), seconds);
      },
      150_000,
    );
});
