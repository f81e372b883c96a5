import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  UNDERLAY_ADDRESS_ID,
  appctl,
  listTunnelPeers,
  readUnderlayAddress,
  tunnelPortName,
} from '@flowline/ovs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChainController } from '../../src/controller';
import { type NodeSwitches, SwitchAttachmentDirectory } from '../../src/node-switches';
import {
  GEN_FW_RTR_SINK,
  NodeBed,
  getChainAsOperator,
  hostLink,
  receivedFromTunnel,
  startController,
} from '../support/node-bed';
import { TestPki } from '../support/pki';
import { until } from '../support/until';

/**
 * A chain over three nodes in the kubernetes mode (issue 19): gen → fw (node a) → rtr (node b)
 * → sink (node c) through NodeSwitches, which reaches each node's OVSDB and OpenFlow over TCP
 * at the node's address (its "node IP", tcpNodeConnector) and finds the pods' ports by the CNI
 * plugin's external_ids. Each node's underlay address (198.18.0.1x, recorded in Open_vSwitch
 * external_ids:flowline-underlay-address as the chart's start.sh does) is not its node address
 * (10.252.x.y): the controller reads it and makes the Geneve tunnel ports the chain needs,
 * a ↔ b and b ↔ c (none a ↔ c), each keyed by the peer's underlay address; the test makes none.
 * Three real OVS-DPDK (test/support/node-bed.ts), each one PMD with pmd-maxsleep, 128 MiB.
 * Every packet's fate is exact: what gen sent is what the sink received, each hop's counter,
 * each crossing's counter in the chain's status as the operator reads it (GetChain over
 * mutual TLS) and on the receiving node's OVS.
 */
const root = process.getuid?.() === 0;
const N = 600;
const OVSDB_PORT = 16641;
const OPENFLOW_PORT = 16654;
const UNDERLAY = ['198.18.0.11', '198.18.0.12', '198.18.0.13'];

/** Node i's link from the host, in 10.252.0.0/16. */
const link = (i: number): { hostAddress: string; address: string } => hostLink(252, i);

describe.skipIf(!root)('a chain over three OVS-DPDK nodes, tunnels made by the controller', () => {
  const bed = new NodeBed({
    tag: 'flc3n',
    nodes: 3,
    pods: [
      [0, 'gen', ['net1']],
      [0, 'fw', ['net1', 'net2']],
      [1, 'rtr', ['net1', 'net2']],
      [2, 'sink', ['net1']],
    ],
    underlay: (i) => `${UNDERLAY[i]}/24`,
    tcp: (i) => ({ ...link(i), ovsdbPort: OVSDB_PORT, openflowPort: OPENFLOW_PORT }),
  });
  const nodes = bed.nodes;
  const addresses = [0, 1, 2].map((i) => link(i).address);
  const work = mkdtempSync(join(tmpdir(), 'flowline-cc3n-'));
  const pki = new TestPki(join(work, 'pki'));
  let fleet: NodeSwitches | undefined;
  let controller: ChainController | undefined;

  beforeAll(async () => {
    await bed.start();
    fleet = bed.tcpFleet();
    controller = await startController(fleet, new SwitchAttachmentDirectory(fleet));
  }, 200_000);

  afterAll(async () => {
    controller?.stop();
    fleet?.close();
    await bed.stop();
    rmSync(work, { recursive: true, force: true });
  }, 90_000);

  it('has underlay addresses other than the node addresses, recorded as start.sh does, and no tunnel port', async () => {
    for (const [i, node] of nodes.entries()) {
      expect((await node.vswitch.getOpenVSwitch()).externalIds[UNDERLAY_ADDRESS_ID]).toBe(
        `${UNDERLAY[i]}/24`,
      );
      expect(await readUnderlayAddress(node.vswitch)).toBe(UNDERLAY[i]);
      expect(UNDERLAY[i]).not.toBe(addresses[i]);
      expect([...(await listTunnelPeers(node))]).toEqual([]);
    }
  });

  it('creates gen → fw (a) → rtr (b) → sink (c): the controller makes the tunnels; every packet arrives, each hop and crossing counted exactly', async () => {
    const chain = await controller!.create('cross', GEN_FW_RTR_SINK);
    expect(chain.status?.phase).toBe('ACTIVE');
    expect(chain.status?.hops?.map((h) => h.ingressOvsPort)).toEqual(['fw-net1', 'rtr-net1']);

    // The tunnel ports, by peer underlay address: a ↔ b and b ↔ c, none between a and c.
    const peers = async (i: number): Promise<[string, string][]> =>
      [...(await listTunnelPeers(nodes[i]!))].sort();
    const port = (i: number): [string, string] => [UNDERLAY[i]!, tunnelPortName(UNDERLAY[i]!)];
    expect(await peers(0)).toEqual([port(1)]);
    expect(await peers(1)).toEqual([port(0), port(2)]);
    expect(await peers(2)).toEqual([port(1)]);

    // OVS resolves a tunnel peer's MAC by ARP on br-underlay and drops the packet that asked
    // (no MAC is given, as on a cluster): the controller sent a frame out of each new tunnel
    // port when it made it (NodeSwitch.primeTunnel), so the neighbours are known before the
    // chain's first packet. Nothing here talks between the nodes.
    const needs = [[1], [0, 2], [1]];
    for (const [i, node] of nodes.entries())
      await until(`node ${i}'s tunnel neighbours`, async () => {
        const shown = await appctl(node, ['tnl/neigh/show'], 'tnl/neigh/show');
        return needs[i]!.every((j) => shown.includes(UNDERLAY[j]!));
      });

    const sentBefore = await bed.counter('gen', 'tx_packets');
    const sinkBefore = await bed.counter('sink', 'rx_packets');
    await bed.send(N, 10);
    await new Promise((r) => setTimeout(r, 500));
    expect(await bed.counter('gen', 'tx_packets')).toBe(sentBefore + N);
    expect(await bed.counter('sink', 'rx_packets')).toBe(sinkBefore + N);

    const read = await getChainAsOperator(controller!, 'cross', pki, work);
    expect(read.status?.classifiedPackets).toBe(String(N));
    expect(read.status?.hops?.map((h) => h.packets)).toEqual([String(N), String(N)]);
    expect(read.status?.crossings).toEqual([
      {
        step: 1,
        fromNode: addresses[0],
        toNode: addresses[1],
        tunnelPort: tunnelPortName(UNDERLAY[1]!),
        packets: String(N),
        reverse: false,
        oversizeDrops: '0',
      },
      {
        step: 2,
        fromNode: addresses[1],
        toNode: addresses[2],
        tunnelPort: tunnelPortName(UNDERLAY[2]!),
        packets: String(N),
        reverse: false,
        oversizeDrops: '0',
      },
    ]);
    // Each crossing's receiving flow: a → b into rtr (step 1), b → c into the sink (step 2).
    expect(await receivedFromTunnel(nodes[1]!, 'cross', 1)).toBe(N);
    expect(await receivedFromTunnel(nodes[2]!, 'cross', 2)).toBe(N);
  }, 120_000);

  it('deletes it from the three nodes; the tunnel ports stay for the next chain', async () => {
    await controller!.delete('cross');
    for (const node of nodes) {
      expect((await node.openflow.dumpFlows()).map((f) => `${f.priority} ${f.actions}`)).toEqual([
        '0 drop',
      ]);
    }
    expect((await listTunnelPeers(nodes[1]!)).size).toBe(2);
  });
});
