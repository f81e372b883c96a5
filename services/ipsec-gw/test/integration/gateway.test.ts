/**
 * The real gateway process end to end: `node dist/main.js` on two net_virtio_user ports
 * (server=1, as in a pod), `inner` the protected side and `outer` the unprotected one. This test
 * process is the switch: its own EAL with net_vhost client ports on the gateway's sockets. SAs
 * and policies go in over the gateway's gRPC API (mutual TLS, as the operator); the ESP peer is
 * scapy's SecurityAssociation (packages/dpdk/test/support/esp_peer.py), since this machine's
 * kernel has no ESP (CONFIG_INET_ESP unset, no modules: see the README). Checked: clear packets
 * in the protected port leave the outer port as ESP that scapy decrypts to the exact packets;
 * ESP scapy makes, sent into the outer port, leaves the protected port as the exact clear
 * packets; bypass and discard by policy; exact per-SA and per-policy counters over ListSas and
 * ListPolicies; a wrong key counted as an auth failure; bad SAs refused with INVALID_ARGUMENT
 * naming the field and nothing changed; another NF's identity refused; SIGTERM exits 0.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { LocalPki, channelCredentials, nfId } from '@flowline/grpc-auth';
import {
  Mempool,
  Port,
  buildPacket,
  devargs,
  initEal,
  leftoverFiles,
  type Eal,
} from '@flowline/dpdk';
import { type ipsecV1, ipsecV1 as ipsec, loadHealthV1 } from '@flowline/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const PYTHON = '/usr/bin/python3';
const PEER = join(
  __dirname,
  '..',
  '..',
  '..',
  '..',
  'packages',
  'dpdk',
  'test',
  'support',
  'esp_peer.py',
);

/** Skipped only where the runner's expected skips say so: no root, no hugepages. */
function notReady(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root';
  if (!existsSync('/dev/hugepages')) return 'needs hugetlbfs on /dev/hugepages';
  return undefined;
}
const skip = notReady();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function waitFor(fn: () => boolean | Promise<boolean>, ms = 10_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn()) return true;
    await sleep(20);
  }
  return fn();
}
/** Hugepage files and runtime dirs of an EAL prefix (the NF adds its pid: `<prefix>-<pid>`). */
function scrubPrefix(prefix: string): void {
  for (const f of leftoverFiles(prefix, { match: 'process' }))
    rmSync(f, { recursive: true, force: true });
}

const dir = mkdtempSync('/tmp/ipsecgw-');
const pki = new LocalPki(join(dir, 'pki'));
const gwPrefix = `fltest-ipsecgw-${process.pid}`;
const ourPrefix = `fltest-ipsecsw-${process.pid}`;
const grpcSock = join(dir, 'grpc.sock');
const sock = { inner: join(dir, 'inner.sock'), outer: join(dir, 'outer.sock') };
const main = join(__dirname, '..', '..', 'dist', 'main.js');

let child: ChildProcess | undefined;
let stderr = '';
let exited: Promise<number | null> = Promise.resolve(null);
let eal: Eal | undefined;
let pool: Mempool;
let inside: Port; // our end of the gateway's protected port
let outside: Port; // our end of its unprotected port
let client: ipsecV1.IpsecGatewayClient;

type Unary<Req, Res> = (req: Req, cb: (e: grpc.ServiceError | null, r?: Res) => void) => unknown;
const call = <Req, Res>(fn: Unary<Req, Res>, req: Req): Promise<Res> =>
  new Promise((resolve, reject) => fn(req, (e, r) => (e ? reject(e) : resolve(r as Res))));
async function refusal<Req, Res>(fn: Unary<Req, Res>, req: Req): Promise<grpc.ServiceError> {
  const e = await call(fn, req).then(
    () => undefined,
    (err: grpc.ServiceError) => err,
  );
  if (!e) throw new Error('the call succeeded');
  return e;
}

// The SAs: outbound AES-GCM-128 with its key from the key directory (a mounted Secret's
// layout), inbound AES-CBC-256 + HMAC-SHA-256 with inline keys (as an IKE daemon gives them).
const outKey = randomBytes(20);
const inKey = randomBytes(32);
const inAuth = randomBytes(32);
const OUT_SPI = 0x1001;
const IN_SPI = 0x2001;
const GW = '192.0.2.1';
const PEER_ADDR = '192.0.2.2';

/** The peer's view of an SA (esp_peer.py's request). */
const peerSa = {
  out: {
    spi: OUT_SPI,
    algorithm: 'aes-gcm-128',
    key: outKey.toString('hex'),
    tunnel: { src: GW, dst: PEER_ADDR },
  },
  in: {
    spi: IN_SPI,
    algorithm: 'aes-cbc-256-hmac-sha256',
    key: inKey.toString('hex'),
    authKey: inAuth.toString('hex'),
    tunnel: { src: PEER_ADDR, dst: GW },
  },
};

type PeerOp = { op: 'encrypt'; packet: Buffer; seq: number } | { op: 'decrypt'; packet: Buffer };
/** Runs ops through scapy; each result the packet or the peer's error. */
function peer(sa: object, ops: PeerOp[]): (Buffer | string)[] {
  const r = spawnSync(PYTHON, [PEER], {
    input: JSON.stringify({
      sa,
      ops: ops.map((o) => ({ ...o, packet: o.packet.toString('hex') })),
    }),
    encoding: 'utf8',
    timeout: 60_000,
    maxBuffer: 64 << 20,
  });
  if (r.status !== 0) throw new Error(`esp_peer.py failed (${r.status}): ${r.stderr}`);
  return (
    JSON.parse(r.stdout) as { results: ({ packet: string } | { error: string })[] }
  ).results.map((x) => ('packet' in x ? Buffer.from(x.packet, 'hex') : x.error));
}
const bytes = (x: Buffer | string | undefined): Buffer => {
  if (!Buffer.isBuffer(x)) throw new Error(`the peer refused the packet: ${String(x)}`);
  return x;
};

const MACS = Buffer.from('020000000002020000000001', 'hex');
/** An Ethernet frame around an IP packet, the ethertype by its version. */
const frame = (ip: Buffer) =>
  Buffer.concat([MACS, Buffer.from(ip[0]! >> 4 === 6 ? [0x86, 0xdd] : [0x08, 0x00]), ip]);
const udp = (src: string, dst: string, dport: number, i: number) =>
  buildPacket({ src, dst, sport: 1000 + i, dport, size: 64 + ((i * 97) % 1300) });

/** Sends frames into our port, then collects what comes out of `to` until `expect` arrived. */
async function exchange(from: Port, to: Port, frames: Buffer[], want: number): Promise<Buffer[]> {
  let sent = 0;
  expect(
    await waitFor(() => (sent += from.send(0, pool, frames.slice(sent))) === frames.length),
  ).toBe(true);
  const got: Buffer[] = [];
  await waitFor(() => {
    got.push(...to.receive(0, 256));
    return got.length >= want;
  });
  await sleep(150); // anything more than wanted would show now
  got.push(...to.receive(0, 256));
  return got;
}

const listSas = () => call(client.ListSas.bind(client), {});
const listPolicies = () => call(client.ListPolicies.bind(client), {});
async function counters(spi: number): Promise<Record<string, string>> {
  const s = (await listSas()).sas.find((x) => x.sa?.spi === spi);
  return (s?.counters ?? {}) as Record<string, string>;
}
async function policyPackets(): Promise<Record<string, string>> {
  return Object.fromEntries(
    (await listPolicies()).policies.map((p) => [p.policy?.id ?? '', String(p.packets)]),
  );
}
/** Waits until f() equals want (the gateway counts asynchronously), then checks it exactly. */
async function settles<T>(f: () => Promise<T>, want: T): Promise<void> {
  let last: T | undefined;
  await waitFor(async () => {
    last = await f();
    return isDeepStrictEqual(last, want);
  });
  expect(last).toEqual(want);
}

beforeAll(async () => {
  if (skip) return;
  // The peer is no reason to skip (tools/setup/setup.sh installs it): without it, fail saying so.
  const scapy = spawnSync(PYTHON, ['-c', 'import scapy.layers.ipsec'], { timeout: 30_000 });
  if (scapy.status !== 0)
    throw new Error('the ESP peer needs python3-scapy (tools/setup/setup.sh installs it)');
  mkdirSync(join(dir, 'keys'));
  writeFileSync(join(dir, 'keys', 'out-gcm'), `0x${outKey.toString('hex')}\n`);
  writeFileSync(
    join(dir, 'gw.json'),
    JSON.stringify({
      nf: {
        protectedPort: 'inner',
        unprotectedPort: 'outer',
        keyDir: 'keys',
        lifetimeCheckMs: 200,
      },
    }),
  );
  // The switch side first: the gateway's server=1 ports wait for their client while it starts.
  eal = initEal({
    filePrefix: ourPrefix,
    lcores: [0],
    memoryMb: 128,
    logLevel: ['lib.vhost.config:warning'],
  });
  pool = Mempool.create({ size: 4095 });
  inside = Port.open(devargs.vhost({ id: 'gwi', iface: sock.inner, client: true }), pool);
  outside = Port.open(devargs.vhost({ id: 'gwo', iface: sock.outer, client: true }), pool);
  child = spawn(
    process.execPath,
    [
      main,
      ...LocalPki.flags(pki.nf('default', 'gw')),
      '--config',
      join(dir, 'gw.json'),
      '--name',
      'gw',
      '--grpc-address',
      `unix://${grpcSock}`,
      '--metrics-port',
      '0',
      '--lcores',
      '0,1',
      '--file-prefix',
      gwPrefix,
      '--port',
      `name=inner,devargs=net_virtio_user_gwi,path=${sock.inner},server=1,queues=1`,
      '--port',
      `name=outer,devargs=net_virtio_user_gwo,path=${sock.outer},server=1,queues=1`,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout!.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  exited = new Promise((resolve) => child!.once('exit', (code) => resolve(code)));
  const asOperator = channelCredentials(pki.operator(), nfId('default', 'gw'));
  client = new (ipsec.loadIpsecV1().IpsecGateway)(`unix://${grpcSock}`, asOperator);
  const health = new (loadHealthV1().Health)(`unix://${grpcSock}`, asOperator);
  let status: string | undefined;
  await waitFor(async () => {
    status = await call<object, { status?: string }>(health.check.bind(health), {}).then(
      (r) => r.status,
      () => undefined,
    );
    return status === 'SERVING' || child?.exitCode !== null;
  }, 30_000);
  health.close();
  if (status !== 'SERVING') throw new Error(`the gateway did not start serving:\n${stderr}`);
  if (!(await waitFor(() => inside.link().up && outside.link().up)))
    throw new Error('the vhost-user links did not come up');
}, 60_000);

afterAll(async () => {
  client?.close();
  if (child && child.exitCode === null) {
    child.kill('SIGKILL');
    await exited;
  }
  inside?.close();
  outside?.close();
  eal?.cleanup();
  scrubPrefix(gwPrefix);
  scrubPrefix(ourPrefix);
  rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(skip)('flowline-ipsec-gw process (root, hugepages; scapy as the ESP peer)', () => {
  const outSa = {
    spi: OUT_SPI,
    direction: 'OUTBOUND' as const,
    algorithm: 'AES_GCM_128' as const,
    encryptionKey: { keyRef: 'out-gcm' },
    tunnelSrc: GW,
    tunnelDst: PEER_ADDR,
    innerIpVersion: 4,
  };
  const inSa = {
    spi: IN_SPI,
    direction: 'INBOUND' as const,
    algorithm: 'AES_CBC_256_HMAC_SHA256_128' as const,
    encryptionKey: { key: inKey },
    integrityKey: { key: inAuth },
    tunnelSrc: PEER_ADDR,
    tunnelDst: GW,
    innerIpVersion: 4,
  };
  const policies = [
    {
      id: 'to-remote',
      priority: 100,
      direction: 'OUTBOUND' as const,
      match: { srcPrefix: '10.1.0.0/16', dstPrefix: '10.2.0.0/16' },
      action: 'PROTECT' as const,
      saSpi: OUT_SPI,
    },
    {
      id: 'mgmt',
      priority: 50,
      direction: 'OUTBOUND' as const,
      match: { dstPrefix: '10.9.0.0/16' },
      action: 'BYPASS' as const,
    },
    {
      id: 'from-remote',
      priority: 100,
      direction: 'INBOUND' as const,
      match: { srcPrefix: '10.2.0.0/16', dstPrefix: '10.1.0.0/16' },
      action: 'PROTECT' as const,
      saSpi: IN_SPI,
    },
    {
      id: 'ike',
      priority: 50,
      direction: 'INBOUND' as const,
      match: { ipVersion: 4, protocol: 'udp', dstPorts: { first: 500, last: 500 } },
      action: 'BYPASS' as const,
    },
  ];
  const N = 20;

  it('takes SAs and policies over gRPC (mutual TLS); another NF may not', async () => {
    expect(await call(client.AddSa.bind(client), { sa: outSa })).toEqual({ generation: '1' });
    expect(await call(client.AddSa.bind(client), { sa: inSa })).toEqual({ generation: '2' });
    for (const policy of policies) await call(client.AddPolicy.bind(client), { policy });
    const spy = new (ipsec.loadIpsecV1().IpsecGateway)(
      `unix://${grpcSock}`,
      channelCredentials(pki.nf('tenant-b', 'spy'), nfId('default', 'gw')),
    );
    try {
      const e = await refusal(spy.ListSas.bind(spy), {});
      expect(e.code).toBe(grpc.status.PERMISSION_DENIED);
    } finally {
      spy.close();
    }
    const list = await listSas();
    expect(list.sas.map((s) => [s.sa?.spi, s.cryptoDevice])).toEqual([
      [OUT_SPI, 'crypto_aesni_gcm0'],
      [IN_SPI, 'crypto_aesni_mb0'],
    ]);
    expect(JSON.stringify(list)).not.toContain(inKey.toString('hex').slice(0, 16));
  });

  it('protected port -> ESP out of the unprotected port, decrypted by scapy exactly; bypass and discard by policy', async () => {
    const clear = Array.from({ length: N }, (_, i) => udp('10.1.0.5', '10.2.0.7', 53, i));
    const out = await exchange(inside, outside, clear, N);
    expect(out).toHaveLength(N);
    out.forEach((f, i) => {
      expect(f.readUInt16BE(12)).toBe(0x0800);
      expect(f[14 + 9]).toBe(50); // ESP
      expect(f.readUInt32BE(14 + 20)).toBe(OUT_SPI);
      expect(f.readUInt32BE(14 + 24)).toBe(i + 1); // sequence numbers 1..N
    });
    const dec = peer(
      peerSa.out,
      out.map((f) => ({ op: 'decrypt', packet: f.subarray(14) })),
    );
    dec.forEach((p, i) => expect(bytes(p)).toEqual(clear[i]!.subarray(14)));
    // 3 bypass (untouched), 2 that no policy covers (discarded)
    const mgmt = [0, 1, 2].map((i) => udp('10.1.0.5', '10.9.0.1', 161, i));
    const stray = [0, 1].map((i) => udp('10.1.0.5', '10.7.0.1', 53, i));
    expect(await exchange(inside, outside, [...mgmt, ...stray], 3)).toEqual(mgmt);
    await settles(() => counters(OUT_SPI), {
      packets: String(N),
      bytes: String(clear.reduce((a, f) => a + f.length - 14, 0)),
      authFailures: '0',
      replays: '0',
      lifetimeDrops: '0',
      trailerErrors: '0',
      errors: '0',
      sequence: String(N + 1),
    });
    await settles(policyPackets, {
      'to-remote': String(N),
      mgmt: '3',
      'from-remote': '0',
      ike: '0',
    });
  });

  it('ESP from scapy into the unprotected port -> the exact clear packets out of the protected one; a wrong key counted', async () => {
    const clear = Array.from({ length: N }, (_, i) => udp('10.2.0.7', '10.1.0.5', 53, i));
    const sealed = peer(
      peerSa.in,
      clear.map((f, i) => ({ op: 'encrypt', packet: f.subarray(14), seq: i + 1 })),
    ).map((p) => frame(bytes(p)));
    const got = await exchange(outside, inside, sealed, N);
    expect(got.map((f) => f.subarray(14))).toEqual(clear.map((f) => f.subarray(14)));
    // The same SPI under another key: an auth failure, nothing delivered. Clear IKE bypasses;
    // other clear traffic is discarded.
    const forged = peer(
      {
        ...peerSa.in,
        key: randomBytes(32).toString('hex'),
        authKey: randomBytes(32).toString('hex'),
      },
      [{ op: 'encrypt', packet: clear[0]!.subarray(14), seq: N + 1 }],
    ).map((p) => frame(bytes(p)));
    const ike = [0, 1].map((i) => udp(PEER_ADDR, GW, 500, i));
    const other = [udp(PEER_ADDR, GW, 53, 0)];
    expect(await exchange(outside, inside, [...forged, ...ike, ...other], 2)).toEqual(ike);
    await settles(() => counters(IN_SPI), {
      packets: String(N),
      bytes: String(clear.reduce((a, f) => a + f.length - 14, 0)),
      authFailures: '1',
      replays: '0',
      lifetimeDrops: '0',
      trailerErrors: '0',
      errors: '0',
      sequence: String(N),
    });
    await settles(policyPackets, {
      'to-remote': String(N),
      mgmt: '3',
      'from-remote': String(N),
      ike: '2',
    });
  });

  it('refuses bad SAs and policies with INVALID_ARGUMENT naming the field; nothing is half-created', async () => {
    const before = await listSas();
    const cases: [object, RegExp][] = [
      [
        { ...outSa, spi: 0x1002, encryptionKey: { key: randomBytes(16) } },
        /^sa\.encryption_key\.key: .* must be 20 bytes, got 16$/,
      ],
      [{ ...outSa, spi: 0x1002, algorithm: 'ALGORITHM_UNSPECIFIED' }, /^sa\.algorithm: unknown/],
      [{ ...outSa }, /^sa\.spi: SPI 4097 is in use/],
      [
        { ...outSa, spi: 0x1002, encryptionKey: { keyRef: '../etc/passwd' } },
        /^sa\.encryption_key\.key_ref: /,
      ],
      [{ ...inSa, spi: 0x2002, integrityKey: undefined }, /^sa\.integrity_key: is required/],
      [{ ...outSa, spi: 0x1002, tunnelDst: '2001:db8::2' }, /^sa\.tunnel_dst: /],
      // refused by the data path's form of the SA (after validation), still by field
      [
        { ...outSa, spi: 0x1002, lifetime: { hardBytes: '18446744073709551615' } },
        /^sa\.lifetime\.hard_bytes: at most 9007199254740991/,
      ],
    ];
    for (const [sa, why] of cases) {
      const e = await refusal(client.AddSa.bind(client), { sa });
      expect(e.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(e.details).toMatch(why);
    }
    const bad = await refusal(client.AddPolicy.bind(client), {
      policy: { ...policies[0]!, id: 'orphan', saSpi: 0x3333 },
    });
    expect(bad.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(bad.details).toMatch(/^policy\.sa_spi: no OUTBOUND SA has SPI 13107/);
    const after = await listSas();
    expect(after.generation).toBe(before.generation);
    expect(after.sas.map((s) => s.sa?.spi)).toEqual([OUT_SPI, IN_SPI]);
    expect((await listPolicies()).policies.map((p) => p.policy?.id)).toEqual([
      'to-remote',
      'mgmt',
      'from-remote',
      'ike',
    ]);
    // The data path is as it was: traffic still takes the same SA, counting on from N.
    const one = [udp('10.1.0.5', '10.2.0.7', 53, 1)];
    const out = await exchange(inside, outside, one, 1);
    expect(out).toHaveLength(1);
    expect(out[0]!.readUInt32BE(14 + 20)).toBe(OUT_SPI);
    expect(out[0]!.readUInt32BE(14 + 24)).toBe(N + 1);
    expect(bytes(peer(peerSa.out, [{ op: 'decrypt', packet: out[0]!.subarray(14) }])[0])).toEqual(
      one[0]!.subarray(14),
    );
  });

  it('rekeys both ways under traffic through the API without losing a packet (make-before-break)', async () => {
    const NEW_OUT = 0x1003;
    const NEW_IN = 0x2003;
    const newOut = { ...peerSa.out, spi: NEW_OUT, key: randomBytes(20).toString('hex') };
    const newIn = {
      ...peerSa.in,
      spi: NEW_IN,
      key: randomBytes(32).toString('hex'),
      authKey: randomBytes(32).toString('hex'),
    };
    const TOTAL = 300;
    const half = TOTAL / 2;
    const clear = Array.from({ length: TOTAL }, (_, i) => udp('10.1.0.5', '10.2.0.7', 53, i));
    const back = Array.from({ length: TOTAL }, (_, i) => udp('10.2.0.7', '10.1.0.5', 53, i));
    // The peer sends under the old inbound SA (its highest accepted number is N), then, once
    // the gateway has taken the new inbound SA, under the new one.
    const sealed = [
      ...peer(
        peerSa.in,
        back
          .slice(0, half)
          .map((f, i) => ({ op: 'encrypt', packet: f.subarray(14), seq: N + 2 + i })),
      ),
      ...peer(
        newIn,
        back.slice(half).map((f, i) => ({ op: 'encrypt', packet: f.subarray(14), seq: i + 1 })),
      ),
    ].map((p) => frame(bytes(p)));
    const outGot: Buffer[] = [];
    const inGot: Buffer[] = [];
    let sentOut = 0;
    let sentIn = 0;
    let peerSwitched = false;
    const pump = (async () => {
      const end = Date.now() + 30_000;
      while ((sentOut < TOTAL || sentIn < TOTAL) && Date.now() < end) {
        sentOut += inside.send(0, pool, clear.slice(sentOut, Math.min(TOTAL, sentOut + 4)));
        const inLimit = peerSwitched ? TOTAL : half;
        sentIn += outside.send(0, pool, sealed.slice(sentIn, Math.min(inLimit, sentIn + 4)));
        outGot.push(...outside.receive(0, 256));
        inGot.push(...inside.receive(0, 256));
        await sleep(2);
      }
    })();
    const step = <Req, Res>(fn: Unary<Req, Res>, req: Req) => call(fn.bind(client), req);
    expect(await waitFor(() => sentOut >= 60)).toBe(true);
    // 1. the new inbound SA: from now on both are taken, and the peer may switch
    await step(client.AddSa, {
      sa: {
        ...inSa,
        spi: NEW_IN,
        encryptionKey: { key: Buffer.from(newIn.key, 'hex') },
        integrityKey: { key: Buffer.from(newIn.authKey, 'hex') },
      },
    });
    peerSwitched = true;
    // 2. the new outbound SA, and the protect policy switched to it in one step
    await step(client.AddSa, {
      sa: { ...outSa, spi: NEW_OUT, encryptionKey: { key: Buffer.from(newOut.key, 'hex') } },
    });
    await step(client.UpdatePolicy, { policy: { ...policies[0]!, saSpi: NEW_OUT } });
    // 3. the old outbound SA goes; the old inbound one once the peer has switched
    await step(client.DeleteSa, { direction: 'OUTBOUND', spi: OUT_SPI });
    expect(await waitFor(() => inGot.length >= half)).toBe(true);
    await step(client.UpdatePolicy, { policy: { ...policies[2]!, saSpi: NEW_IN } });
    await step(client.DeleteSa, { direction: 'INBOUND', spi: IN_SPI });
    expect(await waitFor(() => sentOut === TOTAL && sentIn === TOTAL, 20_000)).toBe(true);
    await waitFor(() => {
      outGot.push(...outside.receive(0, 256));
      inGot.push(...inside.receive(0, 256));
      return outGot.length >= TOTAL && inGot.length >= TOTAL;
    });
    await pump;

    // Outbound: every packet, the old SA's first and then the new one's, each exact.
    expect(outGot).toHaveLength(TOTAL);
    const spis = outGot.map((f) => f.readUInt32BE(14 + 20));
    const switchAt = spis.indexOf(NEW_OUT);
    expect(switchAt).toBeGreaterThan(0);
    expect(spis).toEqual([
      ...Array<number>(switchAt).fill(OUT_SPI),
      ...Array<number>(TOTAL - switchAt).fill(NEW_OUT),
    ]);
    const dec = [
      ...peer(
        peerSa.out,
        outGot.slice(0, switchAt).map((f) => ({ op: 'decrypt', packet: f.subarray(14) })),
      ),
      ...peer(
        newOut,
        outGot.slice(switchAt).map((f) => ({ op: 'decrypt', packet: f.subarray(14) })),
      ),
    ];
    dec.forEach((p, i) => expect(bytes(p)).toEqual(clear[i]!.subarray(14)));
    // Inbound: every packet, under either SA, exact and in order.
    expect(inGot.map((f) => f.subarray(14))).toEqual(back.map((f) => f.subarray(14)));
    const list = await listSas();
    expect(list.sas.map((x) => x.sa?.spi)).toEqual([NEW_IN, NEW_OUT]);
    await settles(() => counters(NEW_OUT), {
      ...(await counters(NEW_OUT)),
      packets: String(TOTAL - switchAt),
      sequence: String(TOTAL - switchAt + 1),
    });
    expect((await counters(NEW_IN)).packets).toBe(String(half));
    await settles(policyPackets, {
      'to-remote': String(N + 1 + TOTAL),
      mgmt: '3',
      'from-remote': String(N + TOTAL),
      ike: '2',
    });
  });

  it('IPv6 in IPv6 both ways: AES-GCM-256 with ESN out, AES-GCM-128 in, exact', async () => {
    const OUT6 = 0x6001;
    const IN6 = 0x6002;
    const tunnel = { gw: '2001:db8:ff::1', peer: '2001:db8:ff::2' };
    const out6 = {
      spi: OUT6,
      algorithm: 'aes-gcm-256',
      key: randomBytes(36).toString('hex'),
      tunnel: { src: tunnel.gw, dst: tunnel.peer },
      esn: true,
    };
    const in6 = {
      spi: IN6,
      algorithm: 'aes-gcm-128',
      key: randomBytes(20).toString('hex'),
      tunnel: { src: tunnel.peer, dst: tunnel.gw },
    };
    await call(client.AddSa.bind(client), {
      sa: {
        spi: OUT6,
        direction: 'OUTBOUND',
        algorithm: 'AES_GCM_256',
        tunnelSrc: tunnel.gw,
        tunnelDst: tunnel.peer,
        innerIpVersion: 6,
        esn: true,
        encryptionKey: { key: Buffer.from(out6.key, 'hex') },
      },
    });
    await call(client.AddSa.bind(client), {
      sa: {
        spi: IN6,
        direction: 'INBOUND',
        algorithm: 'AES_GCM_128',
        tunnelSrc: tunnel.peer,
        tunnelDst: tunnel.gw,
        innerIpVersion: 6,
        encryptionKey: { key: Buffer.from(in6.key, 'hex') },
      },
    });
    const local = '2001:db8:1::/48';
    const remote = '2001:db8:2::/48';
    await call(client.AddPolicy.bind(client), {
      policy: {
        id: 'to-remote6',
        priority: 90,
        direction: 'OUTBOUND',
        match: { srcPrefix: local, dstPrefix: remote },
        action: 'PROTECT',
        saSpi: OUT6,
      },
    });
    await call(client.AddPolicy.bind(client), {
      policy: {
        id: 'from-remote6',
        priority: 90,
        direction: 'INBOUND',
        match: { srcPrefix: remote, dstPrefix: local },
        action: 'PROTECT',
        saSpi: IN6,
      },
    });
    const M = 10;
    const v6 = (src: string, dst: string, i: number) =>
      buildPacket({ src, dst, sport: 2000 + i, dport: 53, size: 80 + i * 111 });
    const clear = Array.from({ length: M }, (_, i) => v6('2001:db8:1::5', '2001:db8:2::7', i));
    const out = await exchange(inside, outside, clear, M);
    expect(out).toHaveLength(M);
    out.forEach((f, i) => {
      expect(f.readUInt16BE(12)).toBe(0x86dd);
      expect(f[14 + 6]).toBe(50);
      expect(f.readUInt32BE(14 + 40)).toBe(OUT6);
      expect(f.readUInt32BE(14 + 44)).toBe(i + 1);
    });
    peer(
      out6,
      out.map((f) => ({ op: 'decrypt', packet: f.subarray(14) })),
    ).forEach((p, i) => expect(bytes(p)).toEqual(clear[i]!.subarray(14)));
    const back = Array.from({ length: M }, (_, i) => v6('2001:db8:2::7', '2001:db8:1::5', i));
    const sealed = peer(
      in6,
      back.map((f, i) => ({ op: 'encrypt', packet: f.subarray(14), seq: i + 1 })),
    ).map((p) => frame(bytes(p)));
    const got = await exchange(outside, inside, sealed, M);
    expect(got.map((f) => f.readUInt16BE(12))).toEqual(Array<number>(M).fill(0x86dd));
    expect(got.map((f) => f.subarray(14))).toEqual(back.map((f) => f.subarray(14)));
    await settles(
      async () => [(await counters(OUT6)).packets, (await counters(IN6)).packets],
      [String(M), String(M)],
    );
    const packets = await policyPackets();
    expect([packets['to-remote6'], packets['from-remote6']]).toEqual([String(M), String(M)]);
  });

  it('lifetimes: seconds (the store) and packets (the data path) expire SAs; their packets drop', async () => {
    const BY_TIME = 0x7001;
    const BY_COUNT = 0x7002;
    const gcm = (spi: number, lifetime: object) => ({
      spi,
      direction: 'OUTBOUND' as const,
      algorithm: 'AES_GCM_128' as const,
      encryptionKey: { key: randomBytes(20) },
      tunnelSrc: GW,
      tunnelDst: PEER_ADDR,
      innerIpVersion: 4,
      lifetime,
    });
    await call(client.AddSa.bind(client), {
      sa: gcm(BY_TIME, { softSeconds: '1', hardSeconds: '2' }),
    });
    await call(client.AddSa.bind(client), {
      sa: gcm(BY_COUNT, { softPackets: '2', hardPackets: '4' }),
    });
    for (const [id, dst, spi] of [
      ['timed', '10.4.0.0/16', BY_TIME],
      ['counted', '10.5.0.0/16', BY_COUNT],
    ] as const)
      await call(client.AddPolicy.bind(client), {
        policy: {
          id,
          priority: 80,
          direction: 'OUTBOUND',
          match: { dstPrefix: dst },
          action: 'PROTECT',
          saSpi: spi,
        },
      });
    const to = (dst: string, n: number) =>
      Array.from({ length: n }, (_, i) => udp('10.1.0.5', dst, 53, i));
    // packets: 4 encrypted, then the hard limit drops the rest
    const counted = await exchange(inside, outside, to('10.5.0.1', 6), 4);
    expect(counted.map((f) => f.readUInt32BE(14 + 20))).toEqual(Array<number>(4).fill(BY_COUNT));
    await settles(async () => {
      const s = (await listSas()).sas.find((x) => x.sa?.spi === BY_COUNT);
      return [s?.counters?.packets, s?.counters?.lifetimeDrops, s?.softExpired, s?.hardExpired];
    }, ['4', '2', true, true]);
    // seconds: 3 packets pass while the SA lives; past its hard lifetime the store takes it out
    // of the data path and the protect policy naming it drops (esp_no_sa)
    expect(await exchange(inside, outside, to('10.4.0.1', 3), 3)).toHaveLength(3);
    const state = async () => {
      const s = (await listSas()).sas.find((x) => x.sa?.spi === BY_TIME);
      return [s?.softExpired, s?.hardExpired];
    };
    expect(await waitFor(async () => (await state())[0] === true, 5_000)).toBe(true);
    expect(await waitFor(async () => (await state())[1] === true, 5_000)).toBe(true);
    expect(await exchange(inside, outside, to('10.4.0.1', 3), 0)).toEqual([]);
    await settles(async () => (await policyPackets()).timed, '6');
    expect(stderr).toMatch(/"msg":"sa lifetime".*"spi":28673.*"hardExpired":true/);
  });

  it("exports per-SA and per-policy metrics beside the runtime's (contract 6)", async () => {
    const line = stderr.split('\n').find((l) => l.includes('"serving"'));
    const url = (JSON.parse(line!) as { metricsUrl: string }).metricsUrl;
    const body = await (await fetch(url.replace('0.0.0.0', '127.0.0.1'))).text();
    const value = (name: string, labels: string[]): number | undefined => {
      const row = body
        .split('\n')
        .find((l) => l.startsWith(`${name}{`) && labels.every((x) => l.includes(x)));
      return row === undefined ? undefined : Number(row.slice(row.lastIndexOf(' ') + 1));
    };
    const sa = (spi: number) => ['nf="gw"', 'direction="inbound"', `spi="${spi}"`];
    expect(value('flowline_ipsec_sa_packets_total', sa(0x2003))).toBe(150);
    expect(value('flowline_ipsec_sa_dropped_packets_total', [...sa(0x2003), 'reason="auth"'])).toBe(
      0,
    );
    expect(value('flowline_ipsec_policy_packets_total', ['policy="mgmt"'])).toBe(3);
    expect(value('flowline_ipsec_policy_packets_total', ['policy="ike"'])).toBe(2);
    expect(
      value('flowline_stage_dropped_packets_total', ['stage="esp-out"', 'reason="esp_policy"']),
    ).toBe(2);
    expect(body).not.toMatch(/out-gcm/); // key names are not for metrics either
  });

  it('SIGTERM: the gateway stops and exits 0', async () => {
    child!.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(stderr).toMatch(/"msg":"ipsec gateway running"/);
  });
});
