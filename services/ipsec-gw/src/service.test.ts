import * as grpc from '@grpc/grpc-js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyDirectory } from './keys';
import { IpsecStore } from './store';
import { RecordingDataplane } from '../test/support/fake-dataplane';
import { type ServedGateway, call, refusal, serveGateway } from '../test/support/grpc';

describe('flowline.ipsec.v1 over gRPC (mutual TLS)', () => {
  const keyDir = mkdtempSync(join(tmpdir(), 'flowline-ipsec-keydir-'));
  const cbcKey = '0x' + '11'.repeat(32);
  const hmacKey = '22'.repeat(32);
  writeFileSync(join(keyDir, 'b-cipher'), cbcKey);
  writeFileSync(join(keyDir, 'b-auth'), hmacKey);
  const dp = new RecordingDataplane();
  const store = new IpsecStore(dp, new KeyDirectory(keyDir));
  let gw: ServedGateway;
  beforeAll(async () => {
    gw = await serveGateway(store);
  });
  afterAll(async () => {
    await gw?.close();
    rmSync(keyDir, { recursive: true, force: true });
  });
  const cbcSa = {
    spi: 0x5000,
    direction: 'INBOUND' as const,
    algorithm: 'AES_CBC_256_HMAC_SHA256_128' as const,
    encryptionKey: { keyRef: 'b-cipher' },
    integrityKey: { keyRef: 'b-auth' },
    tunnelSrc: '2001:db8:b::1',
    tunnelDst: '2001:db8:a::1',
    innerIpVersion: 6,
    esn: true,
    lifetime: { hardBytes: '1000000000000' },
  };

  it('AddSa takes keys by reference; ListSas shows the references and counters, never a key', async () => {
    const op = gw.operator;
    expect(await call(op.AddSa.bind(op), { sa: cbcSa })).toEqual({ generation: '1' });
    expect(dp.sas.get('inbound/20480')).toMatchObject({
      key: '11'.repeat(32),
      integrityKey: hmacKey,
    });
    await call(op.AddSa.bind(op), {
      sa: {
        spi: 0x5001,
        direction: 'OUTBOUND',
        algorithm: 'AES_GCM_256',
        encryptionKey: { key: Buffer.alloc(36, 0x33) },
        tunnelSrc: '2001:db8:a::1',
        tunnelDst: '2001:db8:b::1',
        innerIpVersion: 4,
      },
    });
    const list = await call(op.ListSas.bind(op), {});
    expect(JSON.stringify(list)).not.toMatch(/1111|2222|3333/);
    expect(list.generation).toBe('2');
    const [inb, out] = list.sas;
    expect(inb).toMatchObject({
      sa: {
        spi: 0x5000,
        direction: 'INBOUND',
        algorithm: 'AES_CBC_256_HMAC_SHA256_128',
        encryptionKey: { keyRef: 'b-cipher' },
        integrityKey: { keyRef: 'b-auth' },
        tunnelSrc: '2001:db8:b::1',
        innerIpVersion: 6,
        esn: true,
        replayWindow: 64,
        lifetime: { hardBytes: '1000000000000', softBytes: '0' },
      },
      counters: { packets: '20480', authFailures: '1', replays: '2', sequence: '7' },
      cryptoDevice: 'crypto_aesni_gcm0',
      cpuCrypto: true,
      hardExpired: false,
    });
    expect(out!.sa!.encryptionKey).toBeNull(); // inline: not even a reference
  });

  it('bad input is INVALID_ARGUMENT naming the field, and nothing changes', async () => {
    const op = gw.operator;
    const cases: [object, RegExp][] = [
      [
        { ...cbcSa, spi: 0x5002, encryptionKey: { keyRef: '../etc/shadow' } },
        /^sa\.encryption_key\.key_ref: /,
      ],
      [
        {
          ...cbcSa,
          spi: 0x5002,
          encryptionKey: { keyRef: 'b-auth' },
          algorithm: 'AES_CBC_128_HMAC_SHA256_128',
        },
        /^sa\.encryption_key\.key_ref: the aes-cbc-128-hmac-sha256 cipher key must be 16 bytes, got 32$/,
      ],
      [{ ...cbcSa }, /^sa\.spi: SPI 20480 is in use by another INBOUND SA$/],
      [{ ...cbcSa, spi: 0x5002, algorithm: 'CHACHA' }, /^sa\.algorithm: unknown algorithm/],
      [{}, /^sa\.spi: /],
    ];
    for (const [sa, want] of cases) {
      const e = await refusal(op.AddSa.bind(op), { sa } as never);
      expect(e.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(e.details).toMatch(want);
    }
    const e = await refusal(op.AddPolicy.bind(op), {
      policy: { id: 'x', priority: 1, direction: 'OUTBOUND', action: 'PROTECT', saSpi: 1 },
    });
    expect([e.code, e.details]).toEqual([
      grpc.status.INVALID_ARGUMENT,
      'policy.sa_spi: no OUTBOUND SA has SPI 1',
    ]);
    expect((await call(op.ListSas.bind(op), {})).generation).toBe('2');
  });

  it('policies: added, listed with their packets, in use refuses DeleteSa, NOT_FOUND and ALREADY_EXISTS', async () => {
    const op = gw.operator;
    const policy = {
      id: 'to-b',
      priority: 100,
      direction: 'OUTBOUND' as const,
      match: { ipVersion: 4, dstPrefix: '10.2.0.0/16', protocol: 'udp' },
      action: 'PROTECT' as const,
      saSpi: 0x5001,
    };
    await call(op.AddPolicy.bind(op), { policy });
    expect((await refusal(op.AddPolicy.bind(op), { policy })).code).toBe(
      grpc.status.ALREADY_EXISTS,
    );
    const list = await call(op.ListPolicies.bind(op), {});
    expect(list.policies).toEqual([
      {
        policy: {
          ...policy,
          match: {
            ipVersion: 4,
            srcPrefix: '',
            dstPrefix: '10.2.0.0/16',
            protocol: '17',
            srcPorts: null,
            dstPorts: null,
          },
        },
        packets: '10',
      },
    ]);
    const inUse = await refusal(op.DeleteSa.bind(op), { direction: 'OUTBOUND', spi: 0x5001 });
    expect([inUse.code, inUse.details]).toEqual([
      grpc.status.FAILED_PRECONDITION,
      'SA 20481 is used by policy to-b: point it at another SA (UpdatePolicy) or delete it first',
    ]);
    expect((await refusal(op.DeletePolicy.bind(op), { id: 'nope' })).code).toBe(
      grpc.status.NOT_FOUND,
    );
    const bad = await refusal(op.DeleteSa.bind(op), { direction: 'DIRECTION_UNSPECIFIED', spi: 1 });
    expect([bad.code, bad.details]).toEqual([
      grpc.status.INVALID_ARGUMENT,
      'direction: must be INBOUND or OUTBOUND (got DIRECTION_UNSPECIFIED)',
    ]);
  });

  it("another tenant's NF may read nothing secret and change nothing", async () => {
    const spy = gw.otherTenant;
    const e = await refusal(spy.DeleteSa.bind(spy), { direction: 'INBOUND', spi: 0x5000 });
    expect(e.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(e.details).toMatch(
      /tenant-b\/nf\/spy may not call \/flowline\.ipsec\.v1\.IpsecGateway\/DeleteSa/,
    );
    expect(dp.sas.has('inbound/20480')).toBe(true);
    const read = await refusal(spy.ListSas.bind(spy), {});
    expect([read.code, read.details]).toEqual([
      grpc.status.PERMISSION_DENIED,
      expect.stringMatching(/may not call \/flowline\.ipsec\.v1\.IpsecGateway\/ListSas/),
    ]);
  });
});
