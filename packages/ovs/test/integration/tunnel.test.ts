import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CHAIN_OPTION,
  addTunnelPeer,
  afPacketDevargs,
  appctl,
  listTunnelPeers,
  startOvsDpdk,
  tunnelKeyActions,
  tunnelKeyMatch,
  type OvsDpdk,
  type TunnelKey,
} from '../../src';

/**
 * Two OVS-DPDK "nodes", each its own ovsdb-server and ovs-vswitchd-dpdk (private run dir, EAL
 * --file-prefix, --no-pci) in its own network namespace, joined by a veth underlay: each end is
 * its switch's underlay port through DPDK's net_af_packet on br-underlay, whose tap holds the
 * node's underlay address. A "pod" on node A (a netns with a veth whose other end is a DPDK
 * af_packet port on A's br-flowline) sends UDP; A's flows give it a tunnel key and send it into
 * the Geneve port to B; B's flows steer by that key to a sink pod. Every count is exact: what
 * the source sent, what A classified, what B matched per key, what the sink received.
 */
const exec = promisify(execFile);
const sh = async (...argv: string[]): Promise<string> =>
  (await exec(argv[0]!, argv.slice(1), { timeout: 15_000 })).stdout;
const pid = process.pid;
const UNDERLAY = ['198.18.0.1/24', '198.18.0.2/24'] as const;
const POD_IP = ['10.77.0.1', '10.77.0.2'] as const;
const POD_MAC = ['02:00:00:77:00:01', '02:00:00:77:00:02'] as const;
/** Chain 0xc0ffee11, forward direction, step 2; the same chain's step 3 for the other flow. */
const KEY: TunnelKey = { chain: 0xc0ffee11, hop: 0x0002 };
const OTHER_HOP: TunnelKey = { chain: 0xc0ffee11, hop: 0x0003 };

describe('Geneve tunnels between two OVS-DPDK node switches (integration)', () => {
  const nodes: OvsDpdk[] = [];
  const netnsMade: string[] = [];
  const nodeNs = [`fltun-${pid}-a`, `fltun-${pid}-b`];
  const podNs = [`fltunpod-${pid}-a`, `fltunpod-${pid}-b`];
  const podPort = ['pod-src', 'pod-sink'];
  const tunnelPort: string[] = [];

  const ipn = (ns: string, ...args: string[]): Promise<string> => sh('ip', '-n', ns, ...args);
  const counter = async (ns: string, dev: string, what: 'rx_packets' | 'tx_packets') =>
    Number(
      (
        await sh('ip', 'netns', 'exec', ns, 'cat', `/sys/class/net/${dev}/statistics/${what}`)
      ).trim(),
    );
  const flowCount = async (node: OvsDpdk, match: string): Promise<number> => {
    const flows = (await node.openflow.dumpFlows()).filter((f) => f.match === match);
    expect(flows, `one flow ${match} on ${node.netns}`).toHaveLength(1);
    return flows[0]!.nPackets;
  };

  /** `count` UDP datagrams from pod A to pod B's port, paced (1 ms per 20): the underlay is a veth. */
  const send = async (dstPort: number, count: number): Promise<void> => {
    const script = `
      const s = require('node:dgram').createSocket('udp4');
      (async () => {
        for (let i = 0; i < ${count}; i++) {
          await new Promise((ok, ko) => s.send(Buffer.alloc(64, i & 255), ${dstPort}, '${POD_IP[1]}', (e) => (e ? ko(e) : ok())));
          if (i % 20 === 19) await new Promise((r) => setTimeout(r, 1));
        }
        s.close();
      })().catch((e) => { console.error(e); process.exit(1); });`;
    await exec('ip', ['netns', 'exec', podNs[0]!, process.execPath, '-e', script], {
      timeout: 30_000,
    });
  };

  const bFlows = (): string[] => [
    `priority=100,in_port=${tunnelPort[1]},${tunnelKeyMatch(KEY)},actions=output:${podPort[1]}`,
    // anything else out of the tunnel is counted here and dropped
    `priority=50,in_port=${tunnelPort[1]},actions=drop`,
    'priority=0,actions=drop',
  ];

  beforeAll(async () => {
    // Each node's netns is made here, so the underlay veth can be in it before its switch
    // starts; startOvsDpdk adopts it (and leaves it to us to delete).
    for (const ns of [...nodeNs, ...podNs]) {
      await sh('ip', 'netns', 'add', ns);
      netnsMade.push(ns);
      await sh('ip', 'netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1');
      await ipn(ns, 'link', 'set', 'lo', 'up');
    }
    // The underlay: one veth between the two nodes' namespaces.
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
    for (const [i, ns] of nodeNs.entries()) {
      await ipn(ns, 'link', 'set', `ul${i}`, 'up');
      // A pod: eth0 in its netns, the other end in the node's netns for the switch.
      await ipn(
        ns,
        'link',
        'add',
        `pod${i}`,
        'type',
        'veth',
        'peer',
        'name',
        'eth0',
        'netns',
        podNs[i]!,
      );
      await ipn(ns, 'link', 'set', `pod${i}`, 'up');
      await ipn(podNs[i]!, 'link', 'set', 'eth0', 'address', POD_MAC[i]!);
      await ipn(podNs[i]!, 'addr', 'add', `${POD_IP[i]}/24`, 'dev', 'eth0');
      await ipn(podNs[i]!, 'link', 'set', 'eth0', 'up');
      await ipn(
        podNs[i]!,
        'neigh',
        'replace',
        POD_IP[1 - i]!,
        'lladdr',
        POD_MAC[1 - i]!,
        'dev',
        'eth0',
      );
    }
    for (const [i, ns] of nodeNs.entries())
      nodes.push(
        await startOvsDpdk({
          runDir: `/tmp/flowline-ovs-tun-${pid}-${i}`,
          netns: ns,
          filePrefix: `fltun${pid}n${i}`,
          socketMemMb: 128,
          maxLifetimeSec: 300,
          underlay: {
            port: { name: 'underlay', devargs: afPacketDevargs('underlay', `ul${i}`) },
            address: UNDERLAY[i]!,
          },
        }),
      );
    for (const [i, node] of nodes.entries()) {
      const peer = nodes[1 - i]!;
      tunnelPort.push(
        await addTunnelPeer(node, {
          address: peer.underlay!.address,
          mac: peer.underlay!.mac,
        }),
      );
      await node.vswitch.addPort(node.bridge, podPort[i]!, {
        type: 'dpdk',
        options: { 'dpdk-devargs': afPacketDevargs(podPort[i]!, `pod${i}`) },
      });
      await node.vswitch.waitForInterface(
        podPort[i]!,
        (f) => (f.ofport ?? 0) > 0,
        15_000,
        'an ofport',
      );
      await node.openflow.ensureTlvMap([CHAIN_OPTION]);
    }
  }, 150_000);

  afterAll(async () => {
    for (const node of nodes) await node.stop().catch(() => undefined);
    // Deleting a netns deletes the veths in it.
    for (const ns of netnsMade) await sh('ip', 'netns', 'del', ns).catch(() => undefined);
  }, 90_000);

  it('sets up each node: underlay address on br-underlay, a Geneve port to the peer, the TLV map', async () => {
    for (const [i, node] of nodes.entries()) {
      expect(node.underlay?.address).toBe(UNDERLAY[i]!.split('/')[0]);
      expect(await ipn(node.netns, '-br', 'addr', 'show', 'dev', 'br-underlay')).toContain(
        UNDERLAY[i],
      );
      const peers = await listTunnelPeers(node);
      expect([...peers]).toEqual([[nodes[1 - i]!.underlay!.address, tunnelPort[i]]]);
      const tun = await node.vswitch.getInterface(tunnelPort[i]!);
      expect(tun?.type).toBe('geneve');
      expect(tun?.options).toMatchObject({
        key: 'flow',
        remote_ip: nodes[1 - i]!.underlay!.address,
      });
      expect(await node.openflow.dumpTlvMap()).toEqual([CHAIN_OPTION]);
      // ensureTlvMap is idempotent
      await node.openflow.ensureTlvMap([CHAIN_OPTION]);
      expect(await node.openflow.dumpTlvMap()).toEqual([CHAIN_OPTION]);
    }
  });

  it('carries a chain packet from node A to a sink on node B with chain and hop in the key, every packet counted', async () => {
    const [a, b] = [nodes[0]!, nodes[1]!];
    await a.openflow.applyFlows([
      `priority=100,in_port=${podPort[0]},udp,tp_dst=5000,actions=${tunnelKeyActions(KEY, tunnelPort[0]!)}`,
      `priority=100,in_port=${podPort[0]},udp,tp_dst=5001,actions=${tunnelKeyActions(OTHER_HOP, tunnelPort[0]!)}`,
      'priority=0,actions=drop',
    ]);
    await b.openflow.applyFlows(bFlows());
    const sentBefore = await counter(podNs[0]!, 'eth0', 'tx_packets');
    const sinkBefore = await counter(podNs[1]!, 'eth0', 'rx_packets');
    const N = 2000;
    const M = 500;
    await send(5000, N);
    await send(5001, M);
    // Let the last packets cross both PMDs.
    await new Promise((r) => setTimeout(r, 500));
    expect(await counter(podNs[0]!, 'eth0', 'tx_packets')).toBe(sentBefore + N + M);

    const aFlows = await a.openflow.dumpFlows();
    const classified = (port: number) =>
      aFlows.find((f) => f.match.includes(`tp_dst=${port}`))?.nPackets;
    expect(classified(5000)).toBe(N);
    expect(classified(5001)).toBe(M);
    expect(aFlows.find((f) => f.priority === 0)?.nPackets).toBe(0);

    // B matched the key exactly: chain and hop both, as A set them.
    const bTable = await b.openflow.dumpFlows();
    const keyed = bTable.filter((f) => f.priority === 100);
    expect(keyed.map((f) => f.match)).toEqual([
      `tun_id=0x2,tun_metadata0=0xc0ffee11,in_port=${tunnelPort[1]}`,
    ]);
    expect(keyed[0]!.nPackets).toBe(N);
    expect(await flowCount(b, `in_port=${tunnelPort[1]}`)).toBe(M);
    expect(await counter(podNs[1]!, 'eth0', 'rx_packets')).toBe(sinkBefore + N);

    // The datapath did the encapsulation in userspace with the Geneve option.
    const dp = await appctl(a, ['dpctl/dump-flows', '-m'], 'dump datapath flows');
    expect(dp).toMatch(
      /tnl_push\(.*geneve\(.*vni=0x2,options\(\{class=0xffff,type=0x80,len=4,0xc0ffee11\}\)/,
    );
  }, 60_000);

  it('sets the underlay up again after ovs-vswitchd restarts; with the TLV map and flows pushed again packets flow', async () => {
    const b = nodes[1]!;
    await b.restartVswitchd();
    expect(await ipn(b.netns, '-br', 'addr', 'show', 'dev', 'br-underlay')).toContain(UNDERLAY[1]);
    expect(await b.openflow.dumpTlvMap()).toEqual([]);
    await b.openflow.ensureTlvMap([CHAIN_OPTION]);
    await b.openflow.applyFlows(bFlows());
    const sinkBefore = await counter(podNs[1]!, 'eth0', 'rx_packets');
    await send(5000, 300);
    await new Promise((r) => setTimeout(r, 500));
    expect(await counter(podNs[1]!, 'eth0', 'rx_packets')).toBe(sinkBefore + 300);
  }, 90_000);
});
