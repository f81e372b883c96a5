/**
 * The ESP stage's tests' side of the independent peer (esp_peer.py, scapy's
 * SecurityAssociation): requests in, packets out, bounded in time. Plus the frames the tests
 * send: inner IP packets with random payloads, and Ethernet around IP packets.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, expect } from 'vitest';

import {
  Pipeline,
  buildPacket,
  type Mempool,
  initEal,
  ipv4Checksum,
  type Eal,
  type EspAlgorithm,
  type EspSa,
  type Port,
} from '../../src/index';
import { scrubPrefix, testPrefix } from './env';
import { BACKOFF, drain, ringPorts, sendAll, settle, type RingRig } from './rig';

export const PEER = path.join(__dirname, 'esp_peer.py');
/** Debian's python3 (python3-scapy), not a python3 that another PATH entry may put first. */
export const PYTHON = '/usr/bin/python3';

let peerChecked: { missing: string | undefined } | undefined;
/**
 * Why scapy's ESP cannot be the peer here, if so (checked once a process). No reason to skip:
 * tools/setup/setup.sh installs python3-scapy, and the runner's expected skips name only root
 * and hugepages (dataplaneReady), so peer() fails saying what is missing.
 */
export function peerReady(): string | undefined {
  peerChecked ??= { missing: checkPeer() };
  return peerChecked.missing;
}

function checkPeer(): string | undefined {
  if (!existsSync(PYTHON)) return 'needs /usr/bin/python3';
  const { LD_PRELOAD: _asan, ...env } = process.env;
  const r = spawnSync(PYTHON, ['-c', 'import scapy.layers.ipsec'], { env, timeout: 30_000 });
  return r.status === 0 ? undefined : 'needs python3-scapy (tools/setup/setup.sh installs it)';
}

export type PeerOp =
  | { op: 'encrypt'; packet: Buffer; seq: number; esnHigh?: number; badPad?: boolean }
  | { op: 'decrypt'; packet: Buffer; esnHigh?: number };

export type PeerResult = { packet: Buffer } | { error: string };

/** The SA as the peer takes it (keys in hex). */
function peerSa(sa: EspSa): Record<string, unknown> {
  return {
    spi: sa.spi,
    algorithm: sa.algorithm,
    key: sa.key.toString('hex'),
    ...(sa.authKey ? { authKey: sa.authKey.toString('hex') } : {}),
    tunnel: sa.tunnel,
    esn: sa.esn === true,
  };
}

/** Runs ops through the peer with sa; throws with its stderr when it fails. */
export function peer(sa: EspSa, ops: PeerOp[]): PeerResult[] {
  const missing = peerReady();
  if (missing) throw new Error(`the ESP peer ${missing}`);
  const req = {
    sa: peerSa(sa),
    ops: ops.map((o) => ({ ...o, packet: o.packet.toString('hex') })),
  };
  // Not the AddressSanitizer runtime the sanitizers test preloads for Node: python is no subject.
  const { LD_PRELOAD: _asan, ...env } = process.env;
  const r = spawnSync(PYTHON, [PEER], {
    env,
    input: JSON.stringify(req),
    encoding: 'utf8',
    timeout: 60_000,
    maxBuffer: 64 << 20,
  });
  if (r.status !== 0) throw new Error(`esp_peer.py failed (${r.status}): ${r.stderr}`);
  const out = JSON.parse(r.stdout) as { results: ({ packet: string } | { error: string })[] };
  return out.results.map((x) => ('packet' in x ? { packet: Buffer.from(x.packet, 'hex') } : x));
}

/** The decrypted packet, or a failure naming what the peer said. */
export function packetOf(r: PeerResult | undefined): Buffer {
  if (!r) throw new Error('no result');
  if ('error' in r) throw new Error(`the peer refused the packet: ${r.error}`);
  return r.packet;
}

export const MAC_DST = Buffer.from('020000000002', 'hex');
export const MAC_SRC = Buffer.from('020000000001', 'hex');

/** An Ethernet frame around an IP packet (the ethertype by its version). */
export function frame(ip: Buffer, dst = MAC_DST, src = MAC_SRC): Buffer {
  const h = Buffer.alloc(14);
  dst.copy(h, 0);
  src.copy(h, 6);
  h.writeUInt16BE(ip[0]! >> 4 === 6 ? 0x86dd : 0x0800, 12);
  return Buffer.concat([h, ip]);
}

/** n inner UDP frames of family 4 or 6, sizes spread over 64..1400 bytes, random payloads. */
export function innerFrames(family: 4 | 6, n: number, sizes?: number[]): Buffer[] {
  const [src, dst] = family === 4 ? ['10.1.0.1', '10.2.0.1'] : ['2001:db8:1::1', '2001:db8:2::1'];
  const hdr = family === 4 ? 14 + 20 + 8 : 14 + 40 + 8;
  return Array.from({ length: n }, (_, i) => {
    const size = sizes?.[i % sizes.length] ?? 64 + ((i * 97) % 1337);
    return buildPacket({
      src,
      dst,
      sport: 1000 + i,
      dport: 53,
      size,
      payload: randomBytes(Math.max(0, size - hdr)),
    });
  });
}

/** A random key of n bytes. */
export const key = (n: number): Buffer => randomBytes(n);

export const ALGS: EspAlgorithm[] = [
  'aes-gcm-128',
  'aes-gcm-256',
  'aes-cbc-128-hmac-sha256',
  'aes-cbc-256-hmac-sha256',
];
const KEYS: Record<EspAlgorithm, [number, number]> = {
  'aes-gcm-128': [20, 0],
  'aes-gcm-256': [36, 0],
  'aes-cbc-128-hmac-sha256': [16, 32],
  'aes-cbc-256-hmac-sha256': [32, 32],
};
const TUNNEL = {
  4: { src: '192.0.2.1', dst: '192.0.2.2' },
  6: { src: '2001:db8:ff::1', dst: '2001:db8:ff::2' },
} as const;

let nextSpi = 0x1000;
/** An SA with fresh random keys and the next SPI. */
export function sa(
  alg: EspAlgorithm,
  inner: 4 | 6,
  outer: 4 | 6,
  more: Partial<EspSa> = {},
): EspSa {
  const [k, a] = KEYS[alg];
  return {
    spi: nextSpi++,
    algorithm: alg,
    key: key(k),
    ...(a ? { authKey: key(a) } : {}),
    innerFamily: inner,
    tunnel: TUNNEL[outer],
    ...more,
  };
}

/** Runs fn on p and closes p, whatever happens. */
export function withPipeline<T>(p: Pipeline, fn: (p: Pipeline) => Promise<T>): Promise<T> {
  return fn(p).finally(() => p.close());
}

export const espDrops = (p: Pipeline): Record<string, number> =>
  p.counters().stages.find((s) => s.name === 'esp')!.drops;

/** Checks an outbound frame: the inner frame's MACs, the outer header, SPI and sequence. */
export function checkOuter(f: Buffer, s: EspSa, outer: 4 | 6, seq: number): Buffer {
  expect(f.subarray(0, 6)).toEqual(MAC_DST);
  expect(f.subarray(6, 12)).toEqual(MAC_SRC);
  const ip = f.subarray(14);
  if (outer === 4) {
    expect(f.readUInt16BE(12)).toBe(0x0800);
    expect(ip[0]).toBe(0x45);
    expect(ip[9]).toBe(50);
    expect(ip.readUInt16BE(2)).toBe(ip.length);
    expect(ipv4Checksum(ip.subarray(0, 20))).toBe(ip.readUInt16BE(10));
    expect(ip.readUInt32BE(20)).toBe(s.spi);
    expect(ip.readUInt32BE(24)).toBe(seq >>> 0);
  } else {
    expect(f.readUInt16BE(12)).toBe(0x86dd);
    expect(ip[6]).toBe(50);
    expect(ip.readUInt16BE(4)).toBe(ip.length - 40);
    expect(ip.readUInt32BE(40)).toBe(s.spi);
    expect(ip.readUInt32BE(44)).toBe(seq >>> 0);
  }
  return ip;
}

export interface EspRig {
  /** A one-worker pipeline A -> esp (its SAs) -> l2fwd -> B, started; closed by the caller. */
  pipeline(direction: 'outbound' | 'inbound', sas: EspSa[]): Pipeline;
  /** Sends frames through p (in on A); what came out of B once every fate is known. */
  through(p: Pipeline, frames: Buffer[], sentBefore?: number): Promise<Buffer[]>;
  /** Ports A (in) and B (out), for a pipeline of other stages. */
  ports(): [Port, Port];
  /** The ports' mempool. */
  pool(): Mempool;
}

/**
 * The test file's one EAL (lcores 0 and 1, the crypto vdevs given) with two ring ports, set up
 * before its tests and torn down after them, leaving no hugepage file behind.
 */
export function espFileRig(name: string, vdevs: string[], notReady: string | undefined): EspRig {
  const prefix = testPrefix(name);
  let eal: Eal | undefined;
  let rig: RingRig | undefined;
  beforeAll(() => {
    if (notReady) return;
    eal = initEal({ filePrefix: prefix, lcores: [0, 1], vdevs });
    rig = ringPorts(name, 2);
  });
  afterAll(() => {
    eal?.cleanup();
    scrubPrefix(prefix);
  });
  const live = (): { pool: Mempool; a: Port; b: Port } => {
    if (!rig) throw new Error('the ESP rig was not set up');
    const [a, b] = rig.ports as [Port, Port];
    return { pool: rig.pool, a, b };
  };
  return {
    pipeline(direction, sas) {
      const { a, b } = live();
      const p = Pipeline.create({
        inputs: [a],
        backoff: BACKOFF,
        stages: [
          { kind: 'esp', name: 'esp', direction },
          { kind: 'l2fwd', forward: [{ from: a, to: b }] },
        ],
      });
      try {
        for (const s of sas) p.addSa('esp', s);
        p.start();
      } catch (e) {
        p.close();
        throw e;
      }
      return p;
    },
    ports() {
      const { a, b } = live();
      return [a, b];
    },
    pool() {
      return live().pool;
    },
    async through(p, frames, sentBefore = 0) {
      const { pool, a, b } = live();
      await sendAll(a, pool, frames);
      await settle(p, sentBefore + frames.length);
      return drain(b);
    },
  };
}
