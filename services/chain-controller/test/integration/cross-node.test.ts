import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addTunnelPeer, listTunnelPeers } from '@flowline/ovs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChainController } from '../../src/controller';
import { NodeSwitches, SwitchAttachmentDirectory, ovsNodeSwitch } from '../../src/node-switches';
import { TunnelSwitches, ovsTunnelNode } from '../../src/tunnel-switches';
import {
  GEN_FW_RTR_SINK,
  GEN_FW_SINK_ON_0_RTR_ON_1,
  NodeBed,
  getChainAsOperator,
  receivedFromTunnel,
  startController,
} from '../support/node-bed';
import { TestPki } from '../support/pki';
import { until } from '../support/until';

/**
 * A chain across two nodes (issue 19): gen → fw (node a) → rtr (node b) → sink (node a), made
 * through the ChainController on TunnelSwitches. Each node is a real OVS-DPDK with a Geneve
 * tunnel to the other over a veth underlay (test/support/node-bed.ts; the tunnel ports made by
 * the test with @flowline/ovs addTunnelPeer, the peers' MACs given). Every count is exact: what
 * gen sent, what the sink received, each hop's counter in the chain's status, each crossing's
 * counter both in the chain's status as the operator reads it (GetChain over mutual TLS from
 * the controller's own gRPC server, `status.crossings`) and on the receiving node's OVS. With
 * the underlay MTU given, the packets too long for a tunnel are counted per crossing by its
 * meter on the sending node (what OVS credits the check flows is printed: every packet).
 */
const root = process.getuid?.() === 0;

describe.skipIf(!root)('a chain across two OVS-DPDK nodes through Geneve tunnels', () => {
  const bed = new NodeBed({
    tag: 'flccx',
    nodes: 2,
    pods: GEN_FW_SINK_ON_0_RTR_ON_1,
    underlay: (i) => `198.18.0.${i + 1}/24`,
  });
  const nodes = bed.nodes;
  let controller: ChainController | undefined;
  const work = mkdtempSync(join(tmpdir(), 'flowline-ccx-'));
  const pki = new TestPki(join(work, 'pki'));

  beforeAll(async () => {
    await bed.start();
    for (const [i, node] of nodes.entries()) {
      const peer = nodes[1 - i]!;
      await addTunnelPeer(node, { address: peer.underlay!.address, mac: peer.underlay!.mac });
    }
    const nodeOfAddress = (address: string): string | undefined =>
      ['a', 'b'][nodes.findIndex((n) => n.underlay?.address === address)];
    const sw = new TunnelSwitches(() =>
      nodes.map((n, i) => ovsTunnelNode(['a', 'b'][i]!, n, n.openflow, nodeOfAddress)),
    );
    controller = await startController(sw, bed.directory);
  }, 150_000);

  afterAll(async () => {
    controller?.stop();
    await bed.stop();
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
    const chain = await cc.create('cross', GEN_FW_RTR_SINK);
    expect(chain.status?.phase).toBe('ACTIVE');
    expect(chain.status?.hops?.map((h) => h.ingressOvsPort)).toEqual(['fw-net1', 'rtr-net1']);

    const sentBefore = await bed.counter('gen', 'tx_packets');
    const sinkBefore = await bed.counter('sink', 'rx_packets');
    await bed.send(N);
    await new Promise((r) => setTimeout(r, 500));
    expect(await bed.counter('gen', 'tx_packets')).toBe(sentBefore + N);
    expect(await bed.counter('sink', 'rx_packets')).toBe(sinkBefore + N);

    const [status] = await cc.statsSnapshot();
    expect(status?.status?.classifiedPackets).toBe(String(N));
    expect(status?.status?.hops?.map((h) => h.packets)).toEqual([String(N), String(N)]);

    // The chain's status as the operator reads it: each crossing with its count, exactly.
    const tunnelTo = async (from: 0 | 1): Promise<string | undefined> =>
      (await listTunnelPeers(nodes[from]!)).get(nodes[1 - from]!.underlay!.address);
    const read = await getChainAsOperator(cc, 'cross', pki, work);
    expect(read.status?.classifiedPackets).toBe(String(N));
    expect(read.status?.hops?.map((h) => h.packets)).toEqual([String(N), String(N)]);
    expect(read.status?.crossings).toEqual([
      {
        step: 1,
        fromNode: names[0],
        toNode: names[1],
        tunnelPort: await tunnelTo(0),
        packets: String(N),
        reverse: false,
        oversizeDrops: '0',
      },
      {
        step: 2,
        fromNode: names[1],
        toNode: names[0],
        tunnelPort: await tunnelTo(1),
        packets: String(N),
        reverse: false,
        oversizeDrops: '0',
      },
    ]);
    expect(read.status?.crossings?.every((c) => c.tunnelPort !== '')).toBe(true);

    // Each crossing's receiving flow: a → b into rtr (step 1), b → a into the sink (step 2).
    expect(await receivedFromTunnel(nodes[1]!, 'cross', 1)).toBe(N);
    expect(await receivedFromTunnel(nodes[0]!, 'cross', 2)).toBe(N);
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

  it("a bidirectional chain's reverse traffic crosses back and is counted per reverse crossing", async () => {
    const N = 500;
    const chain = await controller!.create('both', { ...GEN_FW_RTR_SINK, bidirectional: true });
    expect(chain.status?.phase).toBe('ACTIVE');
    const genBefore = await bed.counter('gen', 'rx_packets');
    const sinkBefore = await bed.counter('sink', 'rx_packets');
    await bed.send(N);
    await bed.send(N, 20, true); // sink (a) → rtr (b) → fw (a) → gen (a)
    await new Promise((r) => setTimeout(r, 500));
    expect(await bed.counter('sink', 'rx_packets')).toBe(sinkBefore + N);
    expect(await bed.counter('gen', 'rx_packets')).toBe(genBefore + N);
    const read = await getChainAsOperator(controller!, 'both', pki, work);
    // Forward: out of fw into rtr (a → b, step 1), out of rtr to the sink (b → a, step 2).
    // Reverse, steps along it: the classified traffic at the sink into rtr (a → b, step 0), out
    // of rtr into fw (b → a, step 1); fw's output to gen stays on a.
    expect(
      read.status?.crossings?.map((c) => [c.reverse, c.step, c.fromNode, c.toNode, c.packets]),
    ).toEqual([
      [false, 1, 'a', 'b', String(N)],
      [false, 2, 'b', 'a', String(N)],
      [true, 0, 'a', 'b', String(N)],
      [true, 1, 'b', 'a', String(N)],
    ]);
    await controller!.delete('both');
  }, 90_000);

  it("does the same through NodeSwitches, the kubernetes mode's switch: pods' ports found by their external_ids, nodes joined by their tunnel ports", async () => {
    controller?.stop();
    // Node addresses are the underlay addresses, which the tunnel ports name as their peers.
    const addresses = nodes.map((n) => n.underlay!.address);
    const fleet = new NodeSwitches(
      () => addresses,
      async (address) => ovsNodeSwitch(nodes[addresses.indexOf(address)]!),
    );
    controller = await startController(fleet, new SwitchAttachmentDirectory(fleet));
    await fleet.portNames();
    expect(fleet.joined(addresses[0]!, addresses[1]!)).toBe(true);
    await runChain(controller, 1000, [addresses[0]!, addresses[1]!]);
    await controller.delete('cross');
  }, 90_000);

  it('with the underlay MTU given, packets too long for the tunnel are dropped and counted per crossing by its meter at the sending node; the meters follow an ovs-vswitchd restart and the chain', async () => {
    controller?.stop();
    const addresses = nodes.map((n) => n.underlay!.address);
    // The beds' underlay veths have the default MTU of 1500: Geneve with the chain option over
    // IPv4 takes 44 bytes of it, so a tunnel carries frames of up to 1456 bytes.
    const fleet = new NodeSwitches(
      () => addresses,
      async (address) => ovsNodeSwitch(nodes[addresses.indexOf(address)]!),
      undefined,
      5000,
      undefined,
      {},
      { underlayMtu: 1500 },
    );
    try {
      controller = await startController(fleet, new SwitchAttachmentDirectory(fleet));
      await fleet.portNames();
      const chain = await controller.create('mtu', GEN_FW_RTR_SINK);
      expect(chain.status?.phase).toBe('ACTIVE');
      const [fits, tooLong] = [200, 50];
      const sinkBefore = await bed.counter('sink', 'rx_packets');
      await bed.send(fits, 20, false, 1400); // 1442-byte frames: they fit
      await bed.send(tooLong, 10, false, 1472); // 1514-byte frames: 58 bytes too long
      await new Promise((r) => setTimeout(r, 500));
      expect(await bed.counter('sink', 'rx_packets')).toBe(sinkBefore + fits);
      const read = await getChainAsOperator(controller, 'mtu', pki, work);
      // What OVS credits the two flows after check_pkt_larger: every packet, both of them.
      const checkFlows = (await nodes[0]!.openflow.dumpFlows())
        .filter((f) => f.table === 1)
        .map((f) => `${f.actions.startsWith('meter:') ? 'too long' : 'send'}: ${f.nPackets}`);
      const meters = await nodes[0]!.openflow.meterStats();
      console.log(
        `underlay MTU 1500, ${fits} frames of 1442 bytes and ${tooLong} of 1514 sent: sink ${
          (await bed.counter('sink', 'rx_packets')) - sinkBefore
        }; hops ${read.status?.hops?.map((h) => h.packets).join(', ')}; crossings ${read.status?.crossings
          ?.map(
            (c) => `${c.fromNode} -> ${c.toNode} packets ${c.packets} too long ${c.oversizeDrops}`,
          )
          .join('; ')}; node a's check flows ${checkFlows.join(', ')}; its meters ${meters
          .map((m) => `${m.meterId}: ${m.packets}`)
          .join(', ')}`,
      );
      // Steered to the hops: every datagram; through the tunnels: those that fit; the rest
      // dropped where they would have entered the tunnel (a → b, out of fw), counted there by
      // the crossing's meter, the one meter on node a.
      expect(read.status?.hops?.map((h) => h.packets)).toEqual([
        String(fits + tooLong),
        String(fits + tooLong),
      ]);
      expect(
        read.status?.crossings?.map((c) => [c.step, c.fromNode, c.packets, c.oversizeDrops]),
      ).toEqual([
        [1, addresses[0], String(fits), String(tooLong)],
        [2, addresses[1], String(fits), '0'],
      ]);
      expect(meters.map((m) => m.packets)).toEqual([tooLong]);

      // ovs-vswitchd restarts on node a: flows and meters are gone; the node is found lost and
      // back, and its table comes back with the meter, which counts from 0.
      await nodes[0]!.restartVswitchd();
      await until(
        "node a's flows and meter back",
        async () =>
          (await nodes[0]!.openflow.meterStats()).length === 1 &&
          (await nodes[0]!.openflow.dumpFlows()).some((f) => f.actions.startsWith('meter:')),
        20_000,
        100,
      );
      const sinkAfter = await bed.counter('sink', 'rx_packets');
      await bed.send(30, 10, false, 1472);
      await new Promise((r) => setTimeout(r, 500));
      expect(await bed.counter('sink', 'rx_packets')).toBe(sinkAfter);
      const again = await getChainAsOperator(controller, 'mtu', pki, work);
      expect(again.status?.crossings?.map((c) => c.oversizeDrops)).toEqual(['30', '0']);

      // Deleted: no meter left on either node.
      await controller.delete('mtu');
      for (const node of nodes) expect(await node.openflow.meterStats()).toEqual([]);
    } finally {
      fleet.close();
    }
  }, 120_000);
});
