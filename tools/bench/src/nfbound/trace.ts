/**
 * Traces for the NF-bound benchmark: flows as typed arrays (a million of them stay cheap), one
 * 60-byte frame per flow (64 on the wire with the FCS; IPv6 frames are 62 + 4) written to a pcap
 * file that net_pcap replays in order, forever (`infinite_rx=1`). Every flow carries what it must
 * hit (an ACL rule index, or a route index), so the hits a run must produce are known exactly:
 * packet k of the replay is trace[k mod length].
 */
import { writeFileSync } from 'node:fs';

import { rng } from '../dpdk/tables';
import { must } from '../must';

export { rng };

export const TCP = 6;
export const UDP = 17;

/** Flows in trace order; `expect[i]` is the index of the rule or route flow i must hit. */
export interface Flows {
  family: 4 | 6;
  length: number;
  /** IPv4: one address per flow; IPv6: 16 bytes per flow. */
  src: Uint32Array | Uint8Array;
  dst: Uint32Array | Uint8Array;
  proto: Uint8Array;
  sport: Uint16Array;
  dport: Uint16Array;
  expect: Int32Array;
}

export function newFlows(family: 4 | 6, n: number): Flows {
  const words = family === 4 ? Uint32Array : Uint8Array;
  const per = family === 4 ? 1 : 16;
  return {
    family,
    length: n,
    src: new words(n * per),
    dst: new words(n * per),
    proto: new Uint8Array(n),
    sport: new Uint16Array(n),
    dport: new Uint16Array(n),
    expect: new Int32Array(n),
  };
}

/** Shuffles the flows in place (Fisher-Yates, seeded): the replay then visits tables at random. */
export function shuffle(f: Flows, seed: number): void {
  const r = rng(seed);
  const per = f.family === 4 ? 1 : 16;
  // i, j < f.length: in range (`?? 0` is for the type: an integer array stores undefined as 0)
  const swap = (
    a: Uint8Array | Uint16Array | Uint32Array | Int32Array,
    i: number,
    j: number,
    w: number,
  ): void => {
    for (let k = 0; k < w; k++) {
      const t = a[i * w + k] ?? 0;
      a[i * w + k] = a[j * w + k] ?? 0;
      a[j * w + k] = t;
    }
  };
  for (let i = f.length - 1; i > 0; i--) {
    const j = r() % (i + 1);
    swap(f.src, i, j, per);
    swap(f.dst, i, j, per);
    swap(f.proto, i, j, 1);
    swap(f.sport, i, j, 1);
    swap(f.dport, i, j, 1);
    swap(f.expect, i, j, 1);
  }
}

export const FRAME4 = 60;
export const FRAME6 = 62;
const SRC_MAC = [0x02, 0, 0, 0, 0, 0x01];
const DST_MAC = [0x02, 0, 0, 0, 0, 0x02];

function ipv4Checksum(b: Buffer, off: number): number {
  let s = 0;
  for (let i = 0; i < 20; i += 2) s += b.readUInt16BE(off + i);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

/** Writes flow i's frame at b[off..]: Ethernet, IPv4/IPv6 (TTL 64), UDP or TCP SYN. */
export function writeFrame(f: Flows, i: number, b: Buffer, off: number): number {
  const len = f.family === 4 ? FRAME4 : FRAME6;
  // flow i's fields (i < f.length)
  const proto = must(f.proto[i], 'flow protocol');
  const sport = must(f.sport[i], 'flow source port');
  const dport = must(f.dport[i], 'flow destination port');
  b.fill(0, off, off + len);
  b.set(DST_MAC, off);
  b.set(SRC_MAC, off + 6);
  let l4: number;
  if (f.family === 4) {
    b.writeUInt16BE(0x0800, off + 12);
    const ip = off + 14;
    b[ip] = 0x45;
    b.writeUInt16BE(len - 14, ip + 2);
    b.writeUInt16BE(i & 0xffff, ip + 4);
    b[ip + 8] = 64;
    b[ip + 9] = proto;
    b.writeUInt32BE(must((f.src as Uint32Array)[i], 'flow source address'), ip + 12);
    b.writeUInt32BE(must((f.dst as Uint32Array)[i], 'flow destination address'), ip + 16);
    b.writeUInt16BE(ipv4Checksum(b, ip), ip + 10);
    l4 = ip + 20;
  } else {
    b.writeUInt16BE(0x86dd, off + 12);
    const ip = off + 14;
    b[ip] = 0x60;
    b.writeUInt16BE(len - 54, ip + 4);
    b[ip + 6] = proto;
    b[ip + 7] = 64;
    b.set((f.src as Uint8Array).subarray(i * 16, i * 16 + 16), ip + 8);
    b.set((f.dst as Uint8Array).subarray(i * 16, i * 16 + 16), ip + 24);
    l4 = ip + 40;
  }
  b.writeUInt16BE(sport, l4);
  b.writeUInt16BE(dport, l4 + 2);
  if (proto === TCP) {
    b.writeUInt32BE(i >>> 0, l4 + 4);
    b[l4 + 12] = 0x50;
    b[l4 + 13] = 0x02; // SYN: conntrack opens (and keeps) the flow of a permitted SYN
    b.writeUInt16BE(0xffff, l4 + 14);
  } else {
    b.writeUInt16BE(len - l4 + off, l4 + 4);
  }
  return len;
}

/** A pcap file's header (little-endian, microsecond timestamps, Ethernet) at b[0..24]. */
function writePcapHeader(b: Buffer): void {
  b.writeUInt32LE(0xa1b2c3d4, 0);
  b.writeUInt16LE(2, 4);
  b.writeUInt16LE(4, 6);
  b.writeUInt32LE(65535, 16);
  b.writeUInt32LE(1, 20);
}

/** Frame i's record header (16 bytes at b[off..]): a microsecond apart, `len` bytes. */
function writeRecordHeader(b: Buffer, off: number, i: number, len: number): void {
  b.writeUInt32LE(Math.floor(i / 1e6), off);
  b.writeUInt32LE(i % 1e6, off + 4);
  b.writeUInt32LE(len, off + 8);
  b.writeUInt32LE(len, off + 12);
}

/** The pcap file of the flows, one frame each, in order. */
export function pcapOf(f: Flows): Buffer {
  const frame = f.family === 4 ? FRAME4 : FRAME6;
  const b = Buffer.alloc(24 + f.length * (16 + frame));
  writePcapHeader(b);
  let off = 24;
  for (let i = 0; i < f.length; i++) {
    writeRecordHeader(b, off, i, frame);
    off += 16 + writeFrame(f, i, b, off + 16);
  }
  return b;
}

/** The pcap file of `frames`, in order. */
export function pcapOfFrames(frames: readonly Buffer[]): Buffer {
  const b = Buffer.alloc(24 + frames.reduce((n, f) => n + 16 + f.length, 0));
  writePcapHeader(b);
  let off = 24;
  frames.forEach((f, i) => {
    writeRecordHeader(b, off, i, f.length);
    f.copy(b, off + 16);
    off += 16 + f.length;
  });
  return b;
}

export function writePcap(file: string, f: Flows): void {
  writeFileSync(file, pcapOf(f));
}

/** Reads back a pcap file's frames (tests). */
export function readPcap(b: Buffer): Buffer[] {
  if (b.readUInt32LE(0) !== 0xa1b2c3d4) throw new Error('not a little-endian microsecond pcap');
  const out: Buffer[] = [];
  for (let off = 24; off < b.length;) {
    const n = b.readUInt32LE(off + 8);
    out.push(b.subarray(off + 16, off + 16 + n));
    off += 16 + n;
  }
  return out;
}

/**
 * Hits per bin that packets [from, from + count) of an endless replay of `expect` produce:
 * whole laps of the trace, then the part of one. Bins are rule or route indexes; a negative
 * expectation (a flow that must match nothing) counts nowhere.
 */
export function hitsOver(
  expect: Int32Array,
  bins: number,
  from: number,
  count: number,
  into = new Float64Array(bins),
): Float64Array {
  const n = expect.length;
  if (n === 0 || count <= 0) return into;
  // a bin beyond `into` reads undefined and a typed array drops the write: not counted
  const add = (e: number | undefined, by: number): void => {
    if (e !== undefined && e >= 0) into[e] = (into[e] ?? 0) + by;
  };
  const laps = Math.floor(count / n);
  if (laps > 0) for (const e of expect) add(e, laps);
  const start = from % n;
  for (let k = 0; k < count % n; k++) add(expect[(start + k) % n], 1);
  return into;
}

/** Marks the trace positions packets [from, from + count) visit. */
export function markSeen(seen: Uint8Array, from: number, count: number): void {
  const n = seen.length;
  if (count >= n) seen.fill(1);
  else for (let k = 0; k < count; k++) seen[(from + k) % n] = 1;
}

export interface HitMismatch {
  index: number;
  expected: number;
  actual: number;
}

/** Bins whose actual hits differ from the expected ones (at most `max` of them). */
export function compareHits(
  expected: ArrayLike<number>,
  actual: ArrayLike<number>,
  max = 10,
): { mismatches: HitMismatch[]; count: number } {
  const mismatches: HitMismatch[] = [];
  let count = 0;
  const n = Math.max(expected.length, actual.length);
  for (let i = 0; i < n; i++) {
    const e = expected[i] ?? 0;
    const a = actual[i] ?? 0;
    if (e !== a) {
      count++;
      if (mismatches.length < max) mismatches.push({ index: i, expected: e, actual: a });
    }
  }
  return { mismatches, count };
}
