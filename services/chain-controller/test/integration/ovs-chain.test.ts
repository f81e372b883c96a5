import * as grpc from '@grpc/grpc-js';
import { ATTACHMENT_EXTERNAL_IDS, type OvsDpdk, startOvsDpdk } from '@flowline/ovs';
import { chainV1 } from '@flowline/proto';
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningChainController, startChainController } from '../../src/index';
import { localSwitch } from '../support/local-switch';
import { TestPki, startNfHealth } from '../support/pki';
import { until } from '../support/until';

/**
 * The controller against a real private ovsdb-server + ovs-vswitchd-dpdk: chains become
 * OpenFlow flows on br-flowline, a dead hop's failure policy shows in the flows, flows lost
 * by an ovs-vswitchd restart come back, and chains survive a controller restart.
 * Attachment files are written in the CNI plugin's layout (contract 2,
 * docs/architecture.md#cni-to-switch-and-pod); the local-node e2e
 * runs the real plugin. gRPC is mutual TLS both ways, with certificates from a test CA: the
 * operator calls the ChainService, the controller watches the firewall's health presenting its
 * own certificate and checking the firewall's (spiffe://flowline/ns/default/nf/fw).
 */
const root = process.getuid?.() === 0;
const PORTS = {
  'default/gen': ['net1'],
  'default/fw': ['net1', 'net2'],
  'default/sink': ['net1'],
} as const;

/** The demo chain's flows, exactly: gen-net1's UDP into the firewall, out of it to the sink. */
const DEMO_TABLE = [
  'cookie=0x0 priority=0 actions=NORMAL',
  'cookie=0xaefd353600000000 priority=10100 udp,in_port="gen-net1" actions=output:"fw-net1"',
  'cookie=0xaefd353600000001 priority=10100 udp,in_port="fw-net2" actions=output:"sink-net1"',
];

type Unary<Req, Res> = (req: Req, cb: (e: grpc.ServiceError | null, r?: Res) => void) => unknown;
const call = <Req, Res>(fn: Unary<Req, Res>, req: Req) =>
  new Promise<Res>((resolve, reject) => fn(req, (e, r) => (e ? reject(e) : resolve(r!))));

describe.skipIf(!root)('chain controller on real OVS-DPDK', () => {
  const work = mkdtempSync(join(tmpdir(), 'flowline-cc-'));
  const socketDir = join(work, 'sockets');
  const stateFile = join(work, 'state', 'chains.json');
  const addressesFile = join(work, 'nf-addresses.json');
  const pki = new TestPki(join(work, 'pki'));
  const controllerTls = pki.controller();
  const operatorTls = pki.operator();
  let fw: Awaited<ReturnType<typeof startNfHealth>>;
  let ovs: OvsDpdk;
  let cc: RunningChainController;
  let client: chainV1.ChainServiceClient;

  const startController = async () => {
    cc = await startChainController({
      listen: `unix://${join(work, 'cc.sock')}`,
      switch: localSwitch(ovs, socketDir),
      bridge: ovs.bridge,
      stateFile,
      nfAddressesFile: addressesFile,
      defaultAction: 'normal',
      reconcileMs: 300,
      metricsPort: false,
      security: controllerTls,
      trustDomain: 'flowline',
    });
    client = pki.chainClient(cc.address, operatorTls);
  };
  /**
   * The controller as its image runs it: main.ts in a process of its own (through tsx), on the
   * same OVS and files; its JSON log lines from stderr.
   */
  const startMain = async () => {
    const address = `unix://${join(work, 'main.sock')}`;
    const root = join(__dirname, '../..');
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(root, 'src/main.ts'),
        ...['--listen', address, '--ovsdb', ovs.dbSocket, '--ovs-run-dir', ovs.runDir],
        ...['--bridge', ovs.bridge, '--socket-dir', socketDir, '--state-file', stateFile],
        ...['--nf-addresses', addressesFile, '--reconcile-ms', '300', '--metrics-port', 'off'],
        ...['--tls-ca', controllerTls.caFile, '--tls-cert', controllerTls.certFile],
        ...['--tls-key', controllerTls.keyFile],
      ],
      { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    const logs: Record<string, unknown>[] = [];
    let pending = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      const lines = (pending + chunk).split('\n');
      pending = lines.pop()!;
      for (const line of lines) {
        try {
          logs.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          logs.push({ raw: line });
        }
      }
    });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    await until('main serving', () => {
      if (child.exitCode !== null)
        throw new Error(`main exited with ${child.exitCode}: ${JSON.stringify(logs)}`);
      return logs.some((l) => l.msg === 'serving');
    });
    const mainClient = pki.chainClient(address, operatorTls);
    return {
      client: mainClient,
      logs,
      async stop() {
        mainClient.close();
        child.kill('SIGTERM');
        await exited;
      },
    };
  };
  const flows = async () => (await ovs.openflow.dumpFlows()).filter((f) => f.priority > 0);
  /** The whole flow table as ovs-ofctl reports it: cookie, priority, match and actions. */
  const table = async () =>
    (await ovs.openflow.dumpFlows())
      .map((f) =>
        [`cookie=${f.cookie}`, `priority=${f.priority}`, f.match, `actions=${f.actions}`]
          .filter(Boolean)
          .join(' '),
      )
      .sort();
  const outputOf = async (inPort: string) =>
    (await flows()).filter((f) => f.match.includes(`in_port=${inPort}`)).map((f) => f.actions);

  beforeAll(async () => {
    ovs = await startOvsDpdk({
      runDir: join(work, 'ovs'),
      netns: `flcc-${process.pid}`,
      maxLifetimeSec: 300,
    });
    for (const [nf, ifaces] of Object.entries(PORTS)) {
      const folder = join(socketDir, nf.replace('/', '_'));
      mkdirSync(folder, { recursive: true });
      for (const iface of ifaces) {
        const port = `${nf.split('/')[1]}-${iface}`;
        const [namespace, pod] = nf.split('/') as [string, string];
        await ovs.vswitch.addPort(ovs.bridge, port, {
          type: 'dpdkvhostuserclient',
          options: { 'vhost-server-path': join(folder, `${iface}.sock`) },
          // What the CNI plugin records on the port: the controller takes it from here.
          externalIds: {
            [ATTACHMENT_EXTERNAL_IDS.podNamespace]: namespace,
            [ATTACHMENT_EXTERNAL_IDS.podName]: pod,
            [ATTACHMENT_EXTERNAL_IDS.ifname]: iface,
          },
        });
        writeFileSync(
          join(folder, `${iface}.json`),
          JSON.stringify({
            socketPath: join(folder, `${iface}.sock`),
            ovsPort: port,
            ifname: iface,
          }),
        );
      }
    }
    fw = await startNfHealth(`unix://${join(work, 'fw.sock')}`, pki.nf('default', 'fw'));
    writeFileSync(addressesFile, JSON.stringify({ 'default/fw': fw.address }));
    await startController();
  }, 120_000);

  afterAll(async () => {
    client?.close();
    await cc?.stop();
    fw?.server.forceShutdown();
    await ovs?.stop();
    rmSync(work, { recursive: true, force: true });
  }, 60_000);

  const spec: chainV1.ChainSpec = {
    classifier: { ingressPort: 'default/gen/net1', ipVersion: 4, protocol: 'udp' },
    hops: [{ nf: 'default/fw', ingressInterface: 'net1', egressInterface: 'net2' }],
    egressPort: 'default/sink/net1',
    failurePolicy: 'BYPASS',
  };

  it('CreateChain programs the flows hop by hop in one bundle', async () => {
    const chain = await call(client.CreateChain.bind(client), { name: 'demo', spec });
    expect(await table()).toEqual(DEMO_TABLE);
    expect(chain.status).toMatchObject({
      phase: 'ACTIVE',
      hops: [{ ingressOvsPort: 'fw-net1', egressOvsPort: 'fw-net2' }],
    });
    expect(await outputOf('"gen-net1"').then((a) => (a.length ? a : outputOf('gen-net1')))).toEqual(
      ['output:"fw-net1"'],
    );
    expect(await outputOf('"fw-net2"').then((a) => (a.length ? a : outputOf('fw-net2')))).toEqual([
      'output:"sink-net1"',
    ]);
  });

  it('mutual TLS: no certificate, another CA, an NF identity are refused; the switch and the chains stay as they were', async () => {
    const before = await table();
    const attempt = { name: 'intruder', spec: { ...spec, priority: 999 } };
    for (const [files, code, details] of [
      [undefined, grpc.status.UNAVAILABLE, undefined],
      [pki.selfSigned(), grpc.status.UNAVAILABLE, undefined],
      [
        pki.nf('default', 'gen'),
        grpc.status.PERMISSION_DENIED,
        /^spiffe:\/\/flowline\/ns\/default\/nf\/gen may not call \/flowline\.chain\.v1\.ChainService\/(CreateChain|DeleteChain)/,
      ],
    ] as const) {
      const intruder = pki.chainClient(cc.address, files);
      try {
        for (const req of [
          () => call(intruder.CreateChain.bind(intruder), attempt),
          () => call(intruder.DeleteChain.bind(intruder), { name: 'demo' }),
        ])
          expect(await req().catch((e: grpc.ServiceError) => e)).toMatchObject({
            code,
            ...(details ? { details: expect.stringMatching(details) } : {}),
          });
      } finally {
        intruder.close();
      }
    }
    expect(await table()).toEqual(before);
    const { chains } = await call(client.ListChains.bind(client), {});
    expect(chains.map((c) => c.name)).toEqual(['demo']);
  });

  it('refuses bad requests with the field in the status, leaving the switch unchanged', async () => {
    const before = await flows();
    const bad = await call(client.CreateChain.bind(client), {
      name: 'bad',
      spec: {
        ...spec,
        hops: [{ nf: 'default/fw', ingressInterface: 'net1', egressInterface: 'net7' }],
      },
    }).catch((e: grpc.ServiceError) => e);
    expect(bad).toMatchObject({
      code: grpc.status.FAILED_PRECONDITION,
      details: expect.stringMatching(/^spec\.hops\[0\]\.egress_interface: /),
    });
    const invalid = await call(client.CreateChain.bind(client), { name: 'Bad Name', spec }).catch(
      (e: grpc.ServiceError) => e,
    );
    expect(invalid).toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      details: expect.stringMatching(/^name: /),
    });
    expect((await flows()).map((f) => f.match)).toEqual(before.map((f) => f.match));
  });

  it('a hop going NOT_SERVING is bypassed, and restored when it serves again', async () => {
    fw.health.setStatus('', 'NOT_SERVING');
    await until('bypass', async () =>
      (await outputOf('gen-net1')).join() === 'output:"sink-net1"' ||
      (await outputOf('"gen-net1"')).join() === 'output:"sink-net1"'
        ? true
        : undefined,
    );
    expect((await call(client.GetChain.bind(client), { name: 'demo' })).status?.phase).toBe(
      'DEGRADED',
    );
    fw.health.setStatus('', 'SERVING');
    await until('restore', async () =>
      (await call(client.GetChain.bind(client), { name: 'demo' })).status?.phase === 'ACTIVE'
        ? true
        : undefined,
    );
  });

  it("a hop whose address answers with another NF's certificate is down (bypassed) until the real one serves", async () => {
    const restartFw = async (files: ReturnType<typeof pki.controller>) => {
      fw.server.forceShutdown();
      rmSync(join(work, 'fw.sock'), { force: true });
      fw = await startNfHealth(`unix://${join(work, 'fw.sock')}`, files, fw.health);
    };
    const phase = async () =>
      (await call(client.GetChain.bind(client), { name: 'demo' })).status?.phase;
    // Serving, but as default/gen: the controller does not take its health for the firewall's.
    await restartFw(pki.nf('default', 'gen'));
    const hop = async () =>
      (await call(client.GetChain.bind(client), { name: 'demo' })).status?.hops?.[0];
    // Down for the reason that it proved another identity (not merely while it restarted).
    await until('refused for its identity', async () =>
      /server proved identity spiffe:\/\/flowline\/ns\/default\/nf\/gen, expected spiffe:\/\/flowline\/ns\/default\/nf\/fw/.test(
        (await hop())?.message ?? '',
      )
        ? true
        : undefined,
    );
    expect(await hop()).toMatchObject({ healthy: false });
    expect(await phase()).toBe('DEGRADED');
    expect(await outputOf('"gen-net1"').then((a) => (a.length ? a : outputOf('gen-net1')))).toEqual(
      ['output:"sink-net1"'],
    );
    await restartFw(pki.nf('default', 'fw'));
    await until('restore', async () => ((await phase()) === 'ACTIVE' ? true : undefined));
    expect(await table()).toEqual(DEMO_TABLE);
  });

  it('flows lost in an ovs-vswitchd restart are programmed again', async () => {
    await ovs.restartVswitchd();
    await until('flows back', async () => ((await table()).length > 1 ? true : undefined), 30_000);
    expect(await table()).toEqual(DEMO_TABLE);
  });

  it('chains survive a controller restart', async () => {
    client.close();
    await cc.stop();
    await startController();
    const { chains } = await call(client.ListChains.bind(client), {});
    expect(chains.map((c) => [c.name, c.status?.phase])).toEqual([['demo', 'ACTIVE']]);
  });

  it('a truncated state file: main starts, says what it did, and restores the chains from .prev', async () => {
    client.close();
    await cc.stop();
    // The last good copy as a later save leaves it, then the current file cut short.
    const good = readFileSync(stateFile, 'utf8');
    copyFileSync(stateFile, `${stateFile}.prev`);
    writeFileSync(stateFile, good.slice(0, Math.floor(good.length / 2)));
    const main = await startMain();
    try {
      const { chains } = await call(main.client.ListChains.bind(main.client), {});
      expect(chains.map((c) => [c.name, c.status?.phase])).toEqual([['demo', 'ACTIVE']]);
      expect(await table()).toEqual(DEMO_TABLE);
      const problem = main.logs.find((l) => l.msg === 'chain state file unusable');
      expect(problem).toMatchObject({
        level: 'error',
        component: 'chain-controller',
        file: stateFile,
        error: expect.stringMatching(/^not JSON: /),
        movedTo: expect.stringMatching(/chains\.json\.corrupt-/),
      });
      expect(readFileSync(problem!.movedTo as string, 'utf8')).toBe(
        good.slice(0, Math.floor(good.length / 2)),
      );
      expect(main.logs).toContainEqual(
        expect.objectContaining({
          level: 'warn',
          msg: 'chain state restored from the previous copy',
          source: 'previous',
          chains: 1,
        }),
      );
      expect(JSON.parse(readFileSync(stateFile, 'utf8'))).toEqual(JSON.parse(good));
    } finally {
      await main.stop();
    }
    await startController();
  });

  it('DeleteChain removes its flows; deleting again is NOT_FOUND', async () => {
    await call(client.DeleteChain.bind(client), { name: 'demo' });
    expect(await flows()).toEqual([]);
    const again = await call(client.DeleteChain.bind(client), { name: 'demo' }).catch(
      (e: grpc.ServiceError) => e,
    );
    expect(again).toMatchObject({ code: grpc.status.NOT_FOUND });
  });
  it('a garbled state file without a usable copy: main starts with no chains and says so', async () => {
    await call(client.CreateChain.bind(client), { name: 'demo', spec });
    client.close();
    await cc.stop();
    writeFileSync(stateFile, '\u0000\u00ffgarbage{"version":1');
    writeFileSync(`${stateFile}.prev`, '{"version":1,"chains":"none"}');
    const main = await startMain();
    try {
      expect(await call(main.client.ListChains.bind(main.client), {})).toEqual({ chains: [] });
      expect(await table()).toEqual(['cookie=0x0 priority=0 actions=NORMAL']);
      expect(
        main.logs.filter((l) => l.level !== 'info').map((l) => [l.level, l.msg, l.file, l.error]),
      ).toEqual([
        ['error', 'chain state file unusable', stateFile, expect.stringMatching(/^not JSON: /)],
        ['error', 'chain state file unusable', `${stateFile}.prev`, 'chains: is not an array'],
        ['warn', 'no usable chain state; starting with no chains', stateFile, undefined],
      ]);
    } finally {
      await main.stop();
    }
    await startController();
  });
});
