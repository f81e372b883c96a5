import * as grpc from '@grpc/grpc-js';
import { ATTACHMENT_EXTERNAL_IDS, type OvsDpdk, startOvsDpdk } from '@flowline/ovs';
import { HealthService } from '@flowline/proto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  FINALIZER,
  GRPC_PORT_ANNOTATION,
  type RunningChainController,
  type ServiceChain,
  startChainController,
} from '../../src/index';
import { FakeApiServer, PODS, SERVICECHAINS, writeKubeconfig } from '../support/fake-apiserver';
import { localSwitch } from '../support/local-switch';
import { TestPki, startNfHealth } from '../support/pki';
import { until } from '../support/until';

/**
 * The controller as the chart runs it (kubernetes mode, a kubeconfig file) against a real
 * private OVS-DPDK and the fake apiserver: a ServiceChain becomes flows on br-flowline, the
 * hop's health is watched at its pod's IP and annotated gRPC port, and deleting the resource
 * removes the flows before the finalizer.
 */
const root = process.getuid?.() === 0;
const NS = 'nfs';
const PORTS = { gen: ['net1'], fw: ['net1', 'net2'], sink: ['net1'] } as const;

describe.skipIf(!root)('ServiceChain reconciler on real OVS-DPDK', () => {
  const work = mkdtempSync(join(tmpdir(), 'flowline-cck-'));
  const socketDir = join(work, 'sockets');
  const fwHealth = new HealthService({ '': 'SERVING' });
  let fwServer: grpc.Server | undefined;
  const pki = new TestPki(join(work, 'pki'));
  const fake = new FakeApiServer([SERVICECHAINS, PODS]);
  let ovs: OvsDpdk;
  let cc: RunningChainController | undefined;

  const flows = async () => (await ovs.openflow.dumpFlows()).filter((f) => f.priority > 0);
  const outputOf = async (inPort: string) =>
    (await flows())
      .filter(
        (f) => f.match.includes(`in_port=${inPort}`) || f.match.includes(`in_port="${inPort}"`),
      )
      .map((f) => f.actions);
  const chain = () => fake.get('servicechains', NS, 'demo') as ServiceChain | undefined;
  const ready = () => chain()?.status?.conditions?.find((c) => c.type === 'Ready');

  beforeAll(async () => {
    ovs = await startOvsDpdk({
      runDir: join(work, 'ovs'),
      netns: `flcck-${process.pid}`,
      maxLifetimeSec: 300,
    });
    for (const [nf, ifaces] of Object.entries(PORTS)) {
      const folder = join(socketDir, `${NS}_${nf}`);
      mkdirSync(folder, { recursive: true });
      for (const iface of ifaces) {
        const port = `${nf}-${iface}`;
        const socketPath = join(folder, `${iface}.sock`);
        await ovs.vswitch.addPort(ovs.bridge, port, {
          type: 'dpdkvhostuserclient',
          options: { 'vhost-server-path': socketPath },
          // What the CNI plugin records on the port: the controller takes it from here.
          externalIds: {
            [ATTACHMENT_EXTERNAL_IDS.podNamespace]: NS,
            [ATTACHMENT_EXTERNAL_IDS.podName]: nf,
            [ATTACHMENT_EXTERNAL_IDS.ifname]: iface,
          },
        });
        writeFileSync(
          join(folder, `${iface}.json`),
          JSON.stringify({ socketPath, ovsPort: port, ifname: iface }),
        );
      }
    }
    // The firewall pod belongs to the StatefulSet "firewall": its certificate names that
    // workload (spiffe://flowline/ns/nfs/nf/firewall), which the controller expects from the
    // pod's ownerReference, not from anything the pod says.
    const served = await startNfHealth('127.0.0.1:0', pki.nf(NS, 'firewall'), fwHealth);
    fwServer = served.server;
    const fwPort = Number(served.address.split(':').pop());
    await fake.start();
    for (const nf of Object.keys(PORTS))
      fake.create('pods', NS, {
        metadata: {
          name: nf,
          annotations: { [GRPC_PORT_ANNOTATION]: String(fwPort) },
          ...(nf === 'fw'
            ? {
                ownerReferences: [
                  {
                    apiVersion: 'apps/v1',
                    kind: 'StatefulSet',
                    name: 'firewall',
                    controller: true,
                  },
                ],
              }
            : {}),
        },
        spec: { nodeName: 'node-a', containers: [{ name: 'nf' }] },
        // Only the firewall serves health here; the others are not hops.
        status: { podIP: '127.0.0.1', phase: 'Running' },
      });
    const kubeconfig = join(work, 'kubeconfig');
    writeKubeconfig(kubeconfig, fake.url);
    cc = await startChainController({
      listen: `unix://${join(work, 'cc.sock')}`,
      switch: localSwitch(ovs, socketDir),
      bridge: ovs.bridge,
      stateFile: join(work, 'state', 'chains.json'),
      defaultAction: 'normal',
      reconcileMs: 300,
      metricsPort: false,
      kubernetes: { namespace: NS, kubeconfig },
      security: pki.controller(),
      trustDomain: 'flowline',
    });
  }, 120_000);

  afterAll(async () => {
    await cc?.stop();
    fwServer?.forceShutdown();
    await fake.stop();
    await ovs?.stop();
    rmSync(work, { recursive: true, force: true });
  }, 60_000);

  it('a ServiceChain is programmed on br-flowline and reported Ready', async () => {
    fake.create('servicechains', NS, {
      metadata: { name: 'demo' },
      spec: {
        classifier: {
          ingress: { nf: 'gen', interface: 'net1' },
          match: { ipVersion: 4, protocol: 'udp' },
        },
        hops: [{ nf: 'fw', ingress: 'net1', egress: 'net2' }],
        egress: { nf: 'sink', interface: 'net1' },
        failurePolicy: 'bypass',
      },
    });
    await until('Ready', async () => (ready()?.status === 'True' ? true : undefined));
    expect(chain()?.metadata.finalizers).toEqual([FINALIZER]);
    expect(chain()?.status).toMatchObject({
      observedGeneration: 1,
      phase: 'Active',
      hops: [
        { nf: 'fw', node: 'node-a', healthy: true, ingressPort: 'fw-net1', egressPort: 'fw-net2' },
      ],
    });
    expect(await outputOf('gen-net1')).toEqual(['output:"fw-net1"']);
    expect(await outputOf('fw-net2')).toEqual(['output:"sink-net1"']);
  });

  it("the hop's pod going NOT_SERVING is bypassed on the switch and Degraded in status", async () => {
    fwHealth.setStatus('', 'NOT_SERVING');
    await until('Degraded', async () =>
      chain()?.status?.conditions?.find((c) => c.type === 'Degraded')?.status === 'True'
        ? true
        : undefined,
    );
    expect(await outputOf('gen-net1')).toEqual(['output:"sink-net1"']);
    expect(chain()?.status?.hops?.[0]).toMatchObject({ healthy: false, bypassed: true });
    fwHealth.setStatus('', 'SERVING');
    await until('Ready again', async () => (ready()?.status === 'True' ? true : undefined));
    expect(await outputOf('gen-net1')).toEqual(['output:"fw-net1"']);
  });

  it('deleting the ServiceChain removes its flows, then the finalizer', async () => {
    expect(chain()?.metadata.finalizers).toEqual([FINALIZER]);
    expect(fake.delete('servicechains', NS, 'demo').metadata.deletionTimestamp).toBeDefined();
    await until('gone', async () => (chain() === undefined ? true : undefined));
    expect(await flows()).toEqual([]);
  });
});
