/**
 * Builds the libFuzzer harness over the ESP stage's packet checks (native/fuzz/esp_fuzz.c:
 * fl_parse then fl_esp.h, with AddressSanitizer and UBSan) and runs it for a bounded time on a
 * seed corpus of ESP frames made here: IPv4 and IPv6 outer headers, VLAN tags, IPv6 extension
 * headers before ESP, IPv4 options, fragments and Ethernet padding. It must end by itself with
 * exit code 0: no crash, no sanitizer report, no broken invariant.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, it } from 'vitest';

import { buildPacket } from '../../src/packet';
import { buildFuzzer, hasClang, runFuzzer } from '../support/fuzz';

const work = mkdtempSync(path.join(tmpdir(), 'fl-esp-fuzz-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** An ESP frame: the IP header of a built packet, protocol 50, SPI, sequence, random body. */
function esp(src: string, dst: string, body: number, vlan?: number): Buffer {
  const f = buildPacket({ src, dst, proto: 50, size: 64, ...(vlan ? { vlan } : {}) });
  const l3 = vlan ? 18 : 14;
  const v6 = src.includes(':');
  const hdr = Buffer.from(f.subarray(0, l3 + (v6 ? 40 : 20)));
  const payload = Buffer.concat([Buffer.from([0, 0, 0x10, 0x01, 0, 0, 0, 7]), randomBytes(body)]);
  if (v6) hdr.writeUInt16BE(payload.length, l3 + 4);
  else hdr.writeUInt16BE(20 + payload.length, l3 + 2);
  return Buffer.concat([hdr, payload]);
}

function seeds(): Buffer[] {
  const out: Buffer[] = [];
  for (const body of [0, 30, 40, 64, 100, 1400]) {
    out.push(esp('192.0.2.1', '192.0.2.2', body));
    out.push(esp('2001:db8::1', '2001:db8::2', body));
  }
  out.push(esp('192.0.2.1', '192.0.2.2', 56, 7));
  out.push(Buffer.concat([esp('192.0.2.1', '192.0.2.2', 24), Buffer.alloc(10)])); // padding
  const v6 = esp('2001:db8::1', '2001:db8::2', 64);
  const ext = Buffer.concat([v6.subarray(0, 54), Buffer.alloc(8), v6.subarray(54)]);
  ext[20] = 60; // destination options, then ESP
  ext[54] = 50;
  ext.writeUInt16BE(ext.length - 54, 18);
  out.push(ext);
  const frag = Buffer.from(esp('192.0.2.1', '192.0.2.2', 64));
  frag.writeUInt16BE(0x2000, 20); // more fragments
  out.push(frag);
  const opts = esp('192.0.2.1', '192.0.2.2', 48);
  const withOpts = Buffer.concat([opts.subarray(0, 34), Buffer.alloc(4), opts.subarray(34)]);
  withOpts[14] = 0x46;
  withOpts.writeUInt16BE(withOpts.length - 14, 16);
  out.push(withOpts);
  return out;
}

describe('ESP packet checks under libFuzzer', () => {
  it.skipIf(!hasClang)(
    'survive 15 s of coverage-guided fuzzing (ASan + UBSan)',
    () => {
      const bin = buildFuzzer(work, 'esp_fuzz', ['fl_parse.c']);
      runFuzzer(work, bin, seeds(), 15);
    },
    150_000,
  );
});
