import { describe, expect, it } from 'vitest';

import { PipelineError } from './errors';
import { espSaConf, type EspSa } from './esp';

const base = (more: Partial<EspSa> = {}): EspSa => ({
  spi: 4096,
  algorithm: 'aes-gcm-128',
  key: Buffer.alloc(20, 1),
  innerFamily: 4,
  tunnel: { src: '192.0.2.1', dst: '192.0.2.2' },
  ...more,
});

/** The path of the PipelineError espSaConf throws for sa. */
function refusedAt(sa: EspSa): string {
  try {
    espSaConf(sa, 'sas[0]');
  } catch (e) {
    expect(e).toBeInstanceOf(PipelineError);
    return (e as PipelineError).path;
  }
  throw new Error('accepted');
}

describe('ESP SA configuration', () => {
  it('makes the native configuration: algorithm code, outer family and addresses, defaults', () => {
    const c = espSaConf(
      base({
        algorithm: 'aes-cbc-256-hmac-sha256',
        key: Buffer.alloc(32, 2),
        authKey: Buffer.alloc(32, 3),
        innerFamily: 6,
        tunnel: { src: '2001:db8::1', dst: '2001:db8::2' },
      }),
      'sas[0]',
    );
    expect(c).toMatchObject({ alg: 4, innerFamily: 6, outerFamily: 6, replayWindow: 64, seq: 0n });
    expect(c.outerDst).toEqual(Buffer.from('20010db8000000000000000000000002', 'hex'));
    expect(espSaConf(base(), 'x')).not.toHaveProperty('authKey');
  });

  it('refuses each bad field by name', () => {
    expect(refusedAt(base({ spi: 255 }))).toBe('sas[0].spi');
    expect(refusedAt(base({ spi: 2 ** 32 }))).toBe('sas[0].spi');
    expect(refusedAt(base({ algorithm: 'aes-ctr' as EspSa['algorithm'] }))).toBe(
      'sas[0].algorithm',
    );
    expect(refusedAt(base({ algorithm: 'toString' as EspSa['algorithm'] }))).toBe(
      'sas[0].algorithm',
    );
    expect(refusedAt(base({ key: Buffer.alloc(16) }))).toBe('sas[0].key');
    expect(refusedAt(base({ algorithm: 'aes-gcm-256', key: Buffer.alloc(32) }))).toBe('sas[0].key');
    expect(refusedAt(base({ authKey: Buffer.alloc(32) }))).toBe('sas[0].authKey');
    expect(refusedAt(base({ algorithm: 'aes-cbc-128-hmac-sha256', key: Buffer.alloc(16) }))).toBe(
      'sas[0].authKey',
    );
    expect(refusedAt(base({ innerFamily: 5 as 4 }))).toBe('sas[0].innerFamily');
    expect(refusedAt(base({ tunnel: { src: '192.0.2.1', dst: '2001:db8::2' } }))).toBe(
      'sas[0].tunnel.dst',
    );
    expect(refusedAt(base({ tunnel: { src: 'gateway', dst: '192.0.2.2' } }))).toBe(
      'sas[0].tunnel.src',
    );
    expect(refusedAt(base({ replayWindow: 4097 }))).toBe('sas[0].replayWindow');
    expect(refusedAt(base({ seq: 2 ** 32 }))).toBe('sas[0].seq');
    expect(refusedAt(base({ seq: -1 }))).toBe('sas[0].seq');
    expect(refusedAt(base({ ttl: 0 }))).toBe('sas[0].ttl');
    expect(refusedAt(base({ lifetime: { hardPackets: 0 } }))).toBe('sas[0].lifetime.hardPackets');
    expect(refusedAt(base({ lifetime: { softBytes: 10, hardBytes: 5 } }))).toBe(
      'sas[0].lifetime.softBytes',
    );
  });

  it('takes a 64-bit sequence number with ESN', () => {
    expect(espSaConf(base({ esn: true, seq: 2n ** 40n }), 'x')).toMatchObject({
      esn: true,
      seq: 2n ** 40n,
    });
  });
});
