import type { ipsecV1 } from '@flowline/proto';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { IpsecConfigError, IpsecExistsError, IpsecInUseError, IpsecNotFoundError } from './errors';
import { KeyDirectory } from './keys';
import { sasMessage } from './service';
import { IpsecStore } from './store';
import { RecordingDataplane } from '../test/support/fake-dataplane';

const gcmKey = Buffer.from('000102030405060708090a0b0c0d0e0f10111213', 'hex'); // 16 + salt
const sa = (spi: number, extra: Partial<ipsecV1.SecurityAssociation> = {}) => ({
  spi,
  direction: 'OUTBOUND' as const,
  algorithm: 'AES_GCM_128' as const,
  encryptionKey: { key: Buffer.from(gcmKey) },
  tunnelSrc: '192.0.2.1',
  tunnelDst: '198.51.100.1',
  innerIpVersion: 4,
  ...extra,
});
const protect = (id: string, spi: number, extra: Partial<ipsecV1.Policy> = {}) => ({
  id,
  priority: 100,
  direction: 'OUTBOUND' as const,
  match: { srcPrefix: '10.1.0.0/16', dstPrefix: '10.2.0.0/16' },
  action: 'PROTECT' as const,
  saSpi: spi,
  ...extra,
});
const fieldOf = async (p: Promise<unknown>) => {
  const err = await p.catch((e: unknown) => e);
  expect(err).toBeInstanceOf(IpsecConfigError);
  return `${(err as IpsecConfigError).field}: ${(err as IpsecConfigError).reason}`;
};

describe('IpsecStore', () => {
  let dp: RecordingDataplane;
  let clock: number;
  let store: IpsecStore;
  beforeEach(() => {
    dp = new RecordingDataplane();
    clock = 1_000_000;
    store = new IpsecStore(dp, new KeyDirectory(undefined), () => clock);
  });

  it('hands an SA to the data path once, then wipes its keys and keeps no key material', async () => {
    const inline = Buffer.from(gcmKey);
    expect(await store.addSa(sa(0x1000, { encryptionKey: { key: inline } }))).toBe(1n);
    expect(inline.equals(Buffer.alloc(20))).toBe(true); // the request's inline bytes too
    expect(dp.sas.get('outbound/4096')!.key).toBe(gcmKey.toString('hex'));
    expect(dp.handed[0]!.key.equals(Buffer.alloc(20))).toBe(true);
    expect(
      JSON.stringify(store.listSas(), (_k, v) => (typeof v === 'bigint' ? String(v) : v)),
    ).not.toMatch(/key"|0001020304/);
    expect(store.listSas()[0]).toMatchObject({ spi: 4096, keyRefs: {}, replayWindow: 0 });
  });

  it('refuses bad SAs naming the field, changing nothing (unknown cipher, key length, duplicate SPI, ...)', async () => {
    await store.addSa(sa(0x1000));
    const calls = dp.calls.length;
    expect(await fieldOf(store.addSa(sa(0x1001, { algorithm: 'ALGORITHM_UNSPECIFIED' })))).toMatch(
      /^sa\.algorithm: unknown algorithm ALGORITHM_UNSPECIFIED \(one of AES_GCM_128/,
    );
    expect(
      await fieldOf(store.addSa(sa(0x1001, { encryptionKey: { key: Buffer.alloc(16) } }))),
    ).toBe(
      'sa.encryption_key.key: the aes-gcm-128 key and its 4-byte salt must be 20 bytes, got 16',
    );
    expect(await fieldOf(store.addSa(sa(0x1000)))).toBe(
      'sa.spi: SPI 4096 is in use by another OUTBOUND SA',
    );
    expect(
      await fieldOf(
        store.addSa(
          sa(0x1001, {
            algorithm: 'AES_CBC_128_HMAC_SHA256_128',
            encryptionKey: { key: Buffer.alloc(16) },
          }),
        ),
      ),
    ).toBe('sa.integrity_key: is required: the HMAC-SHA-256 key (key_ref or key)');
    expect(
      await fieldOf(store.addSa(sa(0x1001, { integrityKey: { key: Buffer.alloc(32) } }))),
    ).toMatch(/^sa\.integrity_key: aes-gcm-128 authenticates with its own key/);
    expect(await fieldOf(store.addSa(sa(255)))).toMatch(/^sa\.spi: must be 256\.\./);
    expect(await fieldOf(store.addSa(sa(0x1001, { tunnelDst: '2001:db8::1' })))).toBe(
      'sa.tunnel_dst: is IPv6 but tunnel_src is IPv4',
    );
    expect(await fieldOf(store.addSa(sa(0x1001, { tunnelSrc: '192.0.2.300' })))).toMatch(
      /^sa\.tunnel_src: /,
    );
    expect(await fieldOf(store.addSa(sa(0x1001, { innerIpVersion: 5 })))).toMatch(
      /^sa\.inner_ip_version/,
    );
    expect(await fieldOf(store.addSa(sa(0x1001, { replayWindow: 64 })))).toMatch(
      /^sa\.replay_window: is for INBOUND SAs/,
    );
    expect(
      await fieldOf(store.addSa(sa(0x1001, { direction: 'INBOUND', replayWindow: 5000 }))),
    ).toBe('sa.replay_window: must be 0..4096, got 5000');
    const inEsn = { direction: 'INBOUND' as const, esn: true };
    expect(await fieldOf(store.addSa(sa(0x1001, { ...inEsn, replayWindow: 32 })))).toBe(
      'sa.replay_window: must be at least 64 with esn, got 32',
    );
    expect(await fieldOf(store.addSa(sa(0x1001, { ...inEsn, replayOff: true })))).toMatch(
      /^sa\.replay_off: cannot be set with esn/,
    );
    expect(
      await fieldOf(store.addSa(sa(0x1001, { lifetime: { softPackets: 10, hardPackets: 10 } }))),
    ).toBe('sa.lifetime.soft_packets: must be below hard_packets (10), got 10');
    expect(dp.calls.length).toBe(calls);
    expect(store.listSas().map((s) => s.spi)).toEqual([4096]);
    expect(store.generation).toBe(1n);
  });

  it('an SA the data path refuses is not kept, and its keys are wiped all the same', async () => {
    dp.refuse = true;
    await expect(store.addSa(sa(0x2000))).rejects.toThrow(/no crypto device/);
    expect(store.listSas()).toEqual([]);
    expect(dp.handed[0]!.key.equals(Buffer.alloc(20))).toBe(true);
    expect(store.generation).toBe(0n);
  });

  it('inbound SAs take a replay window (64 by default, 0 with replay_off)', async () => {
    await store.addSa(sa(0x3000, { direction: 'INBOUND' }));
    await store.addSa(sa(0x3001, { direction: 'INBOUND', replayOff: true }));
    await store.addSa(sa(0x3002, { direction: 'INBOUND', replayWindow: 1024, esn: true }));
    expect(store.listSas().map((s) => [s.spi, s.replayWindow, s.esn])).toEqual([
      [0x3000, 64, false],
      [0x3001, 0, false],
      [0x3002, 1024, true],
    ]);
  });

  it('protect policies must name an SA of their direction carrying their family', async () => {
    await store.addSa(sa(0x1000));
    expect(await fieldOf(store.addPolicy(protect('p', 0x9999)))).toBe(
      'policy.sa_spi: no OUTBOUND SA has SPI 39321',
    );
    expect(
      await fieldOf(store.addPolicy(protect('p', 0x1000, { match: { protocol: 'udp' } }))),
    ).toMatch(/^policy\.match: SA 4096 carries IPv4 only: .* it matches IPv4 and IPv6$/);
    expect(await fieldOf(store.addPolicy(protect('p', 0x1000, { direction: 'INBOUND' })))).toBe(
      'policy.sa_spi: no INBOUND SA has SPI 4096',
    );
    expect(await fieldOf(store.addPolicy({ ...protect('p', 0x1000), action: 'BYPASS' }))).toMatch(
      /^policy\.sa_spi: is for PROTECT policies/,
    );
    expect(
      await fieldOf(store.addPolicy(protect('p', 0x1000, { match: { srcPrefix: '10.1.0.1/16' } }))),
    ).toMatch(/^policy\.match\.src_prefix: /);
    expect(dp.calls).toEqual(['addSa outbound 4096']);
  });

  it('keeps each direction ordered by priority; a refused set leaves the old one', async () => {
    await store.addSa(sa(0x1000));
    await store.addPolicy(protect('low', 0x1000, { priority: 10 }));
    await store.addPolicy({
      id: 'ike',
      priority: 500,
      direction: 'OUTBOUND',
      match: { protocol: 'udp', dstPorts: { first: 500, last: 500 } },
      action: 'BYPASS',
    });
    await store.addPolicy({ id: 'in-drop', priority: 1, direction: 'INBOUND', action: 'DISCARD' });
    expect(dp.policies.outbound.map((p) => p.id)).toEqual(['ike', 'low']);
    expect(dp.policies.inbound.map((p) => p.id)).toEqual(['in-drop']);
    await expect(store.addPolicy(protect('low', 0x1000))).rejects.toThrow(IpsecExistsError);
    dp.refuse = true;
    await expect(store.deletePolicy('ike')).rejects.toThrow(/rte_acl_build/);
    dp.refuse = false;
    expect(
      store
        .listPolicies()
        .map((p) => p.id)
        .sort(),
    ).toEqual(['ike', 'in-drop', 'low']);
    await expect(store.deletePolicy('none')).rejects.toThrow(IpsecNotFoundError);
  });

  it('refuses a policy past the native rules a direction holds (both families: two), naming it', async () => {
    const bypass = (id: string, match: ipsecV1.Policy['match'] = {}) => ({
      id,
      priority: 10,
      direction: 'OUTBOUND' as const,
      match,
      action: 'BYPASS' as const,
    });
    for (let i = 0; i < 511; i++) await store.addPolicy(bypass(`both-${i}`));
    await store.addPolicy(bypass('v4', { ipVersion: 4 }));
    await store.addPolicy(bypass('v6', { ipVersion: 6 })); // 1024: exactly full
    const gen = store.generation;
    const calls = dp.calls.length;
    expect(await fieldOf(store.addPolicy(bypass('one-more', { ipVersion: 4 })))).toBe(
      'policy: the OUTBOUND policies would take 1025 native rules (a policy matching both IP ' +
        'families takes two), over the 1024 a direction holds',
    );
    expect(await fieldOf(store.updatePolicy(bypass('v4')))).toMatch(/^policy: .* 1025 native/);
    expect(dp.calls.length).toBe(calls);
    expect(store.generation).toBe(gen);
    expect(store.listPolicies().find((p) => p.id === 'v4')?.match.families).toEqual([4]);
    expect(dp.policies.outbound).toHaveLength(513);
    // the other direction has its own stage
    await store.addPolicy({ ...bypass('in'), direction: 'INBOUND' });
    await store.deletePolicy('v6');
    await store.updatePolicy(bypass('v4'));
    expect(dp.policies.outbound).toHaveLength(512);
  });

  it('rekeys make-before-break: new SAs first, one policy switch, then the old SAs go', async () => {
    await store.addSa(sa(0x1000, { direction: 'INBOUND' }));
    await store.addSa(sa(0x1001));
    await store.addPolicy(protect('site-b', 0x1001));
    await store.addPolicy(protect('site-c', 0x1001, { priority: 10 }));
    await expect(store.deleteSa('outbound', 0x1001)).rejects.toThrow(IpsecInUseError);
    await expect(store.deleteSa('outbound', 0x1001)).rejects.toThrow(/used by policy site-b/);
    dp.calls.length = 0;
    await store.addSa(sa(0x2000, { direction: 'INBOUND' })); // both inbound SPIs accepted now
    await store.addSa(sa(0x2001));
    await store.updatePolicy(protect('site-b', 0x2001)); // the one switch
    expect(store.listPolicies().map((p) => p.id)).toEqual(['site-b', 'site-c']); // place kept
    await store.updatePolicy(protect('site-c', 0x2001, { priority: 10 }));
    await store.deleteSa('outbound', 0x1001);
    await store.deleteSa('inbound', 0x1000);
    expect(dp.calls).toEqual([
      'addSa inbound 8192',
      'addSa outbound 8193',
      'applyPolicies outbound site-b,site-c',
      'applyPolicies outbound site-b,site-c',
      'deleteSa outbound 4097',
      'deleteSa inbound 4096',
    ]);
    expect(dp.policies.outbound[0]!.saSpi).toBe(0x2001);
    await expect(store.deleteSa('inbound', 0x1000)).rejects.toThrow(IpsecNotFoundError);
    expect(
      await fieldOf(store.updatePolicy(protect('site-b', 0x1000, { direction: 'INBOUND' }))),
    ).toMatch(/^policy\.sa_spi: no INBOUND SA/);
  });

  it('seconds lifetimes: soft marks the SA for rekeying, hard takes it out of the data path', async () => {
    await store.addSa(sa(0x1000, { lifetime: { softSeconds: 60, hardSeconds: 90 } }));
    clock += 59_999;
    expect(await store.checkLifetimes()).toEqual([]);
    clock += 1;
    expect(
      (await store.checkLifetimes()).map((s) => [s.spi, s.softExpired, s.hardExpired]),
    ).toEqual([[0x1000, true, false]]);
    expect(dp.sas.has('outbound/4096')).toBe(true);
    clock += 30_000;
    expect((await store.checkLifetimes()).map((s) => s.hardExpired)).toEqual([true]);
    expect(dp.sas.has('outbound/4096')).toBe(false);
    // an expired SA cannot be protected with; deleting it does not touch the data path again
    expect(await fieldOf(store.addPolicy(protect('p', 0x1000)))).toMatch(/no OUTBOUND SA/);
    dp.calls.length = 0;
    await store.deleteSa('outbound', 0x1000);
    expect(dp.calls).toEqual([]);
    expect(store.listSas()).toEqual([]);
  });

  it('a hard-expired SA keeps reporting the counters it had in the data path', async () => {
    await store.addSa(sa(0x1000, { lifetime: { hardSeconds: 90 } }));
    dp.packets.set('outbound/4096', 5n);
    clock += 90_000;
    expect((await store.checkLifetimes()).map((s) => s.hardExpired)).toEqual([true]);
    expect(dp.sas.has('outbound/4096')).toBe(false);
    expect(store.saCounters(store.listSas()[0]!)).toMatchObject({ packets: 5n, bytes: 500n });
    expect(sasMessage(store).sas?.[0]).toMatchObject({
      counters: { packets: '5', bytes: '500', sequence: '7' },
      hardExpired: true,
      cryptoDevice: 'crypto_aesni_gcm0',
    });
  });

  it('wipes the inline keys of a refused SA, both of them, whatever it was refused for', async () => {
    const zero = (b: Uint8Array) => b.every((x) => x === 0);
    // refused before any key is read
    const early = Buffer.from(gcmKey);
    expect(await fieldOf(store.addSa(sa(255, { encryptionKey: { key: early } })))).toMatch(
      /^sa\.spi: /,
    );
    expect(zero(early)).toBe(true);
    const both = { enc: new Uint8Array(16).fill(9), integ: new Uint8Array(32).fill(9) };
    expect(
      await fieldOf(
        store.addSa(
          sa(0x1001, {
            algorithm: 'AES_CBC_128_HMAC_SHA256_128',
            encryptionKey: { key: both.enc },
            integrityKey: { key: both.integ },
            tunnelSrc: 'nope',
          }),
        ),
      ),
    ).toMatch(/^sa\.tunnel_src: /);
    expect([zero(both.enc), zero(both.integ)]).toEqual([true, true]);
    // an AES-GCM SA given an integrity key
    const gcm = { enc: Buffer.from(gcmKey), integ: Buffer.alloc(32, 7) };
    expect(
      await fieldOf(
        store.addSa(
          sa(0x1001, { encryptionKey: { key: gcm.enc }, integrityKey: { key: gcm.integ } }),
        ),
      ),
    ).toMatch(/^sa\.integrity_key: aes-gcm-128 authenticates with its own key/);
    expect([zero(gcm.enc), zero(gcm.integ)]).toEqual([true, true]);
    // a wrong-length encryption key: the integrity key was never read
    const short = { enc: Buffer.alloc(15, 7), integ: Buffer.alloc(32, 7) };
    expect(
      await fieldOf(
        store.addSa(
          sa(0x1001, {
            algorithm: 'AES_CBC_128_HMAC_SHA256_128',
            encryptionKey: { key: short.enc },
            integrityKey: { key: short.integ },
          }),
        ),
      ),
    ).toMatch(/^sa\.encryption_key\.key: .* must be 16 bytes, got 15$/);
    expect([zero(short.enc), zero(short.integ)]).toEqual([true, true]);
    expect(store.listSas()).toEqual([]);
    expect(dp.calls).toEqual([]);
  });
});

describe('IpsecStore seconds lifetimes: a monotonic clock by default', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('a wall-clock step neither expires an SA early nor keeps it past hard_seconds', async () => {
    // the wall clock, mocked before the store exists (a store reading it would see the steps)
    const start = Date.now();
    let wall = start;
    vi.spyOn(Date, 'now').mockImplementation(() => wall);
    const dp = new RecordingDataplane();
    const store = new IpsecStore(dp, new KeyDirectory(undefined));
    await store.addSa(sa(0x1000, { lifetime: { hardSeconds: 3600 } }));
    const mono = performance.now();
    // NTP steps the wall clock 2 h forward: nothing expires, the age stays as it was
    wall = start + 2 * 3600_000;
    expect(await store.checkLifetimes()).toEqual([]);
    expect(dp.sas.has('outbound/4096')).toBe(true);
    expect(Number(sasMessage(store).sas?.[0]?.ageSeconds)).toBeLessThan(60);
    // then 2 h back while 3601 s pass: the SA expires all the same
    wall = start - 2 * 3600_000;
    vi.spyOn(performance, 'now').mockReturnValue(mono + 3601_000);
    expect((await store.checkLifetimes()).map((s) => [s.spi, s.hardExpired])).toEqual([
      [0x1000, true],
    ]);
    expect(dp.sas.has('outbound/4096')).toBe(false);
  });

  it('an injected monotonic clock past hard_seconds expires the SA', async () => {
    const dp = new RecordingDataplane();
    let t = 5_000;
    const store = new IpsecStore(dp, new KeyDirectory(undefined), () => t);
    await store.addSa(sa(0x1000, { lifetime: { hardSeconds: 3600 } }));
    t += 3599_999;
    expect(await store.checkLifetimes()).toEqual([]);
    t += 1_001;
    expect((await store.checkLifetimes()).map((s) => s.hardExpired)).toEqual([true]);
    expect(sasMessage(store).sas?.[0]?.ageSeconds).toBe('3601');
  });
});
