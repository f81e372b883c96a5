/**
 * The real firewall process: `node dist/main.js` with two net_virtio_user ports (server=1, as
 * in a pod), a config file with stateful mode and rules. This test process is the switch side:
 * its own EAL with net_vhost client ports on the firewall's sockets, sending and receiving with
 * the batch rx/tx API. Then gRPC over a unix socket: health, ListRules, ReplaceRules, a bad rule
 * (INVALID_ARGUMENT naming the field, old rules still in force), metrics, and SIGTERM -> exit 0.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { LocalPki, channelCredentials, nfId } from '@flowline/grpc-auth';
import { Mempool, Port, devargs, initEal, type Eal } from '@flowline/dpdk';
import { type firewallV1, firewallV1 as fw, loadHealthV1 } from '@flowline/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dataplaneReady, frame, scrubPrefix, sleep, waitFor } from '../support/rig';

const notReady = dataplaneReady();
const dir = mkdtempSync('/tmp/fwp-');
// mTLS as in a cluster: the firewall holds its NF identity, the test calls as the operator.
const pki = new LocalPki(join(dir, 'pki'));
let asOperator: grpc.ChannelCredentials;
const fwPrefix = `fltest-fwproc-${process.pid}`;
const ourPrefix = `fltest-fwsw-${process.pid}`;
const grpcSock = join(dir, 'grpc.sock');
const sock = { a: join(dir, 'a.sock'), b: join(dir, 'b.sock') };
const main = join(__dirname, '..', '..', 'dist', 'main.js');

let child: ChildProcess | undefined;
let stderr = '';
let exited: Promise<number | null>;
let eal: Eal | undefined;
let pool: Mempool;
let inside: Port; // our end of the firewall's port a
let outside: Port; // our end of port b
let client: firewallV1.FirewallClient;

const unary = <Req, Res>(
  fn: (req: Req, cb: (err: grpc.ServiceError | null, res?: Res) => void) => unknown,
  req: Req,
): Promise<Res> =>
  new Promise((resolve, reject) => fn(req, (err, res) => (err ? reject(err) : resolve(res!))));

const listRules = () =>
  new Promise<{ generation: string; ids: string[]; defaultAction: string }>((resolve, reject) =>
    client.listRules({}, (err, res) =>
      err || !res
        ? reject(err ?? new Error('no reply'))
        : resolve({
            generation: String(res.generation),
            ids: (res.ruleSet?.rules ?? []).map((r) => r.id),
            defaultAction: String(res.ruleSet?.defaultAction),
          }),
    ),
  );

/** Sends `packets` into `from`, then a marker that passes; returns which packets arrived. */
async function judge(from: Port, to: Port, packets: Buffer[], marker: Buffer): Promise<boolean[]> {
  const tag = (b: Buffer): string => b.toString('hex');
  const wanted = new Set([...packets, marker].map(tag));
  let sent = 0;
  const all = [...packets, marker];
  expect(await waitFor(() => (sent += from.send(0, pool, all.slice(sent))) === all.length)).toBe(
    true,
  );
  const got = new Set<string>();
  // the marker comes last through the same worker and queue: once it is out, all were judged
  expect(
    await waitFor(() => {
      for (const b of to.receive(0, 256)) if (wanted.has(tag(b))) got.add(tag(b));
      return got.has(tag(marker));
    }, 10_000),
  ).toBe(true);
  return packets.map((p) => got.has(tag(p)));
}

const out = (sport: number) =>
  frame({ src: '10.1.0.5', dst: '198.51.100.1', proto: 'udp', sport, dport: 53 });
const back = (dport: number) =>
  frame({ src: '198.51.100.1', dst: '10.1.0.5', proto: 'udp', sport: 53, dport });
const markerIn = (n: number) =>
  frame({ src: '10.1.0.9', dst: '198.51.100.2', proto: 'udp', sport: 40000 + n, dport: 5353 });
// from outside, only the rule set's "public" rule lets a marker in
const markerOut = (n: number) =>
  frame({ src: '198.51.100.2', dst: '10.1.0.80', proto: 'tcp', sport: 50000 + n, dport: 80 });

beforeAll(async () => {
  if (notReady) return;
  writeFileSync(
    join(dir, 'firewall.json'),
    JSON.stringify({
      nf: {
        mode: 'stateful',
        defaultAction: 'deny',
        conntrack: { capacity: 4096, timeouts: { udpMs: 60_000 } },
        rules: [
          {
            id: 'inside-udp',
            priority: 10,
            action: 'permit',
            protocol: 'udp',
            srcPrefix: '10.1.0.0/16',
          },
          {
            id: 'public',
            priority: 10,
            action: 'permit',
            protocol: 'tcp',
            dstPrefix: '10.1.0.80/32',
            dstPorts: { first: 80, last: 80 },
          },
        ],
      },
    }),
  );
  // The switch side first: a server=1 virtio-user port waits for its client while it starts,
  // and vhost-user clients keep retrying until the firewall's sockets exist.
  eal = initEal({
    filePrefix: ourPrefix,
    lcores: [0],
    memoryMb: 128,
    logLevel: ['lib.vhost.config:warning'],
  });
  pool = Mempool.create({ size: 4095 });
  inside = Port.open(devargs.vhost({ id: 'fwa', iface: sock.a, client: true }), pool);
  outside = Port.open(devargs.vhost({ id: 'fwb', iface: sock.b, client: true }), pool);
  asOperator = channelCredentials(pki.operator(), nfId('default', 'fw-proc'));
  child = spawn(
    process.execPath,
    [
      main,
      ...LocalPki.flags(pki.nf('default', 'fw-proc')),
      '--config',
      join(dir, 'firewall.json'),
      '--name',
      'fw-proc',
      '--grpc-address',
      `unix://${grpcSock}`,
      '--metrics-port',
      '0',
      '--lcores',
      '0,1',
      '--file-prefix',
      fwPrefix,
      '--port',
      `name=a,devargs=net_virtio_user_fwa,path=${sock.a},server=1,queues=1`,
      '--port',
      `name=b,devargs=net_virtio_user_fwb,path=${sock.b},server=1,queues=1`,
    ],
    { stdio: ['ignore', 'inherit', 'pipe'] },
  );
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  exited = new Promise((resolve) => child!.once('exit', (code) => resolve(code)));
  client = new (fw.loadFirewallV1().Firewall)(`unix://${grpcSock}`, asOperator);
  const health = new (loadHealthV1().Health)(`unix://${grpcSock}`, asOperator);
  const end = Date.now() + 30_000;
  let status: string | undefined;
  while (Date.now() < end && status !== 'SERVING' && child.exitCode === null) {
    status = await unary<object, { status?: string }>(health.check.bind(health), {}).then(
      (r) => r.status,
      () => undefined,
    );
    if (status !== 'SERVING') await sleep(100);
  }
  health.close();
  if (status !== 'SERVING') throw new Error(`the firewall did not start serving:\n${stderr}`);

  if (!(await waitFor(() => inside.link().up && outside.link().up, 10_000)))
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
  scrubPrefix(fwPrefix);
  scrubPrefix(ourPrefix);
  rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(notReady)('flowline-firewall process (root, hugepages, vhost-user ports)', () => {
  it('serves the config rules over ListRules', async () => {
    const list = await listRules();
    expect(list.generation).toBe('1');
    expect(list.ids).toEqual(['inside-udp', 'public']);
    expect(list.defaultAction).toBe('DENY');
  });

  it("refuses configuration from another NF's identity and callers without a certificate; lets them read", async () => {
    const spy = pki.nf('tenant-b', 'spy');
    const asSpy = new (fw.loadFirewallV1().Firewall)(
      `unix://${grpcSock}`,
      channelCredentials(spy, nfId('default', 'fw-proc')),
    );
    const noCert = new (fw.loadFirewallV1().Firewall)(
      `unix://${grpcSock}`,
      grpc.credentials.createSsl(readFileSync(spy.caFile), null, null, {
        checkServerIdentity: () => undefined,
      }),
    );
    try {
      const rule = { id: 'spy', priority: 99, action: 'PERMIT' as const, protocol: 'tcp' };
      const denied = (await unary(asSpy.addRule.bind(asSpy), { rule }).catch(
        (e: grpc.ServiceError) => e,
      )) as grpc.ServiceError;
      expect(denied.code).toBe(grpc.status.PERMISSION_DENIED);
      expect(denied.details).toMatch(
        /^spiffe:\/\/flowline\/ns\/tenant-b\/nf\/spy may not call \/flowline\.firewall\.v1\.Firewall\/AddRule/,
      );
      const handshake = (await unary(noCert.listRules.bind(noCert), {}).catch(
        (e: grpc.ServiceError) => e,
      )) as grpc.ServiceError;
      expect(handshake.code).toBe(grpc.status.UNAVAILABLE);
      // Nothing changed, and the other NF may still read.
      const list = await new Promise<string[]>((resolve, reject) =>
        asSpy.listRules({}, (err, res) =>
          err ? reject(err) : resolve((res?.ruleSet?.rules ?? []).map((r) => r.id)),
        ),
      );
      expect(list).toEqual(['inside-udp', 'public']);
    } finally {
      asSpy.close();
      noCert.close();
    }
  });

  it('stateful: replies of allowed flows pass, unsolicited inbound traffic does not', async () => {
    expect(await judge(outside, inside, [back(1111)], markerOut(0))).toEqual([false]);
    expect(await judge(inside, outside, [out(1111)], markerIn(0))).toEqual([true]);
    expect(await judge(outside, inside, [back(1111), back(2222)], markerOut(1))).toEqual([
      true,
      false,
    ]);
    const c = await unary<object, firewallV1.Counters__Output>(client.getCounters.bind(client), {});
    expect(c.conntrack).toMatchObject({ capacity: '4096', returnPermitted: '1' });
    // the flow and the first marker from inside (TCP without SYN from outside opens nothing)
    expect(c.conntrack?.created).toBe('2');
  });

  it('ReplaceRules swaps the rules; a bad rule gives INVALID_ARGUMENT naming the field and changes nothing', async () => {
    const v = await unary<
      { ruleSet: firewallV1.RuleSet },
      { generation: string; ruleCount: number }
    >(client.replaceRules.bind(client), {
      ruleSet: {
        rules: [
          {
            id: 'inside-udp',
            priority: 10,
            action: 'PERMIT',
            protocol: 'udp',
            srcPrefix: '10.1.0.0/16',
          },
          {
            id: 'public',
            priority: 10,
            action: 'PERMIT',
            protocol: 'tcp',
            dstPrefix: '10.1.0.80/32',
            dstPorts: { first: 80, last: 80 },
          },
          {
            id: 'no-dns',
            priority: 20,
            action: 'DENY',
            protocol: 'udp',
            dstPorts: { first: 53, last: 53 },
            srcPrefix: '10.1.0.0/24',
          },
        ],
      },
    });
    expect(v).toMatchObject({ generation: '2', ruleCount: 3 });
    // 10.1.0.5 -> :53 is now denied (a new flow); 10.1.1.5 is outside the deny rule's prefix
    const other = frame({
      src: '10.1.1.5',
      dst: '198.51.100.1',
      proto: 'udp',
      sport: 7,
      dport: 53,
    });
    expect(await judge(inside, outside, [out(3333), other], markerIn(1))).toEqual([false, true]);

    const err = await unary<{ ruleSet: firewallV1.RuleSet }, unknown>(
      client.replaceRules.bind(client),
      {
        ruleSet: {
          rules: [
            { id: 'ok', priority: 1, action: 'PERMIT' },
            { id: 'broken', priority: 5, action: 'PERMIT', srcPrefix: '10.0.0.1/33' },
          ],
        },
      },
    ).catch((e: grpc.ServiceError) => e);
    expect((err as grpc.ServiceError).code).toBe(grpc.status.INVALID_ARGUMENT);
    expect((err as grpc.ServiceError).details).toMatch(/^rule_set\.rules\[1\]\.src_prefix: /);
    const list = await listRules();
    expect(list.generation).toBe('2');
    expect(list.ids).toEqual(['inside-udp', 'public', 'no-dns']);
    // and the dataplane still enforces generation 2 (a permit-all "ok" would have let it pass)
    expect(await judge(inside, outside, [out(4444)], markerIn(2))).toEqual([false]);
  });

  it('AddRule and DeleteRule take effect on IPv6 traffic; AddRule of a bad rule names the field', async () => {
    const call = <T>(fn: (cb: (err: grpc.ServiceError | null, res?: T) => void) => unknown) =>
      new Promise<T>((resolve, reject) => fn((err, res) => (err ? reject(err) : resolve(res!))));
    const web6 = frame({ src: '2001:db8:1::5', dst: '2001:db8:ff::80', proto: 'tcp', dport: 8443 });
    expect(await judge(inside, outside, [web6], markerIn(10))).toEqual([false]);
    const added = await call<{ generation: string }>((cb) =>
      client.addRule(
        {
          rule: {
            id: 'web6',
            priority: 30,
            action: 'PERMIT',
            protocol: 'tcp',
            dstPrefix: '2001:db8:ff::/48',
            dstPorts: { first: 8000, last: 8999 },
          },
        },
        cb,
      ),
    );
    expect(added.generation).toBe('3');
    expect(await judge(inside, outside, [web6], markerIn(11))).toEqual([true]);
    const bad = await call((cb) =>
      client.addRule(
        {
          rule: {
            id: 'web6b',
            priority: 30,
            action: 'PERMIT',
            protocol: 'icmp',
            dstPrefix: '2001:db8::/32',
          },
        },
        cb,
      ),
    ).catch((e: grpc.ServiceError) => e);
    expect((bad as grpc.ServiceError).code).toBe(grpc.status.INVALID_ARGUMENT);
    expect((bad as grpc.ServiceError).details).toMatch(/^rule\.protocol: /);
    await call((cb) => client.deleteRule({ id: 'web6' }, cb));
    expect(await judge(inside, outside, [web6], markerIn(12))).toEqual([false]);
    expect((await listRules()).generation).toBe('4');
  });

  it('exports contract-6 metrics (docs/architecture.md#metrics)', async () => {
    const line = stderr.split('\n').find((l) => l.includes('"serving"'));
    const url = (JSON.parse(line!) as { metricsUrl: string }).metricsUrl;
    const body = await (await fetch(url.replace('0.0.0.0', '127.0.0.1'))).text();
    expect(body).toMatch(
      /flowline_port_rx_packets_total\{[^}]*nf="fw-proc"[^}]*port="a"[^}]*\} [1-9]/,
    );
    expect(body).toMatch(/flowline_port_tx_packets_total\{[^}]*port="b"[^}]*\} [1-9]/);
    expect(body).toMatch(/flowline_stage_packets_in_total\{[^}]*stage="conntrack"/);
    expect(body).toMatch(/flowline_firewall_rule_packets_total\{[^}]*rule="inside-udp"/);
  });

  it('exits 0 on SIGTERM', async () => {
    child!.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(stderr).toMatch(/"stopped"/);
  });
});
