import { execFile } from 'node:child_process';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { certificatesLoaded } from '@flowline/grpc-auth';
import {
  ATTACHMENT_EXTERNAL_IDS,
  afPacketDevargs,
  startOvsDpdk,
  type OvsDpdk,
} from '@flowline/ovs';
import { type UnaryMethod, type chainV1, unaryCall } from '@flowline/proto';
import { createChainServer } from '../../src/chain-server';
import type { ChainSwitch } from '../../src/chain-switch';
import type { ChainController } from '../../src/controller';
import type { NfDirectory, NfRecord } from '../../src/directory';
import { chainKey } from '../../src/flows';
import { TUNNEL_RECEIVE_BIT } from '../../src/node-flows';
import type { TestPki } from './pki';
import { crossSpec, dropController } from './switch-counters';

/**
 * A test bed of OVS-DPDK "nodes" for chains across nodes (issue 19): each node a real OVS-DPDK
 * (own run dir, --file-prefix, --no-pci, own netns) whose br-underlay has a DPDK net_af_packet
 * port on a veth into one Linux bridge (the underlay segment, in a netns of its own), with its
 * underlay address on br-underlay's tap (@flowline/ovs setUpUnderlay, which records it in
 * Open_vSwitch external_ids:flowline-underlay-address as the chart's start.sh does). Pods are
 * network namespaces whose interfaces are veths, the node's end a DPDK af_packet port on the
 * node's br-flowline with the CNI plugin's external_ids; a pod with two interfaces forwards
 * between them with a Linux bridge (an NF that moves packets, no gRPC). gen and sink have
 * static addresses and neighbours; IPv6 is off everywhere, so every packet counted is the
 * test's. stop() removes everything it made, also after a failed start.
 */
const exec = promisify(execFile);
export const sh = async (...argv: string[]): Promise<string> =>
  (await exec(argv[0]!, argv.slice(1), { timeout: 15_000 })).stdout;
const ipn = (ns: string, ...args: string[]): Promise<string> => sh('ip', '-n', ns, ...args);

export const GEN = { ip: '10.78.0.1', mac: '02:00:00:78:00:01' };
export const SINK = { ip: '10.78.0.2', mac: '02:00:00:78:00:02' };

/** A pod: its node (index), name, and interfaces (each an OVS port `<pod>-<iface>`). */
export type BedPod = [node: number, pod: string, ifaces: string[]];
export const portOf = (pod: string, iface: string): string => `${pod}-${iface}`;

export interface NodeBedOptions {
  /** Short stem of netns, run dir and --file-prefix names (the test's pid is added). */
  tag: string;
  nodes: number;
  pods: BedPod[];
  /** Node i's underlay address with its prefix (e.g. 198.18.0.1/24). */
  underlay(i: number): string;
  /** Node i's OVSDB and OpenFlow also over TCP at `address` (its "node IP"), as in a cluster. */
  tcp?(i: number): {
    address: string;
    hostAddress: string;
    ovsdbPort: number;
    openflowPort: number;
  };
}

export class NodeBed {
  readonly nodes: OvsDpdk[] = [];
  private readonly made: string[] = [];
  private readonly id = `${process.pid}`;

  constructor(readonly options: NodeBedOptions) {}

  nodeNs(i: number): string {
    return `${this.options.tag}-${this.id}-n${i}`;
  }

  podNs(pod: string): string {
    return `${this.options.tag}-${this.id}-${pod}`;
  }

  private underlayNs(): string {
    return `${this.options.tag}-${this.id}-ul`;
  }

  private filePrefix(i: number): string {
    return `${this.options.tag}${this.id}n${i}`;
  }

  /** The pods as an NfDirectory (`default/<pod>`), their interfaces' ports by name. */
  readonly directory: NfDirectory = {
    lookup: async (nf): Promise<NfRecord | undefined> => {
      const pod = this.options.pods.find(([, name]) => `default/${name}` === nf);
      return pod
        ? { name: nf, interfaces: Object.fromEntries(pod[2].map((i) => [i, portOf(pod[1], i)])) }
        : undefined;
    },
  };

  async start(): Promise<void> {
    const { pods } = this.options;
    const nodeIdx = [...Array(this.options.nodes).keys()];
    const namespaces = [
      this.underlayNs(),
      ...nodeIdx.map((i) => this.nodeNs(i)),
      ...pods.map(([, pod]) => this.podNs(pod)),
    ];
    for (const ns of namespaces) {
      await sh('ip', 'netns', 'add', ns);
      this.made.push(ns);
      for (const k of ['all', 'default'])
        await sh('ip', 'netns', 'exec', ns, 'sysctl', '-qw', `net.ipv6.conf.${k}.disable_ipv6=1`);
    }
    // The underlay segment: a bridge, a veth from it into each node (ul<i> on the node).
    const ul = this.underlayNs();
    await ipn(ul, 'link', 'add', 'seg', 'type', 'bridge', 'stp_state', '0');
    await ipn(ul, 'link', 'set', 'seg', 'up');
    for (const i of nodeIdx) {
      await ipn(
        ul,
        'link',
        'add',
        `p${i}`,
        'type',
        'veth',
        'peer',
        'name',
        `ul${i}`,
        'netns',
        this.nodeNs(i),
      );
      await ipn(ul, 'link', 'set', `p${i}`, 'master', 'seg');
      await ipn(ul, 'link', 'set', `p${i}`, 'up');
      await ipn(this.nodeNs(i), 'link', 'set', `ul${i}`, 'up');
    }
    // Each pod interface: a veth, the pod's end named as the interface, the node's as the port.
    for (const [node, pod, ifaces] of pods) {
      for (const iface of ifaces) {
        const port = portOf(pod, iface);
        const nodeNs = this.nodeNs(node);
        await ipn(
          nodeNs,
          'link',
          'add',
          port,
          'type',
          'veth',
          'peer',
          'name',
          iface,
          'netns',
          this.podNs(pod),
        );
        await ipn(nodeNs, 'link', 'set', port, 'up');
        await ipn(this.podNs(pod), 'link', 'set', iface, 'up');
      }
      if (ifaces.length === 2) {
        await ipn(this.podNs(pod), 'link', 'add', 'br0', 'type', 'bridge');
        for (const iface of ifaces)
          await ipn(this.podNs(pod), 'link', 'set', iface, 'master', 'br0');
        await ipn(this.podNs(pod), 'link', 'set', 'br0', 'up');
      }
    }
    for (const [pod, self, peer] of [
      ['gen', GEN, SINK],
      ['sink', SINK, GEN],
    ] as const) {
      await ipn(this.podNs(pod), 'link', 'set', 'net1', 'address', self.mac);
      await ipn(this.podNs(pod), 'addr', 'add', `${self.ip}/24`, 'dev', 'net1');
      await ipn(this.podNs(pod), 'neigh', 'replace', peer.ip, 'lladdr', peer.mac, 'dev', 'net1');
    }
    for (const i of nodeIdx) {
      const tcp = this.options.tcp?.(i);
      this.nodes.push(
        await startOvsDpdk({
          runDir: `/tmp/${this.options.tag}-${this.id}-${i}`,
          netns: this.nodeNs(i),
          filePrefix: this.filePrefix(i),
          socketMemMb: 128,
          maxLifetimeSec: 300,
          underlay: {
            port: { name: 'underlay', devargs: afPacketDevargs('underlay', `ul${i}`) },
            address: this.options.underlay(i),
          },
          ...(tcp ? { tcp } : {}),
        }),
      );
    }
    for (const [node, pod, ifaces] of pods)
      for (const iface of ifaces) {
        const port = portOf(pod, iface);
        const ovs = this.nodes[node]!;
        await ovs.vswitch.addPort(ovs.bridge, port, {
          type: 'dpdk',
          options: { 'dpdk-devargs': afPacketDevargs(port, port) },
          // as the CNI plugin records a pod's interface (what the kubernetes mode reads)
          externalIds: {
            [ATTACHMENT_EXTERNAL_IDS.podNamespace]: 'default',
            [ATTACHMENT_EXTERNAL_IDS.podName]: pod,
            [ATTACHMENT_EXTERNAL_IDS.ifname]: iface,
          },
        });
        await ovs.vswitch.waitForInterface(port, (f) => (f.ofport ?? 0) > 0, 15_000, 'an ofport');
      }
  }

  /** Stops every node, removes the namespaces (and so the veths) and any hugepage file left. */
  async stop(): Promise<void> {
    for (const node of this.nodes) await node.stop().catch(() => undefined);
    for (const ns of [...this.made].reverse())
      await sh('ip', 'netns', 'del', ns).catch(() => undefined);
    const prefixes = [...Array(this.options.nodes).keys()].map((i) => this.filePrefix(i));
    const files = await readdir('/dev/hugepages').catch(() => [] as string[]);
    await Promise.all(
      files
        .filter((f) => prefixes.some((p) => f.startsWith(p)))
        .map((f) => rm(join('/dev/hugepages', f), { force: true })),
    );
  }

  /** A pod's net1 counter (the kernel's). */
  async counter(pod: string, what: 'rx_packets' | 'tx_packets'): Promise<number> {
    return Number(
      (
        await sh(
          'ip',
          'netns',
          'exec',
          this.podNs(pod),
          'cat',
          `/sys/class/net/net1/statistics/${what}`,
        )
      ).trim(),
    );
  }

  /**
   * gen sends `n` UDP datagrams to the sink's port 5000, pausing 1 ms every `burst`; `reverse`:
   * the sink sends them back to gen from its port 5000 (a bidirectional chain's reverse
   * direction, which its classifier matches with the ports swapped).
   */
  async send(n: number, burst = 20, reverse = false): Promise<void> {
    const [pod, to, bind, port] = reverse
      ? ['sink', GEN.ip, 5000, 6000]
      : ['gen', SINK.ip, 0, 5000];
    const script = `
      const s = require('node:dgram').createSocket('udp4');
      s.bind(${bind}, async () => {
        try {
          for (let i = 0; i < ${n}; i++) {
            await new Promise((ok, ko) => s.send(Buffer.alloc(64, i & 255), ${port}, '${to}', (e) => (e ? ko(e) : ok())));
            if (i % ${burst} === ${burst - 1}) await new Promise((r) => setTimeout(r, 1));
          }
          s.close();
        } catch (e) { console.error(e); process.exit(1); }
      });`;
    await exec('ip', ['netns', 'exec', this.podNs(pod), process.execPath, '-e', script], {
      timeout: 30_000,
    });
  }
}

/** gen → fw → rtr → sink, UDP to port 5000: the chain the beds carry. */
export const GEN_FW_RTR_SINK: chainV1.ChainSpec = {
  ...crossSpec('default'),
  classifier: { ...crossSpec('default').classifier, dstPorts: { first: 5000, last: 5000 } },
};

/** A ChainController on `sw` (default flow: drop; no health watches), started. */
export async function startController(
  sw: ChainSwitch,
  directory: NfDirectory,
): Promise<ChainController> {
  const controller = dropController(sw, directory);
  await controller.start();
  return controller;
}

/** The packets `node`'s flow receiving step `step` of chain `chain` from a tunnel has counted. */
export async function receivedFromTunnel(
  node: OvsDpdk,
  chain: string,
  step: number,
): Promise<number | undefined> {
  const cookie = (BigInt(chainKey(chain)) << 32n) | BigInt(TUNNEL_RECEIVE_BIT | step);
  return (await node.openflow.dumpFlows()).find((f) => BigInt(f.cookie) === cookie)?.nPackets;
}

/**
 * The chain as the operator's GetChain returns it from `cc`'s own gRPC server (mutual TLS with
 * `pki`'s certificates, on a unix socket in `dir`).
 */
export async function getChainAsOperator(
  cc: ChainController,
  name: string,
  pki: TestPki,
  dir: string,
): Promise<chainV1.Chain__Output> {
  const controllerTls = pki.controller();
  const { server, credentials } = createChainServer({
    controller: cc,
    security: controllerTls,
    trustDomain: 'flowline',
    log: { warn: () => undefined },
    listener: 'node bed',
  });
  const address = `unix://${join(dir, 'cc.sock')}`;
  await certificatesLoaded(controllerTls);
  await new Promise<void>((ok, ko) =>
    server.bindAsync(address, credentials, (e) => (e ? ko(e) : ok())),
  );
  const client = pki.chainClient(address, pki.operator());
  try {
    return await unaryCall(
      client.GetChain.bind(client) as UnaryMethod<{ name: string }, chainV1.Chain__Output>,
      { name },
    );
  } finally {
    client.close();
    await new Promise<void>((ok) => server.tryShutdown(() => ok()));
  }
}
