import { createDecipheriv, createHmac } from 'node:crypto';

import { describe, expect, it } from 'vitest';

import { benchSa, clearFrames, espFrame, espPayload, ipOf } from './esp-frames';

const TUNNEL = { src: '192.0.2.1', dst: '192.0.2.2' };

/** RFC 4303's trailer check: padding 1, 2, 3, ..., its length, next header; returns the inner packet. */
function stripTrailer(plain: Buffer): Buffer {
  const nh = plain[plain.length - 1];
  const pad = plain[plain.length - 2]!;
  expect(nh).toBe(4);
  for (let i = 0; i < pad; i++) expect(plain[plain.length - 2 - pad + i]).toBe(i + 1);
  return plain.subarray(0, plain.length - 2 - pad);
}

describe('ESP frames for the gateway benchmark', () => {
  // 49 bytes: both ciphers must pad (to 52 and to 64)
  const inner = ipOf(clearFrames(3, 63)[2]!);

  it('clear frames: the sizes asked for, each its own flow', () => {
    const f = clearFrames(300, 1396);
    expect(f.every((x) => x.length === 1396)).toBe(true);
    expect(new Set(f.map((x) => x.subarray(26, 30).toString('hex'))).size).toBe(300);
  });

  it('AES-GCM-128 (RFC 4106): SPI and sequence in the clear and authenticated, 4-byte alignment', () => {
    const sa = benchSa('aes-gcm-128', 0x1234, TUNNEL);
    const esp = espPayload(sa, inner, 7);
    expect(esp.readUInt32BE(0)).toBe(0x1234);
    expect(esp.readUInt32BE(4)).toBe(7);
    const iv = esp.subarray(8, 16);
    const body = esp.subarray(16, esp.length - 16);
    expect(body.length % 4).toBe(0);
    const d = createDecipheriv(
      'aes-128-gcm',
      sa.key.subarray(0, 16),
      Buffer.concat([sa.key.subarray(16, 20), iv]),
      { authTagLength: 16 },
    );
    d.setAAD(esp.subarray(0, 8));
    d.setAuthTag(esp.subarray(esp.length - 16));
    expect(stripTrailer(Buffer.concat([d.update(body), d.final()]))).toEqual(inner);
    // the sequence number is authenticated: another one fails the ICV
    const other = Buffer.from(esp);
    other.writeUInt32BE(8, 4);
    const d2 = createDecipheriv(
      'aes-128-gcm',
      sa.key.subarray(0, 16),
      Buffer.concat([sa.key.subarray(16, 20), iv]),
      {
        authTagLength: 16,
      },
    );
    d2.setAAD(other.subarray(0, 8));
    d2.setAuthTag(other.subarray(other.length - 16));
    d2.update(body);
    expect(() => d2.final()).toThrow();
  });

  it('AES-CBC-128 + HMAC-SHA-256-128 (RFC 4868): 16-byte blocks, ICV over header, IV and ciphertext', () => {
    const sa = benchSa('aes-cbc-128-hmac-sha256', 0x99, TUNNEL);
    const esp = espPayload(sa, inner, 1);
    const signed = esp.subarray(0, esp.length - 16);
    expect(esp.subarray(esp.length - 16)).toEqual(
      createHmac('sha256', sa.authKey!).update(signed).digest().subarray(0, 16),
    );
    const body = esp.subarray(24, esp.length - 16);
    expect(body.length % 16).toBe(0);
    const d = createDecipheriv('aes-128-cbc', sa.key, esp.subarray(8, 24)).setAutoPadding(false);
    expect(stripTrailer(Buffer.concat([d.update(body), d.final()]))).toEqual(inner);
  });

  it('the ESP frame: IPv4 protocol 50 from the tunnel source to its destination, lengths right', () => {
    const sa = benchSa('aes-gcm-128', 0x1234, TUNNEL);
    const f = espFrame(sa, inner, 1);
    expect(f.readUInt16BE(12)).toBe(0x0800);
    expect(f[23]).toBe(50);
    expect([...f.subarray(26, 30)].join('.')).toBe('192.0.2.1');
    expect([...f.subarray(30, 34)].join('.')).toBe('192.0.2.2');
    expect(f.readUInt16BE(16)).toBe(f.length - 14);
    expect(f.readUInt32BE(34)).toBe(0x1234);
  });
});
