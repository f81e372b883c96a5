import * as grpc from '@grpc/grpc-js';
import { type OvsDpdk, startOvsDpdk } from '@flowline/ovs';
import { HealthService, chainV1 } from '@flowline/proto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningChainController, startChainController } from '../../src/index';
import { localSwitch } from '../support/local-switch';
import { until } from '../support/until';

/**
 * The controller against a real private ovsdb-server + ovs-vswitchd-dpdk: chains become
 * OpenFlow flows on br-flowline, a dead hop's failure policy shows in the flows, flows lost
 * by an ovs-vswitchd restart come back, and chains survive a controller restart.
 * Attachment files are written in the CNI plugin's layout (contract 2); the local-node e2e
 * runs the real plugin.
 */
const root = process.getuid?.() === 0;
const PORTS = {
  'default/gen': ['net1'],
  'default/fw': ['net1', 'net2'],
  'default/sink': ['net1'],
} as const;

type Unary<Req, Res> = (req: Req, cb: (e: grpc.ServiceError | null, r?: Res) => void) => unknown;
const call = <Req, Res>(fn: Unary<Req, Res>, req: Req) =>
  new Promise<Res>((resolve, reject) => fn(req, (e, r) => (e ? reject(e) : resolve(r!))));

describe.skipIf(!root)('chain controller on real OVS-DPDK', () => {
  const work = mkdtempSync(join(tmpdir(), 'flowline-cc-'));
  const socketDir = join(work, 'sockets');
  const stateFile = join(work, 'state', 'chains.json');
  const addressesFile = join(work, 'nf-addresses.json');
  const fwHealth = new HealthService({ '': 'SERVING' });
  const fwServer = new grpc.Server();
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
    });
    client = new (chainV1.loadChainV1().ChainService)(
      cc.address,
      grpc.credentials.createInsecure(),
    );
  };
  const flows = async () => (await ovs.openflow.dumpFlows()).filter((f) => f.priority > 0);
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
        await ovs.vswitch.addPort(ovs.bridge, port, {
          type: 'dpdkvhostuserclient',
          options: { 'vhost-server-path': join(folder, `${iface}.sock`) },
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
    const fwAddress = `unix://${join(work, 'fw.sock')}`;
    fwHealth.addTo(fwServer);
    await new Promise<void>((res, rej) =>
      fwServer.bindAsync(fwAddress, grpc.ServerCredentials.createInsecure(), (e) =>
        e ? rej(e) : res(),
      ),
    );
    writeFileSync(addressesFile, JSON.stringify({ 'default/fw': fwAddress }));
    await startController();
  }, 120_000);

  afterAll(async () => {
    client?.close();
    await cc?.stop();
    fwServer.forceShutdown();
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
    fwHealth.setStatus('', 'NOT_SERVING');
    await until('bypass', async () =>
      (await outputOf('gen-net1')).join() === 'output:"sink-net1"' ||
      (await outputOf('"gen-net1"')).join() === 'output:"sink-net1"'
        ? true
        : undefined,
    );
    expect((await call(client.GetChain.bind(client), { name: 'demo' })).status?.phase).toBe(
      'DEGRADED',
    );
    fwHealth.setStatus('', 'SERVING');
    await until('restore', async () =>
      (await call(client.GetChain.bind(client), { name: 'demo' })).status?.phase === 'ACTIVE'
        ? true
        : undefined,
    );
  });

  it('flows lost in an ovs-vswitchd restart are programmed again', async () => {
    await ovs.restartVswitchd();
    await until('flows back', async () => ((await flows()).length >= 2 ? true : undefined), 30_000);
  });

  it('chains survive a controller restart', async () => {
    client.close();
    await cc.stop();
    await startController();
    const { chains } = await call(client.ListChains.bind(client), {});
    expect(chains.map((c) => [c.name, c.status?.phase])).toEqual([['demo', 'ACTIVE']]);
  });

  it('DeleteChain removes its flows; deleting again is NOT_FOUND', async () => {
    await call(client.DeleteChain.bind(client), { name: 'demo' });
    expect(await flows()).toEqual([]);
    const again = await call(client.DeleteChain.bind(client), { name: 'demo' }).catch(
      (e: grpc.ServiceError) => e,
    );
    expect(again).toMatchObject({ code: grpc.status.NOT_FOUND });
  });
});
