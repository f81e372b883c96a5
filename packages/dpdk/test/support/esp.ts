/**
 * The ESP stage's tests' side of the independent peer (esp_peer.py, scapy's
 * SecurityAssociation): requests in, packets out, bounded in time. Plus the frames the tests
 * send: inner IP packets with random payloads, and Ethernet around IP packets.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import * as path from 'node:path';

import { buildPacket, type EspSa } from '../../src/index';

export const PEER = path.join(__dirname, 'esp_peer.py');
/** Debian's python3 (python3-scapy), not a python3 that another PATH entry may put first. */
export const PYTHON = '/usr/bin/python3';

export function peerReady(): string | undefined {
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
