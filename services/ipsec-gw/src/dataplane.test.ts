import { parseAddress } from '@flowline/packet';
import { describe, expect, it } from 'vitest';
import { keyDirOf } from './config';
import { type EspSaCounters, type Pipeline, PipelineError } from '@flowline/dpdk';
import { GatewayPipeline, espSaOf, saFieldError } from './dataplane';
import { IpsecConfigError } from './errors';
import type { SaSpec } from './sa';

const spec = (over: Partial<SaSpec> = {}): SaSpec => ({
  spi: 0x2001,
  direction: 'outbound',
  algorithm: 'aes-cbc-128-hmac-sha256',
  key: Buffer.alloc(16, 1),
  integrityKey: Buffer.alloc(32, 2),
  keyRefs: {},
  tunnelSrc: parseAddress('2001:db8::1'),
  tunnelDst: parseAddress('2001:db8:0:0:0:0:0:2'),
  innerFamily: 4,
  esn: true,
  replayWindow: 0,
  lifetime: {
    softPackets: 0n,
    hardPackets: 1000n,
    softBytes: 0n,
    hardBytes: 0n,
    softSeconds: 10n,
    hardSeconds: 20n,
  },
  ...over,
});

describe('espSaOf: an SA of the API in the data path form', () => {
  it('passes the key Buffers themselves (the store wipes them), addresses as text, counts set', () => {
    const s = spec();
    const esp = espSaOf(s);
    expect(esp.key).toBe(s.key);
    expect(esp.authKey).toBe(s.integrityKey);
    expect(esp).toMatchObject({
      spi: 0x2001,
      algorithm: 'aes-cbc-128-hmac-sha256',
      innerFamily: 4,
      tunnel: { src: '2001:db8::1', dst: '2001:db8::2' },
      esn: true,
      replayWindow: 0,
      lifetime: { hardPackets: 1000 },
    });
    // seconds are the store's: the data path gets packets and bytes only
    expect(Object.keys(esp.lifetime ?? {})).toEqual(['hardPackets']);
  });

  it('refuses a lifetime past 2^53 - 1 naming the field', () => {
    const s = spec();
    s.lifetime.softBytes = 1n << 60n;
    const err = (() => {
      try {
        espSaOf(s);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(IpsecConfigError);
    expect((err as IpsecConfigError).field).toBe('sa.lifetime.soft_bytes');
  });
});

describe('keyDirOf', () => {
  it('takes a relative key directory from the config file folder', () => {
    expect(keyDirOf({ keyDir: 'keys' } as never, '/etc/gw/nf.yaml')).toBe('/etc/gw/keys');
    expect(keyDirOf({ keyDir: '/run/keys' } as never, '/etc/gw/nf.yaml')).toBe('/run/keys');
    expect(keyDirOf({} as never, '/etc/gw/nf.yaml')).toBeUndefined();
  });
});

describe('saFieldError: a data-path refusal under the API field', () => {
  it('maps the native SA field to the request field, keeping the reason', () => {
    const e = saFieldError(
      new PipelineError(
        'every queue pair of crypto_openssl0 is taken',
        'stages[esp-in].sas[4096].algorithm',
      ),
    );
    expect(e).toBeInstanceOf(IpsecConfigError);
    expect(e?.message).toBe('sa.algorithm: every queue pair of crypto_openssl0 is taken');
    expect(saFieldError(new PipelineError('x', 'stages[esp-out].sas[4096].authKey'))?.field).toBe(
      'sa.integrity_key',
    );
    expect(saFieldError(new PipelineError('no room', 'stages[esp-out].sas[4096]'))).toBeUndefined();
  });
});

describe('GatewayPipeline.deleteSa', () => {
  it("returns the SA's final counters from the data path, deleted in its direction's stage", () => {
    const deleted: string[] = [];
    const final: EspSaCounters = {
      packets: 5,
      bytes: 500,
      authFailures: 1,
      replays: 2,
      lifetimeDrops: 3,
      trailerErrors: 0,
      errors: 0,
      seq: 6n,
      softExpired: false,
      hardExpired: false,
      cpuCrypto: true,
      device: 'crypto_aesni_gcm0',
    };
    // the pipeline alone, without the native one GatewayPipeline's constructor creates
    const gw = Object.create(GatewayPipeline.prototype) as GatewayPipeline;
    const pipeline = {
      deleteSa: (stage: string, spi: number) => (deleted.push(`${stage} ${spi}`), final),
    } as unknown as Pipeline;
    Object.defineProperty(gw, 'pipeline', { value: pipeline });
    expect(gw.deleteSa('inbound', 0x1000)).toEqual({
      packets: 5n,
      bytes: 500n,
      authFailures: 1n,
      replays: 2n,
      lifetimeDrops: 3n,
      trailerErrors: 0n,
      errors: 0n,
      sequence: 6n,
      softExpired: false,
      hardExpired: false,
      cryptoDevice: 'crypto_aesni_gcm0',
      cpuCrypto: true,
    });
    expect(deleted).toEqual(['esp-in 4096']);
  });
});
