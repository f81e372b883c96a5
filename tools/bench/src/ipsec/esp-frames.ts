/**
 * Frames for the IPsec gateway benchmark: clear IPv4 UDP frames of one size, and the ESP frames
 * (tunnel mode, IPv4 in IPv4) a peer would send for them, encrypted here with node:crypto from
 * the RFCs (RFC 4303 ESP, RFC 4106 AES-GCM, RFC 4868 HMAC-SHA-256-128 with AES-CBC), so that
 * the gateway's inbound direction is fed by an implementation other than its own.
 */
import { createCipheriv, createHmac, randomBytes } from 'node:crypto';

import { buildPacket } from '@flowline/dpdk';

export type BenchAlgorithm = 'aes-gcm-128' | 'aes-cbc-128-hmac-sha256';

export type BenchSa = {
  spi: number;
  /** AES-GCM: 16-byte key then the 4-byte salt; AES-CBC: the 16-byte key. */
  key: Buffer;
  tunnel: { src: string; dst: string };
} & (
  | { algorithm: 'aes-gcm-128'; authKey?: undefined }
  /** AES-CBC: authKey is the 32-byte HMAC-SHA-256 key. */
  | { algorithm: 'aes-cbc-128-hmac-sha256'; authKey: Buffer }
);

/** Keys for an SA of `algorithm` (random: the benchmark does not care which). */
export function benchSa(
  algorithm: BenchAlgorithm,
  spi: number,
  tunnel: BenchSa['tunnel'],
): BenchSa {
  return algorithm === 'aes-gcm-128'
    ? { spi, algorithm, key: randomBytes(20), tunnel }
    : { spi, algorithm, key: randomBytes(16), authKey: randomBytes(32), tunnel };
}

/**
 * `n` clear frames of `frameBytes` (no FCS: 60 for 64 on the wire), IPv4 UDP, each its own flow
 * (source address and port vary).
 */
export function clearFrames(n: number, frameBytes: number): Buffer[] {
  return Array.from({ length: n }, (_, i) =>
    buildPacket({
      src: `10.1.${(i >> 8) & 255}.${i & 255}`,
      dst: '10.2.0.1',
      sport: 1024 + (i % 50_000),
      dport: 5001,
      size: frameBytes,
    }),
  );
}

/** The IP packet of an Ethernet frame without VLAN tags. */
export const ipOf = (frame: Buffer): Buffer => frame.subarray(14);

/** ESP's trailer for `inner`: padding 1, 2, 3, ... to `block`, pad length, next header 4 (IPv4). */
function withTrailer(inner: Buffer, block: number): Buffer {
  const pad = (block - ((inner.length + 2) % block)) % block;
  const t = Buffer.alloc(pad + 2);
  for (let i = 0; i < pad; i++) t[i] = i + 1;
  t[pad] = pad;
  t[pad + 1] = 4;
  return Buffer.concat([inner, t]);
}

/** The ESP payload (SPI to ICV) carrying IP packet `inner` with sequence number `seq`. */
export function espPayload(sa: BenchSa, inner: Buffer, seq: number): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(sa.spi, 0);
  head.writeUInt32BE(seq >>> 0, 4);
  if (sa.algorithm === 'aes-gcm-128') {
    const iv = randomBytes(8);
    const c = createCipheriv(
      'aes-128-gcm',
      sa.key.subarray(0, 16),
      Buffer.concat([sa.key.subarray(16, 20), iv]),
      {
        authTagLength: 16,
      },
    );
    c.setAAD(head);
    const body = Buffer.concat([c.update(withTrailer(inner, 4)), c.final()]);
    return Buffer.concat([head, iv, body, c.getAuthTag()]);
  }
  const iv = randomBytes(16);
  const c = createCipheriv('aes-128-cbc', sa.key, iv).setAutoPadding(false);
  const body = Buffer.concat([c.update(withTrailer(inner, 16)), c.final()]);
  const signed = Buffer.concat([head, iv, body]);
  const icv = createHmac('sha256', sa.authKey).update(signed).digest().subarray(0, 16);
  return Buffer.concat([signed, icv]);
}

/** The ESP frame for `inner` (sequence `seq`) from the SA's tunnel source to its destination. */
export function espFrame(sa: BenchSa, inner: Buffer, seq: number): Buffer {
  return buildPacket({
    src: sa.tunnel.src,
    dst: sa.tunnel.dst,
    proto: 50,
    payload: espPayload(sa, inner, seq),
    size: 0,
  });
}
