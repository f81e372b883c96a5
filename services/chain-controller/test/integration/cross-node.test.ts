import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { certificatesLoaded } from '@flowline/grpc-auth';
import {
  ATTACHMENT_EXTERNAL_IDS,
  addTunnelPeer,
  afPacketDevargs,
  listTunnelPeers,
  startOvsDpdk,
  type OvsDpdk,
} from '@flowline/ovs';
import { type UnaryMethod, type chainV1, unaryCall } from '@flowline/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createChainServer } from '../../src/chain-server';
import { chainKey } from '../../src/flows';
import { ChainController } from '../../src/controller';
import type { NfDirectory, NfRecord } from '../../src/directory';
import { TUNNEL_RECEIVE_BIT } from '../../src/node-flows';
import { NodeSwitches, SwitchAttachmentDirectory } from '../../src/node-switches';
import { MemoryChainStore } from '../../src/store';
import { TunnelSwitches, ovsTunnelNode } from '../../src/tunnel-switches';
import { TestPki } from '../support/pki';

/**
 * A chain across two nodes (issue 19): gen → fw (node a) → rtr (node b) → sink (node a), made
 * through the ChainController on TunnelSwitches. Each node is a real OVS-DPDK (own run dir,
 * --file-prefix, --no-pci, own netns) with a Geneve tunnel to the other over a veth underlay
 * (DPDK net_af_packet ports on br-underlay, @flowline/ovs). The pods are network namespaces
 * whose interfaces are DPDK af_packet ports on their node's br-flowline; fw and rtr forward
 * between their two interfaces with a Linux bridge (an NF that moves packets, no gRPC, so
 * their health is not watched). Every count is exact: what gen sent, what the sink received,
 * each hop's counter in the chain's status, each crossing's counter both in the chain's status
 * as the operator reads it (GetChain over mutual TLS from the controller's own gRPC server,
 * `status.crossings`) and on the receiving node's OVS.
 */
const exec = promisify(execFile);
const sh = async (...argv: string[]): Promise<string> =>
  (await exec(argv[0]!, argv.slice(1), { timeout: 15_000 })).stdout;
const ipn = (ns: string, ...args: string[]): Promise<string> => sh('ip', '-n', ns, ...args);
const root = process.getuid?.() === 0;
const pid = process.pid;
const GEN = { ip: '10.78.0.1', mac: '02:00:00:78:00:01' };
const SINK = { ip: '10.78.0.2', mac: '02:00:00:78:00:02' };

/** Pods: node, name, interfaces (each an OVS port of that name on the node's bridge). */
const PODS: [node: 0 | 1, pod: string, ifaces: string[]][] = [
  [0, 'gen', ['net1']],
  [0, 'fw', ['net1', 'net2']],
  [0, 'sink', ['net1']],
  [1, 'rtr', ['net1', 'net2']],
];
const portOf = (pod: string, iface: string): string => `${pod}-${iface}`;

const directory: NfDirectory = {
  lookup: async (nf): Promise<NfRecord | undefined> => {
    const pod = PODS.find(([, name]) => `default/${name}` === nf);
    return pod
      ? { name: nf, interfaces: Object.fromEntries(pod[2].map((i) => [i, portOf(pod[1], i)])) }
      : undefined;
  },
};

describe.skipIf(!root)('a chain across two OVS-DPDK nodes through Geneve tunnels', () => {
  const nodes: OvsDpdk[] = [];
  const made: string[] = [];
  const nodeNs = [`flccx-${pid}-a`, `flccx-${pid}-b`];
  const podNs = (pod: string): string => `flccx-${pid}-${pod}`;
  let controller: ChainController | undefined;
  const work = mkdtempSync(join(tmpdir(), 'flowline-ccx-'));
  const pki = new TestPki(join(work, 'pki'));
  const controllerTls = pki.controller();
  const operatorTls = pki.operator();

  /** The chain as the operator's GetChain returns it from `cc`'s gRPC server (as the controller serves it). */
  const getChain = async (cc: ChainController, name: string): Promise<chainV1.Chain__Output> => {
    const { server, credentials } = createChainServer({
      controller: cc,
      security: controllerTls,
      trustDomain: 'flowline',
      log: { warn: () => undefined },
      listener: 'cross-node test',
    });
    const address = `unix://${join(work, 'cc.sock')}`;
    await certificatesLoaded(controllerTls);
    await new Promise<void>((ok, ko) =>
      server.bindAsync(address, credentials, (e) => (e ? ko(e) : ok())),
    );
    const client = pki.chainClient(address, operatorTls);
    try {
      return await unaryCall(
        client.GetChain.bind(client) as UnaryMethod<{ name: string }, chainV1.Chain__Output>,
        { name },
      );
    } finally {
      client.close();
      await new Promise<void>((ok) => server.tryShutdown(() => ok()));
    }
  };

  const counter = async (ns: string, what: 'rx_packets' | 'tx_packets'): Promise<number> =>
    Number(
      (await sh('ip', 'netns', 'exec', ns, 'cat', `/sys/class/net/net1/statistics/${what}`)).trim(),
    );

  beforeAll(async () => {
    for (const ns of [...nodeNs, ...PODS.map(([, pod]) => podNs(pod))]) {
      await sh('ip', 'netns', 'add', ns);
      made.push(ns);
      for (const k of ['all', 'default'])
        await sh('ip', 'netns', 'exec', ns, 'sysctl', '-qw', `net.ipv6.conf.${k}.disable_ipv6=1`);
    }
    await ipn(
      nodeNs[0]!,
      'link',
      'add',
      'ul0',
      'type',
      'veth',
      'peer',
      'name',
      'ul1',
      'netns',
      nodeNs[1]!,
    );
    for (const [i, ns] of nodeNs.entries()) await ipn(ns, 'link', 'set', `ul${i}`, 'up');
    // Each pod interface: a veth, the pod's end named as the interface, the node's as the port.
    for (const [node, pod, ifaces] of PODS) {
      for (const iface of ifaces) {
        const port = portOf(pod, iface);
        await ipn(
          nodeNs[node]!,
          'link',
          'add',
          port,
          'type',
          'veth',
          'peer',
          'name',
          iface,
          'netns',
          podNs(pod),
        );
        await ipn(nodeNs[node]!, 'link', 'set', port, 'up');
        await ipn(podNs(pod), 'link', 'set', iface, 'up');
      }
      if (ifaces.length === 2) {
        // fw and rtr: forward between net1 and net2
        await ipn(podNs(pod), 'link', 'add', 'br0', 'type', 'bridge');
        for (const iface of ifaces) await ipn(podNs(pod), 'link', 'set', iface, 'master', 'br0');
        await ipn(podNs(pod), 'link', 'set', 'br0', 'up');
      }
    }
    for (const [pod, self, peer] of [
      ['gen', GEN, SINK],
      ['sink', SINK, GEN],
    ] as const) {
      await ipn(podNs(pod), 'link', 'set', 'net1', 'address', self.mac);
      await ipn(podNs(pod), 'addr', 'add', `${self.ip}/24`, 'dev', 'net1');
      await ipn(podNs(pod), 'neigh', 'replace', peer.ip, 'lladdr', peer.mac, 'dev', 'net1');
    }
    for (const [i, ns] of nodeNs.entries())
      nodes.push(
        await startOvsDpdk({
          runDir: `/tmp/flowline-ccx-${pid}-${i}`,
          netns: ns,
          filePrefix: `flccx${pid}n${i}`,
          socketMemMb: 128,
          maxLifetimeSec: 300,
          underlay: {
            port: { name: 'underlay', devargs: afPacketDevargs('underlay', `ul${i}`) },
            address: `198.18.0.${i + 1}/24`,
          },
        }),
      );
    for (const [i, node] of nodes.entries()) {
      const peer = nodes[1 - i]!;
      await addTunnelPeer(node, { address: peer.underlay!.address, mac: peer.underlay!.mac });
    }
    for (const [node, pod, ifaces] of PODS)
      for (const iface of ifaces) {
        const port = portOf(pod, iface);
        await nodes[node]!.vswitch.addPort(nodes[node]!.bridge, port, {
          type: 'dpdk',
          options: { 'dpdk-devargs': afPacketDevargs(port, port) },
          // as the CNI plugin records a pod's interface (what the kubernetes mode reads)
          externalIds: {
            [ATTACHMENT_EXTERNAL_IDS.podNamespace]: 'default',
            [ATTACHMENT_EXTERNAL_IDS.podName]: pod,
            [ATTACHMENT_EXTERNAL_IDS.ifname]: iface,
          },
        });
        await nodes[node]!.vswitch.waitForInterface(
          port,
          (f) => (f.ofport ?? 0) > 0,
          15_000,
          'an ofport',
        );
      }
    const nodeOfAddress = (address: string): string | undefined =>
      ['a', 'b'][nodes.findIndex((n) => n.underlay?.address === address)];
    const sw = new TunnelSwitches(() =>
      nodes.map((n, i) => ovsTunnelNode(['a', 'b'][i]!, n, n.openflow, nodeOfAddress)),
    );
    controller = new ChainController({
      store: new MemoryChainStore(),
      directory,
      switch: sw,
      health: () => () => undefined,
      compile: { defaultAction: 'drop' },
    });
    await controller.start();
  }, 150_000);

  afterAll(async () => {
    controller?.stop();
    for (const node of nodes) await node.stop().catch(() => undefined);
    for (const ns of made) await sh('ip', 'netns', 'del', ns).catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  }, 90_000);

  /**
   * Creates the chain, sends N packets from gen, checks every count; the chain stays. `names`:
   * nodes[0]'s and nodes[1]'s names as `cc`'s switch knows them.
   */
  const runChain = async (
    cc: ChainController,
    N: number,
    names: [string, string],
  ): Promise<void> => {
    const chain = await cc.create('cross', {
      classifier: {
        ingressPort: 'default/gen/net1',
        ipVersion: 4,
        protocol: 'udp',
        dstPorts: { first: 5000, last: 5000 },
      },
      hops: [
        { nf: 'default/fw', ingressInterface: 'net1', egressInterface: 'net2' },
        { nf: 'default/rtr', ingressInterface: 'net1', egressInterface: 'net2' },
      ],
      egressPort: 'default/sink/net1',
    });
    expect(chain.status?.phase).toBe('ACTIVE');
    expect(chain.status?.hops?.map((h) => h.ingressOvsPort)).toEqual(['fw-net1', 'rtr-net1']);

    const sentBefore = await counter(podNs('gen'), 'tx_packets');
    const sinkBefore = await counter(podNs('sink'), 'rx_packets');
    const script = `
      const s = require('node:dgram').createSocket('udp4');
      (async () => {
        for (let i = 0; i < ${N}; i++) {
          await new Promise((ok, ko) => s.send(Buffer.alloc(64, i & 255), 5000, '${SINK.ip}', (e) => (e ? ko(e) : ok())));
          if (i % 20 === 19) await new Promise((r) => setTimeout(r, 1));
        }
        s.close();
      })().catch((e) => { console.error(e); process.exit(1); });`;
    await exec('ip', ['netns', 'exec', podNs('gen'), process.execPath, '-e', script], {
      timeout: 30_000,
    });
    await new Promise((r) => setTimeout(r, 500));
    expect(await counter(podNs('gen'), 'tx_packets')).toBe(sentBefore + N);
    expect(await counter(podNs('sink'), 'rx_packets')).toBe(sinkBefore + N);

    const [status] = await cc.statsSnapshot();
    expect(status?.status?.classifiedPackets).toBe(String(N));
    expect(status?.status?.hops?.map((h) => h.packets)).toEqual([String(N), String(N)]);

    // The chain's status as the operator reads it: each crossing with its count, exactly.
    const tunnelTo = async (from: 0 | 1): Promise<string | undefined> =>
      (await listTunnelPeers(nodes[from]!)).get(nodes[1 - from]!.underlay!.address);
    const read = await getChain(cc, 'cross');
    expect(read.status?.classifiedPackets).toBe(String(N));
    expect(read.status?.hops?.map((h) => h.packets)).toEqual([String(N), String(N)]);
    expect(read.status?.crossings).toEqual([
      {
        step: 1,
        fromNode: names[0],
        toNode: names[1],
        tunnelPort: await tunnelTo(0),
        packets: String(N),
      },
      {
        step: 2,
        fromNode: names[1],
        toNode: names[0],
        tunnelPort: await tunnelTo(1),
        packets: String(N),
      },
    ]);
    expect(read.status?.crossings?.every((c) => c.tunnelPort !== '')).toBe(true);

    // Each crossing's receiving flow: a → b into rtr (step 1), b → a into the sink (step 2).
    const received = async (node: OvsDpdk, step: number): Promise<number | undefined> => {
      const cookie = (BigInt(chainKey('cross')) << 32n) | BigInt(TUNNEL_RECEIVE_BIT | step);
      return (await node.openflow.dumpFlows()).find((f) => BigInt(f.cookie) === cookie)?.nPackets;
    };
    expect(await received(nodes[1]!, 1)).toBe(N);
    expect(await received(nodes[0]!, 2)).toBe(N);
  };

  it('creates gen → fw (a) → rtr (b) → sink (a); every packet arrives, each hop and crossing counted exactly', async () => {
    await runChain(controller!, 2000, ['a', 'b']);
  }, 90_000);

  it('deletes it from both nodes', async () => {
    await controller!.delete('cross');
    for (const node of nodes)
      expect((await node.openflow.dumpFlows()).map((f) => `${f.priority} ${f.actions}`)).toEqual([
        '0 drop',
      ]);
  });

  it("does the same through NodeSwitches, the kubernetes mode's switch: pods' ports found by their external_ids, nodes joined by their tunnel ports", async () => {
    controller?.stop();
    // Node addresses are the underlay addresses, which the tunnel ports name as their peers.
    const addresses = nodes.map((n) => n.underlay!.address);
    const fleet = new NodeSwitches(
      () => addresses,
      async (address) => {
        const n = nodes[addresses.indexOf(address)]!;
        return {
          apply: (flows) => n.openflow.applyFlows(flows, 'replace'),
          flowStats: () => n.openflow.dumpFlows(),
          ports: () => n.vswitch.listPorts(n.bridge),
          ensureTlvMap: (m) => n.openflow.ensureTlvMap(m),
          close: () => undefined,
        };
      },
    );
    controller = new ChainController({
      store: new MemoryChainStore(),
      directory: new SwitchAttachmentDirectory(fleet),
      switch: fleet,
      health: () => () => undefined,
      compile: { defaultAction: 'drop' },
    });
    await controller.start();
    await fleet.portNames();
    expect(fleet.joined(addresses[0]!, addresses[1]!)).toBe(true);
    await runChain(controller, 1000, [addresses[0]!, addresses[1]!]);
    await controller.delete('cross');
  }, 90_000);
});
