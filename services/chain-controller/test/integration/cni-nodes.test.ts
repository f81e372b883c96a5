import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { leftoverFiles } from '@flowline/dpdk';
import { channelCredentials, nfId } from '@flowline/grpc-auth';
import { ATTACHMENT_EXTERNAL_IDS, type PortInfo, appctl, podFolderName } from '@flowline/ovs';
import { type UnaryMethod, type chainV1, firewallV1, unaryCall } from '@flowline/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChainController } from '../../src/controller';
import type { NodeSwitches } from '../../src/node-switches';
import {
  GEN_FW_RTR_SINK,
  NodeBed,
  type SequencedStream,
  hostLink,
  receivedFromTunnel,
  watchingController,
} from '../support/node-bed';
import { TestPki } from '../support/pki';
import { until } from '../support/until';

/**
 * NF processes wired by the CNI plugin on different nodes (issue 19's last test point): gen →
 * fw (node a) → rtr (node b) → sink (node a) in the kubernetes mode (NodeSwitches over TCP, the
 * Geneve ports made by the controller), where rtr is a real DPDK NF on node b wired as a
 * runtime wires a pod: the CNI plugin's executable (cni-plugin/dist/flowline, no daemon: it
 * falls back to flowline-cni in-process) run by the exec protocol once per interface against
 * node b's OVSDB socket, making a dpdkvhostuserclient port for each with its external_ids and
 * the pod folder's files; then the firewall NF (services/firewall/dist/main.js, stateless,
 * two-armed, UDP to port 5000 permitted) started in rtr's netns with contract 3's environment
 * (FLOWLINE_POD_DIR on the plugin's folder, its own file prefix, hugepages, lcores, mutual TLS).
 * Its gRPC port is reached through node b (NodeBed.routeToPod): the controller watches its
 * health there and the test reads its rule counters. gen, fw and sink are the bed's veth pods.
 * Every datagram's fate is counted: the sink, both hops, both crossings, node b's flow taking
 * them out of the tunnel, and the NF's own permit-rule and default-deny counters. Then the NF is
 * SIGKILLed under BYPASS and the outage measured by the generator (first to last lost datagram),
 * and started again on the same ports, every datagram counted through it again; last, CNI DEL
 * leaves no port on node b, no pod folder and no device-info file. Everything started (NF,
 * its hugepage files and sockets, netns, OVS nodes) is stopped in afterAll, also on failure.
 */
const root = process.getuid?.() === 0;
const N = 500;
const PPS = 1000;
const OVSDB_PORT = 16643;
const OPENFLOW_PORT = 16656;
const UNDERLAY = ['198.18.0.31', '198.18.0.32'];
const NF_PORT = 50051;
const IFACES = ['net1', 'net2'];
const NETWORK = 'flowline-net';
const REPO = join(__dirname, '../../../..');
const PLUGIN = join(REPO, 'cni-plugin/dist/flowline');
const FIREWALL = join(REPO, 'services/firewall/dist/main.js');

/** The test's /30s in 10.253.0.0/16: node i's link from the host, and rtr's pod link on node b. */
const net = (i: number): { hostAddress: string; address: string } => hostLink(253, i);
const RTR_POD = net(2);

/** The firewall's config: stateless, two-armed, the test's datagrams (UDP to 5000) permitted. */
const FW_CONFIG = {
  nf: {
    mode: 'stateless',
    topology: 'two-armed',
    defaultAction: 'deny',
    rules: [
      {
        id: 'allow-test',
        priority: 100,
        action: 'permit',
        protocol: 'udp',
        dstPorts: { first: 5000, last: 5000 },
      },
    ],
  },
};

/** What a CNI exec gave: its exit code and stdout (the result, or the spec's error JSON). */
interface CniRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** One run of the plugin by the CNI exec protocol, as a runtime runs it. */
function execCni(env: Record<string, string>, netconf: object): Promise<CniRun> {
  const child = spawn(PLUGIN, [], {
    env: { PATH: process.env.PATH, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  child.stdin.end(JSON.stringify(netconf));
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  return new Promise<CniRun>((ok, ko) => {
    child.once('error', ko);
    child.once('close', (code) => ok({ code, stdout, stderr }));
  }).finally(() => clearTimeout(timer));
}

const settle = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!root)(
  'an NF wired by the CNI plugin on another node, chained across nodes',
  () => {
    const bed = new NodeBed({
      tag: 'flccn',
      nodes: 2,
      // rtr: a netns on node b and nothing more; its interfaces are the CNI plugin's.
      pods: [
        [0, 'gen', ['net1']],
        [0, 'fw', ['net1', 'net2']],
        [0, 'sink', ['net1']],
        [1, 'rtr', []],
      ],
      underlay: (i) => `${UNDERLAY[i]}/24`,
      tcp: (i) => ({ ...net(i), ovsdbPort: OVSDB_PORT, openflowPort: OPENFLOW_PORT }),
    });
    const nodes = bed.nodes;
    const work = mkdtempSync(join(tmpdir(), 'flowline-cccn-'));
    const pki = new TestPki(join(work, 'pki'));
    const socketDir = join(work, 'vhost');
    const deviceInfoDir = join(work, 'devinfo');
    const containerId = randomBytes(32).toString('hex');
    const filePrefix = `flccn${process.pid}rtr`;
    const podDir = join(
      socketDir,
      podFolderName(socketDir, { containerId, pod: { namespace: 'default', name: 'rtr' } }),
    );
    let fleet: NodeSwitches | undefined;
    let controller: ChainController | undefined;
    let nf: ChildProcess | undefined;
    let nfLog = '';
    let firewall: firewallV1.FirewallClient | undefined;
    const streams: SequencedStream[] = [];
    const added: Record<string, CniRun> = {};

    /** CNI `command` for rtr's interface `ifname` on node b, with a runtime's environment. */
    const cni = (command: 'ADD' | 'DEL', ifname: string): Promise<CniRun> =>
      execCni(
        {
          CNI_COMMAND: command,
          CNI_CONTAINERID: containerId,
          CNI_NETNS: `/run/netns/${bed.podNs('rtr')}`,
          CNI_IFNAME: ifname,
          CNI_PATH: join(REPO, 'cni-plugin/dist'),
          CNI_ARGS: `IgnoreUnknown=true;K8S_POD_NAMESPACE=default;K8S_POD_NAME=rtr;K8S_POD_INFRA_CONTAINER_ID=${containerId}`,
          // No daemon listens there: the executable runs the plugin in-process.
          FLOWLINE_CNI_SOCKET: join(work, 'no-daemon.sock'),
        },
        {
          cniVersion: '1.1.0',
          type: 'flowline',
          name: NETWORK,
          bridge: 'br-flowline',
          mtu: 1500,
          socketDir,
          deviceInfoDir,
          ovsdbSocket: nodes[1]!.dbSocket,
        },
      );

    /** Node b's ports the plugin made for rtr's container. */
    const rtrPorts = async (): Promise<PortInfo[]> =>
      (await nodes[1]!.vswitch.listPorts('br-flowline')).filter(
        (p) => p.externalIds[ATTACHMENT_EXTERNAL_IDS.containerId] === containerId,
      );

    /** The firewall NF in rtr's netns, with the environment tools/node's podEnv gives a pod. */
    const startNf = (): ChildProcess => {
      const tls = pki.nf('default', 'rtr');
      const config = join(work, 'fw-config.json');
      writeFileSync(config, JSON.stringify(FW_CONFIG));
      const p = spawn('ip', ['netns', 'exec', bed.podNs('rtr'), process.execPath, FIREWALL], {
        env: {
          PATH: process.env.PATH,
          HOME: '/root',
          POD_NAME: 'rtr',
          POD_NAMESPACE: 'default',
          FLOWLINE_NF_NAME: 'rtr',
          FLOWLINE_POD_DIR: podDir,
          FLOWLINE_GRPC_ADDRESS: `0.0.0.0:${NF_PORT}`,
          FLOWLINE_METRICS_PORT: 'off',
          FLOWLINE_FILE_PREFIX: filePrefix,
          FLOWLINE_HUGEPAGES_DIR: '/dev/hugepages',
          FLOWLINE_HUGEPAGES_MB: '128',
          FLOWLINE_LCORES: '0,1',
          FLOWLINE_CONFIG: config,
          FLOWLINE_TLS_CA: tls.caFile,
          FLOWLINE_TLS_CERT: tls.certFile,
          FLOWLINE_TLS_KEY: tls.keyFile,
          FLOWLINE_TRUST_DOMAIN: 'flowline',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      nfLog = '';
      for (const s of [p.stdout!, p.stderr!])
        s.setEncoding('utf8').on('data', (d: string) => (nfLog += d));
      return p;
    };

    /** Stops the NF (SIGTERM, then SIGKILL) and removes what a dead one leaves. */
    const stopNf = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> => {
      const p = nf;
      nf = undefined;
      if (!p) return null;
      if (p.exitCode === null && p.signalCode === null) {
        const exited = new Promise<void>((ok) => p.once('exit', () => ok()));
        p.kill(signal);
        const timer = setTimeout(() => p.kill('SIGKILL'), 15_000);
        await exited;
        clearTimeout(timer);
      }
      // its hugepage files and EAL runtime directory (the NF runtime's prefix is filePrefix-<pid>)
      for (const f of leftoverFiles(filePrefix, { match: 'process' }))
        rmSync(f, { recursive: true, force: true });
      for (const f of existsSync(podDir) ? readdirSync(podDir) : [])
        if (f.endsWith('.sock')) rmSync(join(podDir, f), { force: true });
      return p.exitCode;
    };

    /** rtr's NF running, both its ports linked up on node b's switch. */
    const nfUp = async (): Promise<void> => {
      nf = startNf();
      const p = nf;
      for (const port of await rtrPorts())
        await until(
          `${port.name} (rtr/${port.externalIds[ATTACHMENT_EXTERNAL_IDS.ifname]}) linked up`,
          async () => {
            if (p.exitCode !== null) throw new Error(`the NF exited with ${p.exitCode}:\n${nfLog}`);
            return (await nodes[1]!.vswitch.getInterface(port.name))?.linkState === 'up';
          },
          60_000,
          100,
        );
    };

    beforeAll(async () => {
      mkdirSync(socketDir, { recursive: true });
      await bed.start();
      await bed.routeToPod('rtr', RTR_POD.address, RTR_POD.hostAddress);
      for (const ifname of IFACES) {
        added[ifname] = await cni('ADD', ifname);
        if (added[ifname].code !== 0)
          throw new Error(`CNI ADD ${ifname}: ${JSON.stringify(added[ifname])}`);
      }
      await nfUp();
      firewall = new (firewallV1.loadFirewallV1().Firewall)(
        `${RTR_POD.address}:${NF_PORT}`,
        channelCredentials(pki.operator(), nfId('default', 'rtr')),
      );
      fleet = bed.tcpFleet();
      controller = watchingController(fleet, pki, 'rtr', `${RTR_POD.address}:${NF_PORT}`);
      await controller.start();
    }, 240_000);

    afterAll(async () => {
      for (const s of streams) s.abort();
      firewall?.close();
      controller?.stop();
      fleet?.close();
      await stopNf('SIGKILL').catch(() => undefined);
      // DEL is idempotent: whatever the test got to, the plugin's ports, files and records go.
      if (nodes[1]) for (const ifname of [...IFACES].reverse()) await cni('DEL', ifname);
      await bed.stop();
      rmSync(work, { recursive: true, force: true });
    }, 120_000);

    const hop = (): chainV1.HopStatus | undefined => controller!.get('cross').status?.hops?.[1];

    /** The NF's own judgement: the datagrams its permit rule passed, and those it denied. */
    const judged = async (): Promise<number[]> => {
      const counters = await unaryCall(
        firewall!.getCounters.bind(firewall!) as UnaryMethod<object, firewallV1.Counters__Output>,
        {},
      );
      return [
        Number(counters.rules.find((r) => r.id === 'allow-test')?.packets ?? NaN),
        Number(counters.defaultDenied),
      ];
    };

    /**
     * Every counter on a datagram's way: the sink's interface, each hop, each crossing (as the
     * chain's status reports them), node b's flow taking them out of the tunnel, and the NF's
     * permit rule and default deny on node b.
     */
    const counted = async (): Promise<number[]> => {
      const [chain] = await controller!.statsSnapshot();
      return [
        await bed.counter('sink', 'rx_packets'),
        ...(chain?.status?.hops ?? []).map((h) => Number(h.packets)),
        ...(chain?.status?.crossings ?? []).map((c) => Number(c.packets)),
        (await receivedFromTunnel(nodes[1]!, 'cross', 1)) ?? NaN,
        ...(await judged()),
      ];
    };

    /** The counters once OVS has folded its datapath counts into its flows (they stay still). */
    const stillCounters = async (): Promise<number[]> => {
      let last = await counted();
      for (let still = 0, tries = 0; still < 2 && tries < 20; tries++) {
        await settle(600);
        const now = await counted();
        still = now.join() === last.join() ? still + 1 : 0;
        last = now;
      }
      return last;
    };

    /** Sends `n` datagrams gen → sink; what each counter on the way counted of them. */
    const sendCounted = async (n: number): Promise<number[]> => {
      const before = await stillCounters();
      await bed.send(n, 10);
      const after = await stillCounters();
      return after.map((v, i) => v - before[i]!);
    };

    it("wires rtr's interfaces on node b as the CNI plugin does: vhost-user client ports with its external_ids, the pod folder's files", async () => {
      const ports = await rtrPorts();
      expect(ports.map((p) => p.externalIds[ATTACHMENT_EXTERNAL_IDS.ifname]).sort()).toEqual(
        IFACES,
      );
      for (const ifname of IFACES) {
        const result = JSON.parse(added[ifname]!.stdout) as {
          cniVersion: string;
          interfaces: { name: string; mac: string; sandbox: string; socketPath: string }[];
        };
        const socket = join(podDir, `${ifname}.sock`);
        expect(result.cniVersion).toBe('1.1.0');
        expect(result.interfaces).toEqual([
          expect.objectContaining({
            name: ifname,
            sandbox: `/run/netns/${bed.podNs('rtr')}`,
            socketPath: socket,
          }),
        ]);
        const port = ports.find((p) => p.externalIds[ATTACHMENT_EXTERNAL_IDS.ifname] === ifname)!;
        expect(port.name).toMatch(/^fl[0-9a-f]{12}$/);
        const ids = {
          [ATTACHMENT_EXTERNAL_IDS.network]: NETWORK,
          [ATTACHMENT_EXTERNAL_IDS.containerId]: containerId,
          [ATTACHMENT_EXTERNAL_IDS.ifname]: ifname,
          [ATTACHMENT_EXTERNAL_IDS.netns]: `/run/netns/${bed.podNs('rtr')}`,
          [ATTACHMENT_EXTERNAL_IDS.socket]: socket,
          [ATTACHMENT_EXTERNAL_IDS.podNamespace]: 'default',
          [ATTACHMENT_EXTERNAL_IDS.podName]: 'rtr',
        };
        expect(port.externalIds).toEqual(ids);
        expect(port.interfaces).toHaveLength(1);
        expect(port.interfaces[0]).toMatchObject({
          name: port.name,
          type: 'dpdkvhostuserclient',
          options: { 'vhost-server-path': socket },
          externalIds: ids,
          linkState: 'up', // the NF listens on the socket: OVS connected
        });
        expect(readdirSync(podDir)).toEqual(expect.arrayContaining([`${ifname}.json`]));
      }
      // and nothing of rtr's on node a
      expect(
        (await nodes[0]!.vswitch.listPorts('br-flowline')).filter(
          (p) => p.externalIds[ATTACHMENT_EXTERNAL_IDS.podName] === 'rtr',
        ),
      ).toEqual([]);
    });

    it("carries gen → fw (a) → rtr, the CNI-wired NF (b) → sink (a): every datagram counted by each hop, crossing and the NF's rule", async () => {
      const chain = await controller!.create('cross', {
        ...GEN_FW_RTR_SINK,
        failurePolicy: 'BYPASS',
      });
      expect(chain.status?.phase).toBe('ACTIVE');
      // rtr's hop is on the ports the plugin made, as the controller found them on node b.
      const portOf = (ifname: string): Promise<string | undefined> =>
        rtrPorts().then(
          (ps) => ps.find((p) => p.externalIds[ATTACHMENT_EXTERNAL_IDS.ifname] === ifname)?.name,
        );
      expect(chain.status?.hops?.[1]).toMatchObject({
        nf: 'default/rtr',
        ingressOvsPort: await portOf('net1'),
        egressOvsPort: await portOf('net2'),
      });
      await until(
        'rtr reported serving',
        () => hop()?.healthy === true && hop()?.message === 'SERVING',
      );
      await until("node a's tunnel neighbour", async () =>
        (await appctl(nodes[0]!, ['tnl/neigh/show'], 'tnl/neigh/show')).includes(UNDERLAY[1]!),
      );
      // sink, fw, rtr, the crossings a → b and b → a, node b taking them from the tunnel, the
      // NF's permit rule, its default deny.
      const deltas = await sendCounted(N);
      console.log(
        `cni-nodes: ${N} datagrams sent; counted [sink, fw, rtr, a→b, b→a, b's receive flow, NF permit rule, NF default deny] = ${deltas.join(', ')}`,
      );
      expect(deltas).toEqual([N, N, N, N, N, N, N, 0]);
    }, 90_000);

    it("BYPASS: rtr's NF killed on node b, traffic goes around it within a second as the generator measures it", async () => {
      const s = await bed.stream(PPS);
      streams.push(s);
      await settle(1000);
      const killed = stopNf('SIGKILL');
      await until('rtr reported down', () => hop()?.healthy === false, 10_000, 20);
      await killed;
      await settle(1500);
      const packets = await s.stop();
      const lost = packets.filter((p) => !p.arrived);
      const ms = lost.length > 0 ? lost.at(-1)!.t - lost[0]!.t : 0;
      console.log(
        `failover (CNI-wired NF killed on node b, BYPASS, ${PPS} pps): ${lost.length} of ${packets.length} datagrams lost, ` +
          `${ms.toFixed(0)} ms from the first lost to the last`,
      );
      expect(controller!.get('cross').status?.phase).toBe('DEGRADED');
      expect(lost.length).toBeGreaterThan(0);
      expect(ms).toBeLessThan(1000);
      expect(packets.filter((p) => p.t > lost.at(-1)!.t).length).toBeGreaterThan(PPS);
    }, 60_000);

    it('the NF started again on the same ports: through rtr again, every datagram counted', async () => {
      const back = Date.now();
      await nfUp();
      await until(
        'the chain active again',
        () => controller!.get('cross').status?.phase === 'ACTIVE',
        30_000,
        20,
      );
      console.log(
        `restore (CNI-wired NF restarted): rtr in the path ${Date.now() - back} ms after its start`,
      );
      const deltas = await sendCounted(N);
      expect(deltas).toEqual([N, N, N, N, N, N, N, 0]);
    }, 120_000);

    it("CNI DEL removes rtr's ports from node b and the pod folder", async () => {
      await controller!.delete('cross');
      expect(await stopNf()).toBe(0);
      // the NF's EAL left no hugepage file or runtime directory
      for (const dir of ['/dev/hugepages', '/var/run/dpdk'])
        expect(readdirSync(dir).filter((f) => f.startsWith(filePrefix))).toEqual([]);
      for (const ifname of [...IFACES].reverse()) {
        const del = await cni('DEL', ifname);
        expect(del.code, del.stdout + del.stderr).toBe(0);
      }
      expect(await rtrPorts()).toEqual([]);
      expect(existsSync(podDir)).toBe(false);
      expect(readdirSync(deviceInfoDir)).toEqual([]);
    }, 60_000);
  },
);
