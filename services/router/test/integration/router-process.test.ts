/**
 * The router as it runs in a pod: `node dist/main.js` with two virtio-user (server=1) ports
 * from a pod dir, as the CNI plugin writes it. This test process is the switch and the hosts
 * on both sides: its net_vhost (client) ports connect to the router's sockets, and it sends
 * and receives frames with the batch API of @flowline/dpdk. Root and hugepages needed.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { LocalPki, channelCredentials, nfId } from '@flowline/grpc-auth';
import { type Eal, Mempool, Port, devargs, initEal, leftoverFiles } from '@flowline/dpdk';
import {
  ETH_P_ARP,
  ETH_P_IPV6,
  IPPROTO_ICMP,
  IPPROTO_ICMPV6,
  type ParsedFrame,
  addressBytes,
  arpFrame,
  ethernetHeader,
  flowFrame,
  fragmentIpv4,
  internetChecksum,
  neighborAdvertisementFrame,
  neighborSolicitationFrame,
  packetTooBigFrame,
  parseFrame,
} from '@flowline/packet';
import { loadHealthV1, loadNetworkFunctionV1, routerV1 } from '@flowline/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = join(__dirname, '..', '..');
const MAIN = join(ROOT, 'dist', 'main.js');

function notReady(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root';
  if (!existsSync('/dev/hugepages')) return 'needs hugetlbfs on /dev/hugepages';
  return undefined;
}

const R1 = '02:00:00:00:01:01';
const R2 = '02:00:00:00:02:01';
const HA = '02:aa:00:00:00:01'; // host A on net1: 10.0.1.2, 2001:db8:1::2
const GW = '02:bb:00:00:00:02'; // gateway on net2: 10.0.2.2, 2001:db8:2::2
const HC = '02:cc:00:00:00:09'; // connected host on net2: 10.0.2.9

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const dir = mkdtempSync('/tmp/flrt-');
const pki = new LocalPki(join(dir, 'pki'));
let asOperator: grpc.ChannelCredentials;
const podDir = join(dir, 'pod');
const grpcAddress = `unix://${join(dir, 'grpc.sock')}`;
const testPrefix = `fltest-router-${process.pid}`;
let routerPrefix = '';
let child: ChildProcess | undefined;
let exit: Promise<number | null> | undefined;
let log = '';
let eal: Eal | undefined;
let pool: Mempool;
let h1: Port;
let h2: Port;
let client: InstanceType<ReturnType<typeof routerV1.loadRouterV1>['Router']>;

function call<Req, Res>(
  fn: (req: Req, cb: (err: grpc.ServiceError | null, res?: Res) => void) => void,
  req: Req,
): Promise<Res> {
  return new Promise((resolve, reject) => fn(req, (e, r) => (e ? reject(e) : resolve(r!))));
}

/** The error of a call that must fail (undefined if it succeeded). */
function failure<Req, Res>(
  fn: (req: Req, cb: (err: grpc.ServiceError | null, res?: Res) => void) => void,
  req: Req,
): Promise<grpc.ServiceError | undefined> {
  return call(fn, req).then(
    () => undefined,
    (e: grpc.ServiceError) => e,
  );
}

/** Every frame waiting on a host port, parsed (unparseable frames fail the test). */
function take(port: Port): { bytes: Buffer; p: ParsedFrame }[] {
  const out: { bytes: Buffer; p: ParsedFrame }[] = [];
  for (;;) {
    const got = port.receive(0, 64);
    if (got.length === 0) return out;
    for (const bytes of got) out.push({ bytes, p: parseFrame(bytes) });
  }
}

/** Sends `frame` on `from` every 100 ms until a frame matching `want` arrives on `on`. */
async function exchange(
  from: Port,
  frame: Buffer | undefined,
  on: Port,
  want: (p: ParsedFrame) => boolean,
  timeoutMs = 8000,
): Promise<{ bytes: Buffer; p: ParsedFrame }> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (frame) from.send(0, pool, [frame]);
    for (let i = 0; i < 10; i++) {
      const hit = take(on).find((f) => want(f.p));
      if (hit) return hit;
      await sleep(10);
    }
  }
  throw new Error(`no matching frame within ${timeoutMs} ms; router log:\n${log.slice(-3000)}`);
}

/** Frames arriving on `port` until there are `n` (or timeoutMs passes), then any stragglers. */
async function collect(port: Port, n: number, timeoutMs = 8000): Promise<Buffer[]> {
  const out: Buffer[] = [];
  const end = Date.now() + timeoutMs;
  while (out.length < n && Date.now() < end) {
    out.push(...take(port).map((f) => f.bytes));
    await sleep(10);
  }
  await sleep(300); // nothing more may come
  out.push(...take(port).map((f) => f.bytes));
  return out;
}

/** The router's flowline_router_slow_path_packets_total by event, from its /metrics. */
async function slowPath(): Promise<Record<string, number>> {
  const line = log.split('\n').find((l) => l.includes('"msg":"serving"'));
  const url = (JSON.parse(line!) as { metricsUrl: string }).metricsUrl;
  const body = await (await fetch(url.replace('0.0.0.0', '127.0.0.1'))).text();
  const out: Record<string, number> = {};
  for (const m of body.matchAll(
    /^flowline_router_slow_path_packets_total\{[^}]*event="(\w+)"[^}]*\} (\d+)$/gm,
  ))
    out[m[1]!] = Number(m[2]);
  return out;
}

async function waitForLog(re: RegExp, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!re.test(log)) {
    if (Date.now() > end) throw new Error(`router never logged ${re}:\n${log.slice(-3000)}`);
    await sleep(20);
  }
}

function udp(src: string, dst: string, ttl = 64, dstMac = R1): Buffer {
  return flowFrame({
    srcMac: HA,
    dstMac,
    src,
    dst,
    protocol: 'udp',
    srcPort: 4000,
    dstPort: 5000,
    ttl,
    payload: Buffer.from('flowline-router-test'),
  });
}

/** Answers the router's ARP request / NS for `ip` on h2 with `mac`, once one arrives. */
async function answerResolution(trigger: Buffer, ip: string, mac: string): Promise<void> {
  const v6 = ip.includes(':');
  const req = await exchange(h1, trigger, h2, (p) =>
    v6
      ? p.l4?.icmpType === 135 && p.ipv6?.src === '2001:db8:2::1'
      : p.arp?.op === 1 && p.arp.targetIp === ip,
  );
  if (v6) {
    const target = req.bytes.subarray(54 + 8, 54 + 24);
    expect(Buffer.from(target).equals(Buffer.from(addressBytes(ip)))).toBe(true);
    expect(req.p.srcMac).toBe(R2);
    h2.send(0, pool, [
      neighborAdvertisementFrame({
        srcMac: mac,
        dstMac: R2,
        target: ip,
        dst: '2001:db8:2::1',
        solicited: true,
        router: false,
      }),
    ]);
  } else {
    expect(req.p.arp).toMatchObject({ senderMac: R2, senderIp: '10.0.2.1' });
    h2.send(0, pool, [
      arpFrame({ op: 'reply', senderMac: mac, senderIp: ip, targetMac: R2, targetIp: '10.0.2.1' }),
    ]);
  }
}

beforeAll(async () => {
  if (notReady()) return;
  if (!existsSync(MAIN))
    throw new Error(`${MAIN} is missing: build first (npx nx build @flowline/router)`);
  mkdirSync(podDir);
  writeFileSync(
    join(podDir, 'net1.json'),
    JSON.stringify({ socketPath: join(podDir, 'net1.sock'), mac: R1, ips: ['10.0.1.1/24'] }),
  );
  writeFileSync(
    join(podDir, 'net2.json'),
    JSON.stringify({ socketPath: join(podDir, 'net2.sock'), mac: R2 }),
  );
  const config = {
    name: 'router-it',
    grpcAddress,
    metricsPort: false,
    eal: { lcores: '0,1', memoryMb: 256 },
    nf: {
      interfaces: [
        { name: 'net1', addresses: ['10.0.1.1/24', '2001:db8:1::1/64'] },
        // the link beyond net2 carries encapsulation: 100 bytes less than net1's default
        { name: 'net2', addresses: ['10.0.2.1/24', '2001:db8:2::1/64'], mtu: 1400 },
      ],
      routes: [
        { prefix: '198.51.100.0/24', nextHop: '10.0.2.2' },
        { prefix: '2001:db8:99::/48', nextHop: '2001:db8:2::2' },
      ],
      neighbors: { retransMs: 300, maxProbes: 5, failedHoldMs: 500 },
      neighborTickMs: 100,
    },
  };
  writeFileSync(join(dir, 'router.json'), JSON.stringify(config));
  child = spawn(
    process.execPath,
    [
      MAIN,
      '--config',
      join(dir, 'router.json'),
      '--metrics-port',
      '0',
      ...LocalPki.flags(pki.nf('default', 'router-it')),
    ],
    {
      env: { ...process.env, FLOWLINE_POD_DIR: podDir, FLOWLINE_LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  asOperator = channelCredentials(pki.operator(), nfId('default', 'router-it'));
  routerPrefix = `router-it-${child.pid}`;
  child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  // The signal when it died by one (a flaky CI failure at SIGTERM: the log then says which).
  exit = new Promise((r) =>
    child!.once('exit', (code, signal) => {
      if (signal) log += `\n[router process killed by ${signal}]\n`;
      r(code);
    }),
  );

  // The switch side: net_vhost clients retry until the router's sockets exist.
  eal = initEal({ filePrefix: testPrefix, lcores: [0], memoryMb: 128 });
  pool = Mempool.create({ size: 4095 });
  h1 = Port.open(
    devargs.vhost({ id: 'rt1', iface: join(podDir, 'net1.sock'), client: true }),
    pool,
  );
  h2 = Port.open(
    devargs.vhost({ id: 'rt2', iface: join(podDir, 'net2.sock'), client: true }),
    pool,
  );

  const health = new (loadHealthV1().Health)(grpcAddress, asOperator);
  const end = Date.now() + 30_000;
  let status = '';
  while (Date.now() < end && status !== 'SERVING') {
    if (child.exitCode !== null) throw new Error(`router exited ${child.exitCode}:\n${log}`);
    status = await new Promise<string>((res) =>
      health.Check({ service: '' }, { deadline: Date.now() + 1000 }, (e, r) =>
        res(e ? '' : r!.status),
      ),
    );
    if (status !== 'SERVING') await sleep(200);
  }
  health.close();
  if (status !== 'SERVING') throw new Error(`router not SERVING after 30 s:\n${log}`);
  client = new (routerV1.loadRouterV1().Router)(grpcAddress, asOperator);
  while (!(h1.link().up && h2.link().up) && Date.now() < end) await sleep(50);
}, 60_000);

afterAll(async () => {
  client?.close();
  if (child && child.exitCode === null) {
    child.kill('SIGKILL');
    await exit;
  }
  eal?.cleanup();
  for (const p of [testPrefix, routerPrefix].filter(Boolean)) {
    for (const f of leftoverFiles(p)) rmSync(f, { recursive: true, force: true });
  }
  rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(notReady())('router process on virtio-user ports (root, hugepages)', () => {
  it('serves grpc.health.v1 SERVING; NetworkFunction.GetInfo shows its pod ports up', async () => {
    expect(h1.link().up).toBe(true);
    expect(h2.link().up).toBe(true);
    const nf = new (loadNetworkFunctionV1().NetworkFunction)(grpcAddress, asOperator);
    const info = await call(nf.GetInfo.bind(nf), {});
    nf.close();
    expect(info).toMatchObject({ name: 'router-it', kind: 'router', workerLcores: [1] });
    expect(info.ports.map((p) => [p.name, p.driver, p.mac, p.linkUp])).toEqual([
      ['net1', 'net_virtio_user', R1, true],
      ['net2', 'net_virtio_user', R2, true],
    ]);
  });

  it('answers ARP for its own address', async () => {
    const req = arpFrame({
      op: 'request',
      senderMac: HA,
      senderIp: '10.0.1.2',
      targetMac: '00:00:00:00:00:00',
      targetIp: '10.0.1.1',
    });
    const { p } = await exchange(h1, req, h1, (f) => f.etherType === ETH_P_ARP && f.arp?.op === 2);
    expect(p.dstMac).toBe(HA);
    expect(p.srcMac).toBe(R1);
    expect(p.arp).toEqual({
      op: 2,
      senderMac: R1,
      senderIp: '10.0.1.1',
      targetMac: HA,
      targetIp: '10.0.1.2',
    });
  });

  it('answers ND for its own address with a valid ICMPv6 checksum', async () => {
    const ns = neighborSolicitationFrame({
      srcMac: HA,
      src: '2001:db8:1::2',
      target: '2001:db8:1::1',
    });
    const { bytes, p } = await exchange(h1, ns, h1, (f) => f.l4?.icmpType === 136);
    expect(p.dstMac).toBe(HA);
    expect(p.srcMac).toBe(R1);
    expect(p.ipv6).toMatchObject({ src: '2001:db8:1::1', dst: '2001:db8:1::2', hopLimit: 255 });
    expect(p.l4?.checksumOk).toBe(true);
    // Router and solicited flags set; the target is our address; the option carries R1.
    expect(bytes[54 + 4]! & 0xc0).toBe(0xc0);
    expect(
      Buffer.from(bytes.subarray(54 + 8, 54 + 24)).equals(
        Buffer.from(addressBytes('2001:db8:1::1')),
      ),
    ).toBe(true);
    expect(bytes.subarray(54 + 26, 54 + 32).toString('hex')).toBe(R1.replace(/:/g, ''));
  });

  it('resolves the IPv4 gateway with ARP, then forwards with TTL-1 and a valid checksum', async () => {
    const pkt = udp('10.0.1.2', '198.51.100.7');
    await answerResolution(pkt, '10.0.2.2', GW);
    const { bytes, p } = await exchange(h1, pkt, h2, (f) => f.ipv4?.dst === '198.51.100.7');
    expect(p.dstMac).toBe(GW);
    expect(p.srcMac).toBe(R2);
    expect(p.ipv4).toMatchObject({ src: '10.0.1.2', ttl: 63, headerChecksumOk: true });
    expect(internetChecksum(bytes.subarray(14, 34))).toBe(0);
    expect(p.l4).toMatchObject({ srcPort: 4000, dstPort: 5000, checksumOk: true });
    expect(bytes.subarray(42, 62).toString()).toBe('flowline-router-test');
  });

  it('resolves a connected host before forwarding to it', async () => {
    const pkt = udp('10.0.1.2', '10.0.2.9');
    await answerResolution(pkt, '10.0.2.9', HC);
    const { p } = await exchange(h1, pkt, h2, (f) => f.ipv4?.dst === '10.0.2.9');
    expect(p.dstMac).toBe(HC);
    expect(p.ipv4).toMatchObject({ ttl: 63, headerChecksumOk: true });
  });

  it('resolves the IPv6 gateway with ND, then forwards with hop limit - 1', async () => {
    const pkt = udp('2001:db8:1::2', '2001:db8:99::7');
    await answerResolution(pkt, '2001:db8:2::2', GW);
    const { p } = await exchange(h1, pkt, h2, (f) => f.ipv6?.dst === '2001:db8:99::7');
    expect(p.dstMac).toBe(GW);
    expect(p.srcMac).toBe(R2);
    expect(p.ipv6).toMatchObject({ src: '2001:db8:1::2', hopLimit: 63 });
    expect(p.l4).toMatchObject({ dstPort: 5000, checksumOk: true });
  });

  it('answers TTL 1 with ICMP time exceeded (IPv4) and hop limit 1 with ICMPv6 (IPv6)', async () => {
    const v4 = await exchange(
      h1,
      udp('10.0.1.2', '198.51.100.7', 1),
      h1,
      (f) => f.ipv4?.protocol === IPPROTO_ICMP,
    );
    expect(v4.p.dstMac).toBe(HA);
    expect(v4.p.srcMac).toBe(R1);
    expect(v4.p.ipv4).toMatchObject({ src: '10.0.1.1', dst: '10.0.1.2', headerChecksumOk: true });
    expect(v4.p.l4).toMatchObject({ icmpType: 11, icmpCode: 0, checksumOk: true });
    // The quoted header is the expired packet's.
    expect(
      v4.bytes.subarray(42 + 12, 42 + 20).equals(Buffer.from([10, 0, 1, 2, 198, 51, 100, 7])),
    ).toBe(true);

    const v6 = await exchange(
      h1,
      udp('2001:db8:1::2', '2001:db8:99::7', 1),
      h1,
      (f) => f.ipv6?.nextHeader === IPPROTO_ICMPV6 && f.l4?.icmpType === 3,
    );
    expect(v6.p.ipv6).toMatchObject({ src: '2001:db8:1::1', dst: '2001:db8:1::2' });
    expect(v6.p.l4).toMatchObject({ icmpCode: 0, checksumOk: true });
    expect(v6.p.etherType).toBe(ETH_P_IPV6);
  });

  it("over net2's MTU (1400): ICMP with the MTU to the sender, or fragments (IPv4 without DF); counters exact", async () => {
    /** A UDP packet from host A of exactly `l3` bytes of IP. */
    const sized = (dst: string, l3: number, df = true): Buffer =>
      flowFrame({
        srcMac: HA,
        dstMac: R1,
        src: dst.includes(':') ? '2001:db8:1::2' : '10.0.1.2',
        dst,
        protocol: 'udp',
        srcPort: 4000,
        dstPort: 5000,
        df,
        payload: Buffer.alloc(l3 - (dst.includes(':') ? 48 : 28), l3 & 0xff),
      });
    // the gateways are resolved (tests above): the path forwards
    await exchange(h1, sized('198.51.100.7', 100), h2, (f) => f.ipv4?.dst === '198.51.100.7');
    await collect(h2, 0);
    take(h1);
    const slowBefore = await slowPath();
    const before = await call(client.GetCounters.bind(client), {});

    const fit = [
      sized('198.51.100.7', 1400), // DF, exactly the MTU
      sized('198.51.100.8', 1400, false),
      sized('2001:db8:99::7', 1400),
    ];
    const v4Big = sized('198.51.100.9', 1401);
    const v6Big = sized('2001:db8:99::9', 1500);
    const noDf = sized('198.51.100.10', 1500, false); // fits net1's MTU, not net2's
    h1.send(0, pool, [...fit, v4Big, v6Big, noDf]);

    const errors = await collect(h1, 2);
    expect(errors.map((f) => f.toString('hex'))).toEqual([
      packetTooBigFrame(v4Big, R1, '10.0.1.1', 1400).toString('hex'),
      packetTooBigFrame(v6Big, R1, '2001:db8:1::1', 1400).toString('hex'),
    ]);
    expect(parseFrame(errors[0]!)).toMatchObject({
      dstMac: HA,
      ipv4: { src: '10.0.1.1', dst: '10.0.1.2', headerChecksumOk: true },
      l4: { icmpType: 3, icmpCode: 4, checksumOk: true },
    });
    expect(errors[0]!.readUInt16BE(14 + 20 + 6)).toBe(1400); // RFC 1191's next-hop MTU
    expect(parseFrame(errors[1]!)).toMatchObject({
      ipv6: { src: '2001:db8:1::1', dst: '2001:db8:1::2' },
      l4: { icmpType: 2, icmpCode: 0, checksumOk: true },
    });
    expect(errors[1]!.readUInt32BE(14 + 40 + 4)).toBe(1400);

    const out = await collect(h2, fit.length + 2);
    const routed = (f: Buffer): string => {
      const r = Buffer.from(f);
      r.set(Buffer.from(GW.replace(/:/g, ''), 'hex'), 0);
      r.set(Buffer.from(R2.replace(/:/g, ''), 'hex'), 6);
      if (r.readUInt16BE(12) === ETH_P_IPV6) r[21]!--;
      else {
        r[22]!--;
        r.writeUInt16BE(0, 24);
        r.writeUInt16BE(internetChecksum(r.subarray(14, 34)), 24);
      }
      return r.toString('hex');
    };
    const ip = Buffer.from(noDf.subarray(14));
    ip[8] = 63;
    const fragments = fragmentIpv4(ip, 1400).map((f) =>
      Buffer.concat([ethernetHeader(GW, R2, 0x0800), f]).toString('hex'),
    );
    expect(fragments).toHaveLength(2);
    expect(out.map((f) => f.toString('hex'))).toEqual([...fit.map(routed), ...fragments]);
    // the fragments: MF then not, offsets 0 and 1376 bytes, the data whole again
    expect([out[3]!.readUInt16BE(20), out[4]!.readUInt16BE(20)]).toEqual([0x2000, 1376 / 8]);
    expect(Buffer.concat([out[3]!.subarray(34), out[4]!.subarray(34)])).toEqual(noDf.subarray(34));

    const after = await call(client.GetCounters.bind(client), {});
    const slowAfter = await slowPath();
    const delta = (k: string) => (slowAfter[k] ?? 0) - (slowBefore[k] ?? 0);
    expect(
      Object.fromEntries(
        ['too_big', 'icmp_too_big_sent', 'fragmented', 'fragments_sent', 'ignored'].map((k) => [
          k,
          delta(k),
        ]),
      ),
    ).toEqual({ too_big: 3, icmp_too_big_sent: 2, fragmented: 1, fragments_sent: 2, ignored: 0 });
    expect(Number(after.forwarded) - Number(before.forwarded)).toBe(fit.length);
    expect(
      Number(after.droppedByReason.too_big ?? 0) - Number(before.droppedByReason.too_big ?? 0),
    ).toBe(2);
    // the same through router.v1 GetCounters
    const grpcDelta = (k: 'tooBig' | 'icmpTooBigSent' | 'fragmented' | 'fragmentsSent') =>
      Number(after[k]) - Number(before[k]);
    expect(
      (['tooBig', 'icmpTooBigSent', 'fragmented', 'fragmentsSent'] as const).map(grpcDelta),
    ).toEqual([3, 2, 1, 2]);
  });

  it('AddRoute/ListRoutes work; a bad route is INVALID_ARGUMENT naming the field and changes nothing', async () => {
    const added = await call(client.AddRoute.bind(client), {
      route: { prefix: '203.0.113.0/24', nextHop: '10.0.2.2', interface: '' },
    });
    expect(added.routeCount).toBe(3);
    const before = await call(client.ListRoutes.bind(client), {});
    expect(before.routes).toContainEqual({
      prefix: '203.0.113.0/24',
      nextHop: '10.0.2.2',
      interface: 'net2',
      origin: 'static',
    });
    const fwd = await exchange(
      h1,
      udp('10.0.1.2', '203.0.113.5'),
      h2,
      (f) => f.ipv4?.dst === '203.0.113.5',
    );
    expect(fwd.p).toMatchObject({ dstMac: GW, ipv4: { ttl: 63, headerChecksumOk: true } });

    const err = await failure(client.AddRoute.bind(client), {
      route: { prefix: '192.0.2.0/33', nextHop: '10.0.2.2', interface: '' },
    });
    expect(err?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err?.details).toMatch(/^route\.prefix: /);
    const bad2 = await failure(client.AddRoute.bind(client), {
      route: { prefix: '192.0.2.0/24', nextHop: '172.31.0.1', interface: '' },
    });
    expect(bad2?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(bad2?.details).toMatch(/^route\.next_hop: .*not in a connected subnet/);

    const after = await call(client.ListRoutes.bind(client), {});
    expect(after).toEqual(before);
    // The old routes stay in force in the dataplane too.
    for (const dst of ['203.0.113.9', '198.51.100.9']) {
      const f = await exchange(h1, udp('10.0.1.2', dst), h2, (x) => x.ipv4?.dst === dst);
      expect(f.p.ipv4?.ttl).toBe(63);
    }
    const counters = await call(client.GetCounters.bind(client), {});
    expect(Number(counters.forwarded)).toBeGreaterThan(0);
    expect(Number(counters.arpRepliesSent)).toBeGreaterThanOrEqual(1);
    expect(Number(counters.icmpTimeExceededSent)).toBeGreaterThanOrEqual(2);
  });

  it('comes back by itself when the switch side of a port restarts', async () => {
    h1.close(); // the switch side of net1 goes away ...
    await waitForLog(/"msg":"link down".*"port":"net1"/);
    // ... and comes back: a new vhost-user client on the same socket.
    h1 = Port.open(
      devargs.vhost({ id: 'rt1', iface: join(podDir, 'net1.sock'), client: true }),
      pool,
    );
    await waitForLog(/"msg":"link up".*"port":"net1"/);
    const f = await exchange(
      h1,
      udp('10.0.1.2', '198.51.100.42'),
      h2,
      (x) => x.ipv4?.dst === '198.51.100.42',
    );
    expect(f.p).toMatchObject({ dstMac: GW, ipv4: { ttl: 63, headerChecksumOk: true } });
  });

  it('SIGTERM: exits 0 and leaves no hugepage files, runtime dir or sockets', async () => {
    child!.kill('SIGTERM');
    const code = await Promise.race([exit!, sleep(20_000).then(() => 'timeout' as const)]);
    expect(code, log.slice(-3000)).toBe(0);
    expect(log).toMatch(/"msg":"stopped"/);
    expect(leftoverFiles(routerPrefix)).toEqual([]);
    expect(readdirSync('/dev/hugepages').filter((f) => f.startsWith(routerPrefix))).toEqual([]);
    expect(existsSync(join(podDir, 'net1.sock'))).toBe(false);
    expect(existsSync(join(podDir, 'net2.sock'))).toBe(false);
  });
});
