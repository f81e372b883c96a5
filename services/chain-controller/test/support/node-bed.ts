import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { leftoverFiles } from '@flowline/dpdk';
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
import { ChainController } from '../../src/controller';
import type { NfDirectory, NfRecord } from '../../src/directory';
import { grpcHealthWatch } from '../../src/health';
import { NodeSwitches, SwitchAttachmentDirectory, tcpNodeConnector } from '../../src/node-switches';
import { MemoryChainStore } from '../../src/store';
import { chainKey } from '../../src/flows';
import { TUNNEL_RECEIVE_BIT } from '../../src/node-flows';
import type { TestPki } from './pki';
import { crossSpec, dropController } from './switch-counters';
import { until } from './until';

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

/** `ethtool -K <ifname> tx off` (ETHTOOL_STXCSUM through SIOCETHTOOL), without ethtool. */
const TX_CHECKSUM_OFF = `
import array, fcntl, socket, struct, sys
value = array.array('B', struct.pack('II', 0x17, 0))
request = struct.pack('16sP', sys.argv[1].encode(), value.buffer_info()[0])
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
fcntl.ioctl(sock.fileno(), 0x8946, request)
`;

/** One datagram of a SequencedStream: its sequence number, when it left (ms), whether it arrived. */
export interface StreamPacket {
  seq: number;
  t: number;
  arrived: boolean;
}

export interface SequencedStream {
  /** Stops sending, then receiving; every datagram sent with its fate. */
  stop(): Promise<StreamPacket[]>;
  /** Kills both ends (a failed test). */
  abort(): void;
}

/** The sink's side of a stream: the sequence numbers that arrived, as JSON on SIGTERM. */
const STREAM_RECEIVER = `
  const got = [];
  const s = require('node:dgram').createSocket('udp4');
  s.on('message', (m) => got.push(m.readUInt32BE(0)));
  s.bind(5000, () => process.stdout.write('ready\\n'));
  process.on('SIGTERM', () => { process.stdout.write(JSON.stringify(got)); process.exit(0); });`;

/**
 * gen's side: `pps` datagrams a second to `to`:5000, paced by the clock (those due are sent
 * at each tick), each one's send time kept; the times as JSON on SIGTERM.
 */
const streamSender = (to: string, pps: number): string => `
  const s = require('node:dgram').createSocket('udp4');
  const times = [];
  const t0 = performance.now();
  const tick = () => {
    const due = Math.floor(((performance.now() - t0) * ${pps}) / 1000);
    while (times.length < due) {
      const b = Buffer.alloc(64);
      b.writeUInt32BE(times.length, 0);
      times.push(performance.now() - t0);
      s.send(b, 5000, '${to}');
    }
  };
  const timer = setInterval(tick, 1);
  process.on('SIGTERM', () => { clearInterval(timer); process.stdout.write(JSON.stringify(times)); process.exit(0); });`;

/**
 * The `i`th /30 of a test process in 10.`octet`.0.0/16 (three per process): host end .1, node
 * end .2; a node's link from the host (the `tcp` option) or a pod's through its node.
 */
export function hostLink(octet: number, i: number): { hostAddress: string; address: string } {
  const base = (process.pid % 5000) * 12 + i * 4;
  const ip = (n: number): string => `10.${octet}.${(base + n) >> 8}.${(base + n) & 255}`;
  return { hostAddress: ip(1), address: ip(2) };
}

/** A pod: its node (index), name, and interfaces (each an OVS port `<pod>-<iface>`). */
export type BedPod = [node: number, pod: string, ifaces: string[]];
/** gen, fw and the sink on node 0, rtr on node 1: the two-node beds' pods. */
export const GEN_FW_SINK_ON_0_RTR_ON_1: BedPod[] = [
  [0, 'gen', ['net1']],
  [0, 'fw', ['net1', 'net2']],
  [0, 'sink', ['net1']],
  [1, 'rtr', ['net1', 'net2']],
];
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
      // A veth leaves a datagram's checksum to the "hardware", which af_packet hands OVS as is:
      // the datagram would reach the peer's sockets with a bad checksum (counted by the
      // interface, dropped by UDP). The kernel fills it in once tx checksumming is off.
      await sh('ip', 'netns', 'exec', this.podNs(pod), 'python3', '-c', TX_CHECKSUM_OFF, 'net1');
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

  /** The nodes' addresses (the `tcp` option's), their "node IPs". */
  nodeAddresses(): string[] {
    return [...Array(this.options.nodes).keys()].map((i) => this.tcpOf(i).address);
  }

  /**
   * The nodes as the kubernetes mode's controller reaches them: NodeSwitches over TCP at each
   * node's address (tcpNodeConnector). The caller closes it.
   */
  tcpFleet(): NodeSwitches {
    const { ovsdbPort, openflowPort } = this.tcpOf(0);
    const addresses = this.nodeAddresses();
    return new NodeSwitches(
      () => addresses,
      tcpNodeConnector({
        ovsdbRemote: `tcp:{nodeIP}:${ovsdbPort}`,
        openflowRemote: `tcp:{nodeIP}:${openflowPort}`,
        bridge: 'br-flowline',
      }),
    );
  }

  private tcpOf(i: number): NonNullable<ReturnType<NonNullable<NodeBedOptions['tcp']>>> {
    const tcp = this.options.tcp?.(i);
    if (!tcp) throw new Error('the bed has no tcp option: its nodes are not reached over TCP');
    return tcp;
  }

  /** Stops every node, removes the namespaces (and so the veths) and any hugepage file left. */
  async stop(): Promise<void> {
    for (const node of this.nodes) await node.stop().catch(() => undefined);
    for (const ns of [...this.made].reverse())
      await sh('ip', 'netns', 'del', ns).catch(() => undefined);
    const prefixes = [...Array(this.options.nodes).keys()].map((i) => this.filePrefix(i));
    await Promise.all(
      prefixes
        .flatMap((p) => leftoverFiles(p, { match: 'family' }))
        .map((f) => rm(f, { recursive: true, force: true })),
    );
  }

  /**
   * Gives `pod` a management interface routed through its node, as a pod network does: a veth
   * from the node's netns (`nodeSide`, with forwarding on) into the pod's (`podAddress`, default
   * route via the node), and a host route to `podAddress` via the node's address (the `tcp`
   * option's). The NF's gRPC listens there, so losing the node loses it too.
   */
  async routeToPod(pod: string, podAddress: string, nodeSide: string): Promise<void> {
    const spec = this.options.pods.find(([, name]) => name === pod);
    const tcp = spec && this.options.tcp?.(spec[0]);
    if (!spec || !tcp) throw new Error(`pod ${pod} is not on a node reached over TCP`);
    const nodeNs = this.nodeNs(spec[0]);
    await ipn(
      nodeNs,
      'link',
      'add',
      `${pod}-m`,
      'type',
      'veth',
      'peer',
      'name',
      'eth0',
      'netns',
      this.podNs(pod),
    );
    await ipn(nodeNs, 'addr', 'add', `${nodeSide}/30`, 'dev', `${pod}-m`);
    await ipn(nodeNs, 'link', 'set', `${pod}-m`, 'up');
    await sh('ip', 'netns', 'exec', nodeNs, 'sysctl', '-qw', 'net.ipv4.ip_forward=1');
    await ipn(this.podNs(pod), 'addr', 'add', `${podAddress}/30`, 'dev', 'eth0');
    await ipn(this.podNs(pod), 'link', 'set', 'eth0', 'up');
    await ipn(this.podNs(pod), 'route', 'add', 'default', 'via', nodeSide);
    // Removed with the host's end of the node link when the node stops.
    await sh('ip', 'route', 'replace', `${podAddress}/32`, 'via', tcp.address);
  }

  /**
   * Node `i`'s links to the world, its "NICs": the underlay veth and, with the `tcp` option,
   * the link its OVSDB, OpenFlow and pods are reached through.
   */
  private async nodeLinks(i: number): Promise<string[]> {
    const links = [`ul${i}`];
    const tcp = this.options.tcp?.(i);
    if (tcp) {
      const shown = await ipn(
        this.nodeNs(i),
        '-o',
        '-4',
        'addr',
        'show',
        'to',
        `${tcp.address}/32`,
      );
      const dev = /^\d+:\s+(\S+)/.exec(shown)?.[1];
      if (!dev) throw new Error(`node ${i} has no link with ${tcp.address}`);
      links.push(dev);
    }
    return links;
  }

  /**
   * Node `i` drops off the network as a node that loses power or its uplink does: every link
   * it has to the world goes down at its end, so whatever it was talking to hears nothing
   * more (no FIN, no RST; the other ends keep sending into the void), while its processes
   * (OVS, NFs) run on unseen. `restore` brings the links back up.
   */
  async cut(i: number): Promise<void> {
    for (const link of await this.nodeLinks(i))
      await ipn(this.nodeNs(i), 'link', 'set', link, 'down');
  }

  async restore(i: number): Promise<void> {
    for (const link of await this.nodeLinks(i))
      await ipn(this.nodeNs(i), 'link', 'set', link, 'up');
  }

  /**
   * A traffic generator for failover: gen sends UDP datagrams to the sink's port 5000 without a
   * pause, `pps` a second (each carrying its sequence number, the time it left recorded), and
   * the sink records which arrived, until stop(). What stop() gives: each datagram's send time
   * (ms, gen's clock, from its start) and whether it arrived. Both processes are killed by
   * stop() and by abort().
   */
  async stream(pps: number): Promise<SequencedStream> {
    const run = (
      pod: string,
      script: string,
    ): { p: ChildProcess; out: () => string; done: Promise<void> } => {
      const p = spawn('ip', ['netns', 'exec', this.podNs(pod), process.execPath, '-e', script], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let out = '';
      p.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
      const done = new Promise<void>((ok, ko) => {
        p.once('error', ko);
        p.once('exit', () => ok());
      });
      return { p, out: () => out, done };
    };
    const receiver = run('sink', STREAM_RECEIVER);
    let sender: ReturnType<typeof run> | undefined;
    const abort = (): void => {
      for (const { p } of [receiver, ...(sender ? [sender] : [])])
        if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    };
    try {
      await until('the sink listening', () => {
        if (receiver.p.exitCode !== null) throw new Error('the stream receiver exited');
        return receiver.out().startsWith('ready\n');
      });
      sender = run('gen', streamSender(SINK.ip, pps));
      await new Promise((r) => setTimeout(r, 300));
      if (sender.p.exitCode !== null) throw new Error('the stream sender exited');
    } catch (err) {
      abort();
      throw err;
    }
    const from = sender;
    return {
      abort,
      stop: async () => {
        from.p.kill('SIGTERM');
        await from.done;
        const times = JSON.parse(from.out()) as number[];
        await new Promise((r) => setTimeout(r, 300)); // the last ones in flight
        receiver.p.kill('SIGTERM');
        await receiver.done;
        const got = new Set(JSON.parse(receiver.out().slice('ready\n'.length)) as number[]);
        return times.map((t, seq) => ({ seq, t, arrived: got.has(seq) }));
      },
    };
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
   * direction, which its classifier matches with the ports swapped). `payload`: UDP payload
   * bytes of each (default 64).
   */
  async send(n: number, burst = 20, reverse = false, payload = 64): Promise<void> {
    const [pod, to, bind, port] = reverse
      ? ['sink', GEN.ip, 5000, 6000]
      : ['gen', SINK.ip, 0, 5000];
    const script = `
      const s = require('node:dgram').createSocket('udp4');
      s.bind(${bind}, async () => {
        try {
          for (let i = 0; i < ${n}; i++) {
            await new Promise((ok, ko) => s.send(Buffer.alloc(${payload}, i & 255), ${port}, '${to}', (e) => (e ? ko(e) : ok())));
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

/**
 * A ChainController in the kubernetes mode's shape on `fleet` (not started): every pod's ports
 * from the switches (the CNI plugin's external_ids), `default/<pod>`'s gRPC address and workload
 * as a pod's are, so its health is watched over mutual TLS with `pki`'s controller certificate;
 * the default flow drop.
 */
export function watchingController(
  fleet: NodeSwitches,
  pki: TestPki,
  pod: string,
  grpcAddress: string,
): ChainController {
  const ports = new SwitchAttachmentDirectory(fleet);
  return new ChainController({
    store: new MemoryChainStore(),
    directory: {
      lookup: async (name) => {
        const record = await ports.lookup(name);
        return record && name === `default/${pod}`
          ? { ...record, grpcAddress, workload: { namespace: 'default', name: pod } }
          : record;
      },
    },
    switch: fleet,
    health: grpcHealthWatch(pki.controller(), 'flowline'),
    compile: { defaultAction: 'drop' },
  });
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
