import { CHAIN_OPTION, TUNNEL_PEER_ID, type FlowStats, type TlvMapping } from '@flowline/ovs';
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ChainController } from './controller';
import { CrossNodeApplyError } from './cross-node-apply';
import { UnresolvedPortError } from './errors';
import { MemoryChainStore } from './store';
import {
  CrossNodeFlowError,
  NodeSwitches,
  SwitchAttachmentDirectory,
  TunnelCreateError,
  checkRemoteTemplate,
  flowPorts,
  remoteFor,
  type NodeSwitch,
  type SwitchPort,
} from './node-switches';
import { countedCrossAndLocal, crossSpec, tableStats } from '../test/support/switch-counters';

/** A node's bridge in memory: its ports (with external_ids) and the last flow table applied. */
class MemoryNode implements NodeSwitch {
  table: string[] = [];
  applies = 0;
  closed = false;
  /** What each flow of the table has counted. */
  packets = 0;
  constructor(readonly portList: SwitchPort[]) {}
  async apply(flows: string[]): Promise<void> {
    this.applies++;
    this.table = [...flows];
  }
  async flowStats(): Promise<FlowStats[]> {
    return tableStats(this.table, this.packets);
  }
  async ports() {
    return this.portList;
  }
  close(): void {
    this.closed = true;
  }
}

const pod = (ns: string, name: string, ifname: string) => ({
  'k8s-pod-namespace': ns,
  'k8s-pod-name': name,
  'cni-ifname': ifname,
});

/** A tunnel port to a peer's underlay address, as @flowline/ovs ensureTunnelPort records it. */
const tunnelTo = (peer: string, name: string) => ({
  name,
  externalIds: { [TUNNEL_PEER_ID]: peer },
});

/** Node a (10.0.0.1: gen, fw, sink) and node b (10.0.0.2: rtr), each with a tunnel to the other. */
const crossNodePorts = () => ({
  a: [
    { name: 'a-gen', externalIds: pod('nfs', 'gen', 'net1') },
    { name: 'a-fw1', externalIds: pod('nfs', 'fw', 'net1') },
    { name: 'a-fw2', externalIds: pod('nfs', 'fw', 'net2') },
    { name: 'a-sink', externalIds: pod('nfs', 'sink', 'net1') },
    tunnelTo('10.0.0.2', 'gnv-b'),
  ],
  b: [
    { name: 'b-rtr1', externalIds: pod('nfs', 'rtr', 'net1') },
    { name: 'b-rtr2', externalIds: pod('nfs', 'rtr', 'net2') },
    tunnelTo('10.0.0.1', 'gnv-a'),
  ],
});

describe('NodeSwitches', () => {
  const nodeA = () =>
    new MemoryNode([
      { name: 'a-gen', externalIds: pod('nfs', 'gen', 'net1') },
      { name: 'a-fw1', externalIds: pod('nfs', 'fw', 'net1') },
      { name: 'a-fw2', externalIds: pod('nfs', 'fw', 'net2') },
      { name: 'dpdk0', externalIds: {} },
    ]);
  const nodeB = () =>
    new MemoryNode([
      { name: 'b-rtr1', externalIds: pod('nfs', 'rtr', 'net1') },
      { name: 'dpdk0', externalIds: {} },
    ]);

  const fleetOf = (nodes: Record<string, MemoryNode | Error>, addresses = Object.keys(nodes)) => {
    const connects: string[] = [];
    const fleet = new NodeSwitches(
      () => addresses,
      async (address) => {
        connects.push(address);
        const n = nodes[address];
        if (!n || n instanceof Error) throw n ?? new Error(`no node ${address}`);
        return n;
      },
      undefined,
      60_000,
    );
    return { fleet, connects };
  };

  it('reads the ports of every node, and which node has which', async () => {
    const { fleet } = fleetOf({ '10.0.0.1': nodeA(), '10.0.0.2': nodeB() });
    expect([...(await fleet.portNames())].sort()).toEqual(
      ['a-fw1', 'a-fw2', 'a-gen', 'b-rtr1', 'dpdk0'].sort(),
    );
    expect(fleet.nodesOf('a-fw1')).toEqual(['10.0.0.1']);
    expect(fleet.nodesOf('dpdk0')).toEqual(['10.0.0.1', '10.0.0.2']);
    expect(fleet.nodesOf('nope')).toEqual([]);
  });

  it("gives each node the flows of its ports, the port-less ones to all, a shared port's to each", async () => {
    const a = nodeA();
    const b = nodeB();
    const { fleet } = fleetOf({ '10.0.0.1': a, '10.0.0.2': b });
    await fleet.portNames();
    await fleet.apply([
      'cookie=0x1,priority=10000,in_port=a-gen,udp,actions=output:a-fw1',
      'cookie=0x2,priority=10000,in_port=a-fw2,actions=output:"dpdk0"',
      'cookie=0x3,priority=10000,in_port=dpdk0,actions=output:b-rtr1',
      'cookie=0x4,priority=10000,in_port=dpdk0,actions=drop',
      'priority=0,actions=NORMAL',
    ]);
    expect(a.table).toEqual([
      'cookie=0x1,priority=10000,in_port=a-gen,udp,actions=output:a-fw1',
      'cookie=0x2,priority=10000,in_port=a-fw2,actions=output:"dpdk0"',
      'cookie=0x4,priority=10000,in_port=dpdk0,actions=drop',
      'priority=0,actions=NORMAL',
    ]);
    expect(b.table).toEqual([
      'cookie=0x3,priority=10000,in_port=dpdk0,actions=output:b-rtr1',
      'cookie=0x4,priority=10000,in_port=dpdk0,actions=drop',
      'priority=0,actions=NORMAL',
    ]);
    expect((await fleet.flowStats()).map((f) => f.cookie)).toEqual([
      '0x1',
      '0x2',
      '0x4',
      '0x0',
      '0x3',
      '0x4',
      '0x0',
    ]);
  });

  it('refuses a flow joining two nodes before applying anything', async () => {
    const a = nodeA();
    const b = nodeB();
    const { fleet } = fleetOf({ '10.0.0.1': a, '10.0.0.2': b });
    await fleet.portNames();
    const err = await fleet
      .apply(['priority=0,actions=NORMAL', 'in_port=a-fw2,actions=output:b-rtr1'])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CrossNodeFlowError);
    expect((err as Error).message).toContain('a-fw2 on 10.0.0.1, b-rtr1 on 10.0.0.2');
    expect(a.applies + b.applies).toBe(0);
  });

  it('a node that fails blocks only the changes that alter its flows', async () => {
    const a = nodeA();
    const b = nodeB();
    const { fleet } = fleetOf({ '10.0.0.1': a, '10.0.0.2': b });
    await fleet.portNames();
    const base = ['priority=0,actions=NORMAL'];
    await fleet.apply(base);
    b.apply = () => Promise.reject(new Error('ovs-ofctl: connection refused'));
    // Only node A's flows change: B being down does not stop it.
    await fleet.apply([...base, 'in_port=a-gen,actions=output:a-fw1']);
    expect(a.table).toContain('in_port=a-gen,actions=output:a-fw1');
    // B's flows would change: that is an error for the controller to roll back and retry.
    await expect(fleet.apply([...base, 'in_port=b-rtr1,actions=drop'])).rejects.toThrow(
      /connection refused/,
    );
  });

  it('leaves an unreachable node out without slowing every call, and takes it in once it answers', async () => {
    const nodes: Record<string, MemoryNode | Error> = {
      '10.0.0.1': nodeA(),
      '10.0.0.2': new Error('connect ECONNREFUSED'),
    };
    const { fleet, connects } = fleetOf(nodes);
    expect([...(await fleet.portNames())]).not.toContain('b-rtr1');
    await fleet.portNames();
    // Tried once; the retry waits out its back-off (60 s here).
    expect(connects.filter((c) => c === '10.0.0.2')).toHaveLength(1);
    const { fleet: later } = fleetOf({ ...nodes, '10.0.0.2': nodeB() });
    expect([...(await later.portNames())]).toContain('b-rtr1');
  });

  it("finds a pod's interfaces by the CNI plugin's external_ids, on any node", async () => {
    const { fleet } = fleetOf({ '10.0.0.1': nodeA(), '10.0.0.2': nodeB() });
    const dir = new SwitchAttachmentDirectory(fleet);
    expect(await dir.lookup('nfs/fw')).toEqual({
      name: 'nfs/fw',
      interfaces: { net1: 'a-fw1', net2: 'a-fw2' },
    });
    expect(await dir.lookup('nfs/rtr')).toEqual({
      name: 'nfs/rtr',
      interfaces: { net1: 'b-rtr1' },
    });
    expect(await dir.lookup('other/fw')).toBeUndefined();
  });

  it('closes every node connection', async () => {
    const a = nodeA();
    const { fleet } = fleetOf({ '10.0.0.1': a });
    await fleet.portNames();
    fleet.close();
    expect(a.closed).toBe(true);
  });
});

describe('OVS remote templates and flow ports', () => {
  it('fills {nodeIP}, bracketing IPv6, and refuses templates that make no remote', () => {
    expect(remoteFor('tcp:{nodeIP}:6640', '10.1.2.3')).toBe('tcp:10.1.2.3:6640');
    expect(remoteFor('tcp:{nodeIP}:6653', 'fd00::7')).toBe('tcp:[fd00::7]:6653');
    expect(() => checkRemoteTemplate('tcp:{nodeIP}:6640')).not.toThrow();
    expect(() => checkRemoteTemplate('tcp:{nodeIP}')).toThrow(/is not tcp:<host>:<port>/);
    expect(() => checkRemoteTemplate('ptcp:6640:{nodeIP}')).toThrow(/not supported/);
  });

  it('reads in_port and output ports, quoted or not', () => {
    expect(
      flowPorts('cookie=0x1,priority=5,in_port=fw-net1,udp,actions=output:"sink-net1"'),
    ).toEqual(['fw-net1', 'sink-net1']);
    expect(flowPorts('in_port="a b",actions=drop')).toEqual(['a b']);
    expect(flowPorts('priority=0,actions=NORMAL')).toEqual([]);
  });
});

describe('NodeSwitches joined by tunnels (issue 19)', () => {
  class TunnelNode extends MemoryNode {
    tlv: TlvMapping[] = [];
    async ensureTlvMap(m: readonly TlvMapping[]): Promise<void> {
      this.tlv = [...m];
    }
  }
  const nodes = (tunnels: boolean) => {
    const a = new TunnelNode([
      { name: 'a-gen', externalIds: pod('nfs', 'gen', 'net1') },
      { name: 'a-fw1', externalIds: pod('nfs', 'fw', 'net1') },
      { name: 'a-fw2', externalIds: pod('nfs', 'fw', 'net2') },
      { name: 'a-sink', externalIds: pod('nfs', 'sink', 'net1') },
      ...(tunnels ? [tunnelTo('10.0.0.2', 'gnv-b')] : []),
    ]);
    const b = new TunnelNode([
      { name: 'b-rtr1', externalIds: pod('nfs', 'rtr', 'net1') },
      { name: 'b-rtr2', externalIds: pod('nfs', 'rtr', 'net2') },
      ...(tunnels ? [tunnelTo('10.0.0.1', 'gnv-a')] : []),
    ]);
    const fleet = new NodeSwitches(
      () => ['10.0.0.1', '10.0.0.2'],
      async (address) => (address === '10.0.0.1' ? a : b),
    );
    const controller = new ChainController({
      store: new MemoryChainStore(),
      directory: new SwitchAttachmentDirectory(fleet),
      switch: fleet,
      health: () => () => undefined,
    });
    return { a, b, fleet, controller };
  };
  const spec = crossSpec('nfs');

  it('programs a chain across two nodes whose switches have tunnels to each other', async () => {
    const { a, b, fleet, controller } = nodes(true);
    await controller.start();
    const chain = await controller.create('cross', spec);
    expect(chain.status?.phase).toBe('ACTIVE');
    expect(fleet.joined('10.0.0.1', '10.0.0.2')).toBe(true);
    const actions = (t: string[]) => t.map((f) => f.replace(/^.*actions=/, ''));
    expect(actions(a.table)).toEqual([
      'output:a-fw1',
      expect.stringMatching(/->tun_metadata0,output:gnv-b$/),
      'output:a-sink',
      'NORMAL',
    ]);
    expect(actions(b.table)).toEqual([
      'output:b-rtr1',
      expect.stringMatching(/->tun_metadata0,output:gnv-a$/),
      'NORMAL',
    ]);
    expect([a.tlv, b.tlv]).toEqual([[CHAIN_OPTION], [CHAIN_OPTION]]);
  });

  it("reports the chain's crossings between the nodes (by address) with the packets each received", async () => {
    const { a, b, fleet, controller } = nodes(true);
    const [cross, local] = await countedCrossAndLocal(controller, spec, 'nfs', () => {
      [a.packets, b.packets] = [7, 4];
    });
    expect(new Set((await fleet.flowStats()).map((f) => f.node))).toEqual(
      new Set(['10.0.0.1', '10.0.0.2']),
    );
    expect(cross?.status?.crossings).toEqual([
      {
        step: 1,
        fromNode: '10.0.0.1',
        toNode: '10.0.0.2',
        tunnelPort: 'gnv-b',
        packets: '4',
        reverse: false,
        oversizeDrops: '0',
      },
      {
        step: 2,
        fromNode: '10.0.0.2',
        toNode: '10.0.0.1',
        tunnelPort: 'gnv-a',
        packets: '7',
        reverse: false,
        oversizeDrops: '0',
      },
    ]);
    expect(cross?.status?.hops?.map((h) => h.packets)).toEqual(['7', '7']);
    expect(local?.status?.crossings).toEqual([]);
  });

  it('still refuses it, naming the endpoint, when the nodes have no tunnels', async () => {
    const { a, controller } = nodes(false);
    await controller.start();
    const err = await controller.create('cross', spec).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnresolvedPortError);
    expect((err as UnresolvedPortError).field).toBe('spec.hops[1].ingress_interface');
    expect(a.table).toEqual(['priority=0,actions=NORMAL']);
  });

  it('undoes node 10.0.0.1 when node 10.0.0.2 refuses its share', async () => {
    const { a, b, controller } = nodes(true);
    await controller.start();
    const before = a.table;
    b.apply = async () => {
      throw new Error('bundle rejected');
    };
    await expect(controller.create('cross', spec)).rejects.toBeInstanceOf(CrossNodeApplyError);
    expect(a.table).toEqual(before);
  });
});

describe('NodeSwitches counts packets too long for a tunnel per crossing, with a meter each (issue 19)', () => {
  /**
   * A node's bridge with OpenFlow meters as OVS keeps them: adding one that exists fails (unless
   * set again, which zeroes it), a table naming a missing meter is refused, deleting a meter
   * deletes the flows using it, and a restart loses meters and flows.
   */
  class MeteredNode extends MemoryNode {
    meters = new Map<number, number>();
    /** What the switch was asked, in order. */
    log: string[] = [];
    refuse?: Error;
    tlv: TlvMapping[] = [];
    async ensureTlvMap(m: readonly TlvMapping[]): Promise<void> {
      this.tlv = [...m];
    }
    override async apply(flows: string[]): Promise<void> {
      if (this.refuse) throw this.refuse;
      for (const f of flows)
        for (const m of f.matchAll(/meter:(\d+)/g))
          if (!this.meters.has(Number(m[1]))) throw new Error(`OFPMMFC_UNKNOWN_METER ${m[1]}`);
      this.log.push('apply');
      await super.apply(flows);
    }
    override async flowStats(): Promise<FlowStats[]> {
      return (await super.flowStats()).map((f) => ({
        ...f,
        actions: f.match.replace(/^.*actions=/, ''),
      }));
    }
    async meterStats() {
      return [...this.meters].map(([meterId, packets]) => ({ meterId, packets, bytes: 0 }));
    }
    async addCountingMeter(id: number, reset = false): Promise<void> {
      if (this.meters.has(id) !== reset) throw new Error(`OFPMMFC_METER_EXISTS/UNKNOWN ${id}`);
      this.log.push(`${reset ? 'reset' : 'add'} ${id}`);
      this.meters.set(id, 0);
    }
    async deleteMeter(id: number): Promise<void> {
      this.log.push(`delete ${id}`);
      this.meters.delete(id);
      this.table = this.table.filter((f) => !f.includes(`meter:${id}`));
    }
    restart(): void {
      this.meters.clear();
      this.table = [];
    }
  }
  const nodes = () => {
    const ports = crossNodePorts();
    return { a: new MeteredNode(ports.a), b: new MeteredNode(ports.b) };
  };
  const controllerOn = (
    a: MeteredNode,
    b: MeteredNode,
    underlayMtu: number | null = 1500,
    store = new MemoryChainStore(),
  ) => {
    const fleet = new NodeSwitches(
      () => ['10.0.0.1', '10.0.0.2'],
      async (address) => (address === '10.0.0.1' ? a : b),
      undefined,
      5000,
      undefined,
      {},
      underlayMtu === null ? {} : { underlayMtu },
    );
    const controller = new ChainController({
      store,
      directory: new SwitchAttachmentDirectory(fleet),
      switch: fleet,
      health: () => () => undefined,
    });
    return { fleet, controller };
  };
  const spec = crossSpec('nfs');
  const meterOf = (table: string[]) => table.flatMap((f) => /meter:(\d+)/.exec(f)?.[1] ?? []);
  const oversize = async (controller: ChainController) =>
    Object.fromEntries(
      (await controller.statsSnapshot()).map((c) => [
        c.name,
        c.status?.crossings?.map((x) => x.oversizeDrops),
      ]),
    );

  it("gives each crossing a meter on its sending node, installed before its flows, and reports the meter's count", async () => {
    const { a, b } = nodes();
    const { controller } = controllerOn(a, b);
    await controller.start();
    await controller.create('one', spec);
    await controller.create('two', spec);
    // Each node numbers its own meters: one per crossing it sends, chains in name order.
    expect([meterOf(a.table), meterOf(b.table)]).toEqual([
      ['1', '2'],
      ['1', '2'],
    ]);
    expect(a.table.filter((f) => f.includes('check_pkt_larger(1456)'))).toHaveLength(2);
    expect(a.log).toEqual(['apply', 'add 1', 'apply', 'add 2', 'apply']);
    a.packets = 250; // what every flow counted: the check table's too
    a.meters.set(1, 50);
    b.meters.set(2, 4);
    expect(await oversize(controller)).toEqual({ one: ['50', '0'], two: ['0', '4'] });
  });

  it('frees the meters of a crossing that goes away (after its flows), and a later crossing starts from 0 on a freed id', async () => {
    const { a, b } = nodes();
    const { controller } = controllerOn(a, b);
    await controller.start();
    await controller.create('one', spec);
    await controller.create('two', spec);
    a.meters.set(1, 50);
    a.meters.set(2, 9);
    a.log = [];
    await controller.delete('one');
    expect(a.log).toEqual(['apply', 'delete 1']);
    expect([...a.meters.keys()]).toEqual([2]);
    expect(meterOf(a.table)).toEqual(['2']);
    await controller.create('three', spec);
    expect(meterOf(a.table)).toEqual(['1', '2']); // three, two
    expect(await oversize(controller)).toEqual({ two: ['9', '0'], three: ['0', '0'] });
    await controller.delete('two');
    await controller.delete('three');
    expect([a.meters.size, b.meters.size]).toEqual([0, 0]);
  });

  it('a meter left on the switch (its deletion failed) counts from 0 again when a new crossing takes its id', async () => {
    const { a, b } = nodes();
    const { controller } = controllerOn(a, b);
    await controller.start();
    await controller.create('one', spec);
    a.meters.set(1, 50);
    const deleteMeter = a.deleteMeter.bind(a);
    a.deleteMeter = async () => {
      throw new Error('connection reset');
    };
    await controller.delete('one');
    expect([...a.meters]).toEqual([[1, 50]]);
    a.deleteMeter = deleteMeter;
    a.log = [];
    await controller.create('two', spec);
    expect(a.log).toEqual(['reset 1', 'apply']);
    expect(await oversize(controller)).toEqual({ two: ['0', '0'] });
  });

  it('adds the meters again before the flows when the switch restarted (ovs-vswitchd loses both)', async () => {
    const { a, b } = nodes();
    const { controller } = controllerOn(a, b);
    await controller.start();
    await controller.create('one', spec);
    const table = a.table;
    a.restart();
    a.log = [];
    await controller.reconcile(); // as when the node is back (NodeSwitches.watchNodes)
    expect(a.log).toEqual(['add 1', 'apply']);
    expect(a.table).toEqual(table);
  });

  it('removes the meters of a change that fails on another node, keeping the others and their counts', async () => {
    const { a, b } = nodes();
    const { controller } = controllerOn(a, b);
    await controller.start();
    await controller.create('one', spec);
    a.meters.set(1, 50);
    const before = a.table;
    b.refuse = new Error('bundle rejected');
    await expect(controller.create('two', spec)).rejects.toBeInstanceOf(CrossNodeApplyError);
    expect(a.table).toEqual(before);
    expect([...a.meters]).toEqual([[1, 50]]);
    expect([...b.meters.keys()]).toEqual([1]);
    b.refuse = undefined;
    await controller.create('two', spec);
    expect(meterOf(a.table)).toEqual(['1', '2']);
  });

  it('a restarted controller keeps the meters its predecessor gave (and their counts), and prunes those no table uses', async () => {
    const { a, b } = nodes();
    const store = new MemoryChainStore();
    const first = controllerOn(a, b, 1500, store);
    await first.controller.start();
    await first.controller.create('one', spec);
    await first.controller.create('two', spec);
    first.controller.stop();
    first.fleet.close();
    a.meters.set(2, 7);
    a.meters.set(9, 1); // left over
    a.log = [];
    const { controller } = controllerOn(a, b, 1500, store);
    await controller.start(); // the stored chains, programmed again
    expect(a.log).toEqual(['apply', 'delete 9']);
    expect(meterOf(a.table)).toEqual(['1', '2']);
    expect((await oversize(controller)).two).toEqual(['7', '0']);
  });

  it('goes through the node-liveness guard of a probed switch (meters added, read and deleted)', async () => {
    class ProbedNode extends MeteredNode {
      probe(): Promise<void> {
        return Promise.resolve();
      }
    }
    const ports = crossNodePorts();
    const [a, b] = [new ProbedNode(ports.a), new ProbedNode(ports.b)];
    const { fleet, controller } = controllerOn(a, b);
    try {
      await controller.start();
      await controller.create('one', spec);
      expect([[...a.meters.keys()], [...b.meters.keys()]]).toEqual([[1], [1]]);
      a.meters.set(1, 5);
      expect(await oversize(controller)).toEqual({ one: ['5', '0'] });
      await controller.delete('one');
      expect([a.meters.size, b.meters.size]).toEqual([0, 0]);
    } finally {
      controller.stop();
      fleet.close();
    }
  });

  it('checks nothing without an underlay MTU: no meter, no length check', async () => {
    const { a, b } = nodes();
    const { controller } = controllerOn(a, b, null);
    await controller.start();
    await controller.create('one', spec);
    expect(a.table.some((f) => /meter:|check_pkt_larger/.test(f))).toBe(false);
    expect([a.meters.size, a.log.filter((l) => l !== 'apply')]).toEqual([0, []]);
    expect(await oversize(controller)).toEqual({ one: ['0', '0'] });
  });
});

describe('NodeSwitches makes the tunnel ports a change needs (kubernetes mode)', () => {
  /** A node's bridge that adds tunnel ports as @flowline/ovs ensureTunnelPort does (by peer). */
  class TunnelMakingNode extends MemoryNode {
    tlv: TlvMapping[] = [];
    made: string[] = [];
    removed: string[] = [];
    primed: string[] = [];
    failTunnel?: Error;
    constructor(
      portList: SwitchPort[],
      readonly underlay: string | undefined | Error,
    ) {
      super(portList);
    }
    async ensureTlvMap(m: readonly TlvMapping[]): Promise<void> {
      this.tlv = [...m];
    }
    async underlayAddress(): Promise<string | undefined> {
      if (this.underlay instanceof Error) throw this.underlay;
      return this.underlay;
    }
    async ensureTunnel(peer: string): Promise<{ port: string; created: boolean }> {
      if (this.failTunnel) throw this.failTunnel;
      const port = `gnv-${peer}`;
      const existing = this.portList.find((p) => p.name === port);
      // As ensureTunnelPort checks a port that is there: OVS opened it, or it names why not.
      const error = existing?.interfaces?.[0]?.error;
      if (error) throw new Error(`adding tunnel port ${port}: OVS could not open it: ${error}`);
      if (existing) return { port, created: false };
      this.portList.push({ name: port, externalIds: { [TUNNEL_PEER_ID]: peer } });
      this.made.push(peer);
      return { port, created: true };
    }
    async primeTunnel(port: string): Promise<void> {
      this.primed.push(port);
    }
    async removeTunnel(peer: string): Promise<void> {
      const at = this.portList.findIndex((p) => p.name === `gnv-${peer}`);
      if (at >= 0) this.portList.splice(at, 1);
      this.removed.push(peer);
    }
    tunnels(): string[] {
      return this.portList.filter((p) => p.externalIds[TUNNEL_PEER_ID]).map((p) => p.name);
    }
  }
  // Node addresses 10.0.0.x; a and b record an underlay address, c does not (its own is used).
  const threeNodes = (
    underlayOfB: string | Error = '198.18.0.2',
    names: Record<string, string> = {},
  ) => {
    const a = new TunnelMakingNode(
      [
        { name: 'a-gen', externalIds: pod('nfs', 'gen', 'net1') },
        { name: 'a-fw1', externalIds: pod('nfs', 'fw', 'net1') },
        { name: 'a-fw2', externalIds: pod('nfs', 'fw', 'net2') },
      ],
      '198.18.0.1',
    );
    const b = new TunnelMakingNode(
      [
        { name: 'b-rtr1', externalIds: pod('nfs', 'rtr', 'net1') },
        { name: 'b-rtr2', externalIds: pod('nfs', 'rtr', 'net2') },
      ],
      underlayOfB,
    );
    const c = new TunnelMakingNode(
      [{ name: 'c-sink', externalIds: pod('nfs', 'sink', 'net1') }],
      undefined,
    );
    const byAddress: Record<string, TunnelMakingNode> = {
      '10.0.0.1': a,
      '10.0.0.2': b,
      '10.0.0.3': c,
    };
    const fleet = new NodeSwitches(
      () => Object.keys(byAddress),
      async (address) => byAddress[address]!,
      undefined,
      5000,
      (address) => names[address],
    );
    const controller = new ChainController({
      store: new MemoryChainStore(),
      directory: new SwitchAttachmentDirectory(fleet),
      switch: fleet,
      health: () => () => undefined,
    });
    return { a, b, c, fleet, controller };
  };
  const spec = crossSpec('nfs');
  const actions = (t: string[]) => t.map((f) => f.replace(/^.*actions=/, ''));
  const inPorts = (t: string[]) => t.map((f) => /in_port=([^,]+)/.exec(f)?.[1] ?? '');

  it('adds a tunnel port each way between the nodes a chain crosses, keyed by underlay address, then programs it', async () => {
    const { a, b, c, fleet, controller } = threeNodes();
    await controller.start();
    const chain = await controller.create('cross', spec);
    expect(chain.status?.phase).toBe('ACTIVE');
    // a ↔ b and b ↔ c are crossed; a and c never talk, so they get no tunnel to each other.
    expect([a.made, b.made, c.made]).toEqual([
      ['198.18.0.2'],
      ['198.18.0.1', '10.0.0.3'],
      ['198.18.0.2'],
    ]);
    expect(actions(a.table)).toEqual([
      'output:a-fw1',
      expect.stringMatching(/->tun_metadata0,output:gnv-198\.18\.0\.2$/),
      'NORMAL',
    ]);
    expect(inPorts(b.table)).toEqual(['gnv-198.18.0.1', 'b-rtr2', '']);
    expect(actions(b.table)).toEqual([
      'output:b-rtr1',
      expect.stringMatching(/->tun_metadata0,output:gnv-10\.0\.0\.3$/),
      'NORMAL',
    ]);
    expect(inPorts(c.table)).toEqual(['gnv-198.18.0.2', '']);
    expect(actions(c.table)).toEqual(['output:c-sink', 'NORMAL']);
    expect([a.tlv, b.tlv, c.tlv]).toEqual([[CHAIN_OPTION], [CHAIN_OPTION], [CHAIN_OPTION]]);
    expect(fleet.crossings('cross').map((x) => [x.step, x.from, x.to, x.tunnelPort])).toEqual([
      [1, '10.0.0.1', '10.0.0.2', 'gnv-198.18.0.2'],
      [2, '10.0.0.2', '10.0.0.3', 'gnv-10.0.0.3'],
    ]);
    // Each new port was primed (OVS resolves its peer before the chain's first packet).
    expect([a.primed, b.primed, c.primed]).toEqual([
      ['gnv-198.18.0.2'],
      ['gnv-198.18.0.1', 'gnv-10.0.0.3'],
      ['gnv-198.18.0.2'],
    ]);
    // Made once: another change finds them (by the peers' underlay addresses) and adds none.
    await controller.update('cross', { ...spec, priority: 5 });
    expect([a.made, b.made, c.made].map((m) => m.length)).toEqual([1, 2, 1]);
    expect([a.primed, b.primed, c.primed].map((m) => m.length)).toEqual([1, 2, 1]);
    expect([a, b, c].map((n) => n.tunnels().length)).toEqual([1, 2, 1]);
  });

  it('names the nodes of each crossing as the cluster does, where it knows them', async () => {
    const { fleet, controller } = threeNodes('198.18.0.2', {
      '10.0.0.1': 'node-a',
      '10.0.0.2': 'node-b',
    });
    await controller.start();
    await controller.create('cross', spec);
    expect(fleet.crossings('cross').map((x) => [x.from, x.to])).toEqual([
      ['node-a', 'node-b'],
      ['node-b', '10.0.0.3'],
    ]);
    // and the flow stats the status counts crossings from say the same names
    expect(new Set((await fleet.flowStats()).map((f) => f.node))).toEqual(
      new Set(['node-a', 'node-b', '10.0.0.3']),
    );
    const chain = (await controller.statsSnapshot()).find((c) => c.name === 'cross')!;
    expect(chain.status?.crossings?.map((x) => [x.fromNode, x.toNode])).toEqual([
      ['node-a', 'node-b'],
      ['node-b', '10.0.0.3'],
    ]);
  });

  it("does not take a tunnel port OVS could not open for a tunnel: the change fails naming OVS's error", async () => {
    const { a, b, c, controller } = threeNodes();
    // Left by an earlier run: a's port to b, which OVS never opened.
    a.portList.push({
      name: 'gnv-198.18.0.2',
      externalIds: { [TUNNEL_PEER_ID]: '198.18.0.2' },
      interfaces: [{ ofport: -1, error: 'could not add network device gnv-198.18.0.2' }],
    });
    await controller.start();
    const before = [a, b, c].map((n) => [...n.table]);
    await expect(controller.create('cross', spec)).rejects.toThrow(
      /^creating the tunnel from node 10\.0\.0\.1 to node 10\.0\.0\.2 \(underlay address 198\.18\.0\.2\) failed: adding tunnel port gnv-198\.18\.0\.2: OVS could not open it: could not add network device/,
    );
    // nothing steers packets into it
    expect([a, b, c].map((n) => n.table)).toEqual(before);
  });

  it('fails naming both nodes when a tunnel port cannot be made, applying nothing and removing the ports it added', async () => {
    const { a, b, c, controller } = threeNodes();
    await controller.start();
    const before = [a, b, c].map((n) => [...n.table]);
    c.failTunnel = new Error('ovsdb-server: constraint violation');
    const err = await controller.create('cross', spec).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TunnelCreateError);
    expect((err as TunnelCreateError).message).toBe(
      'creating the tunnel from node 10.0.0.3 to node 10.0.0.2 (underlay address 198.18.0.2) failed: ovsdb-server: constraint violation; nothing of this change was applied',
    );
    expect([a, b, c].map((n) => n.table)).toEqual(before);
    expect([a, b, c].map((n) => n.tunnels())).toEqual([[], [], []]);
    expect([a.removed, b.removed]).toEqual([['198.18.0.2'], ['10.0.0.3', '198.18.0.1']]);
    expect(await controller.list()).toEqual([]);
  });

  it("fails naming both nodes when a node's recorded underlay address is not one", async () => {
    const { a, controller } = threeNodes(
      new Error('external_ids:flowline-underlay-address is "x"'),
    );
    await controller.start();
    const err = await controller.create('cross', spec).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TunnelCreateError);
    expect((err as Error).message).toMatch(
      /^creating the tunnel from node 10\.0\.0\.1 to node 10\.0\.0\.2 failed: external_ids:flowline-underlay-address is "x"/,
    );
    expect([a.table, a.tunnels()]).toEqual([['priority=0,actions=NORMAL'], []]);
  });

  it('removes the tunnel ports it added when a node then refuses its flows', async () => {
    const { a, b, c, controller } = threeNodes();
    await controller.start();
    c.apply = async () => {
      throw new Error('bundle rejected');
    };
    await expect(controller.create('cross', spec)).rejects.toBeInstanceOf(CrossNodeApplyError);
    expect([a, b, c].map((n) => n.tunnels())).toEqual([[], [], []]);
    expect([a.table, b.table]).toEqual([
      ['priority=0,actions=NORMAL'],
      ['priority=0,actions=NORMAL'],
    ]);
  });
});

describe('NodeSwitches: a node that becomes unreachable (issue 19, failover)', () => {
  /** A node with tunnels that can go silent: then nothing it is asked ever answers. */
  class SilentNode extends MemoryNode {
    silent = false;
    private readonly never = new Promise<never>(() => undefined);
    override apply(flows: string[]): Promise<void> {
      return this.silent ? this.never : super.apply(flows);
    }
    override ports() {
      return this.silent ? this.never : super.ports();
    }
    async ensureTlvMap(): Promise<void> {
      await Promise.resolve();
    }
    probe(): Promise<void> {
      return this.silent ? this.never : Promise.resolve();
    }
  }
  const LIVENESS = { probeMs: 10, lostAfterMs: 60 };
  const setUp = () => {
    const ports = crossNodePorts();
    const a = new SilentNode(ports.a);
    const b = new SilentNode(ports.b);
    const fleet = new NodeSwitches(
      () => ['10.0.0.1', '10.0.0.2'],
      async (address) => (address === '10.0.0.1' ? a : b),
      undefined,
      5000,
      () => undefined,
      LIVENESS,
    );
    const events: [string, boolean][] = [];
    fleet.watchNodes((node, up) => events.push([node, up]));
    return { a, b, fleet, events };
  };
  const until = async (what: string, ok: () => boolean, ms = 2000): Promise<void> => {
    const end = Date.now() + ms;
    while (!ok()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  };

  it('finds a node whose switch went silent lost within a probe and its deadline, and back when it answers', async () => {
    const { b, fleet, events } = setUp();
    await fleet.portNames();
    await new Promise((r) => setTimeout(r, 30));
    expect(events).toEqual([]);
    b.silent = true;
    const t0 = Date.now();
    await until('node b lost', () => events.length > 0);
    expect(Date.now() - t0).toBeLessThan(LIVENESS.probeMs + LIVENESS.lostAfterMs + 100);
    expect(events).toEqual([['10.0.0.2', false]]);
    expect(fleet.isLost('10.0.0.2')).toBe(true);
    expect(fleet.portLost('b-rtr1')).toMatch(
      /^node 10\.0\.0\.2 is unreachable: its switch did not answer a probe within 60 ms$/,
    );
    expect(fleet.portLost('a-fw1')).toBeUndefined();
    // Operations on it fail at once, naming it; its ports are the ones it had.
    await expect(fleet.flowStats()).resolves.toEqual(
      expect.not.arrayContaining([expect.objectContaining({ node: '10.0.0.2' })]),
    );
    expect([...(await fleet.portNames())]).toContain('b-rtr1');
    b.silent = false;
    await until('node b back', () => events.length > 1);
    expect(events).toEqual([
      ['10.0.0.2', false],
      ['10.0.0.2', true],
    ]);
    expect(fleet.portLost('b-rtr1')).toBeUndefined();
    fleet.close();
  });

  it('a stall of this process longer than the deadline is not taken for a lost node when the answer is waiting', async () => {
    // The node's switch is another process (it answers while this one stalls), 20 ms late.
    const peer = spawn(
      process.execPath,
      ['-e', "process.stdin.on('data', (d) => setTimeout(() => process.stdout.write(d), 20))"],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    try {
      await new Promise<void>((resolve) => {
        peer.stdout.once('data', () => resolve()); // it has started
        peer.stdin.write('hello');
      });
      const { b, fleet, events } = setUp();
      let stall = false;
      b.probe = () =>
        new Promise<void>((resolve) => {
          peer.stdout.once('data', () => resolve());
          peer.stdin.write('probe');
          if (stall) {
            stall = false;
            // stalls right after sending (after this turn's I/O, so that the next turn starts
            // with the expired deadline): the answer comes meanwhile, the deadline passes
            setImmediate(() => {
              const until = Date.now() + 5 * LIVENESS.lostAfterMs;
              while (Date.now() < until);
            });
          }
        });
      await fleet.portNames();
      await new Promise((r) => setTimeout(r, 50));
      stall = true;
      await new Promise((r) => setTimeout(r, 500));
      expect(stall).toBe(false); // it stalled
      expect(events).toEqual([]);
      fleet.close();
    } finally {
      peer.kill();
    }
  });

  it('a read waiting on a node when it is found lost ends then, with the ports the node had', async () => {
    const { b, fleet } = setUp();
    await fleet.portNames();
    b.silent = true; // nothing it is asked answers, and it is not lost yet
    const t0 = Date.now();
    const names = await fleet.portNames();
    expect(Date.now() - t0).toBeLessThan(LIVENESS.probeMs + LIVENESS.lostAfterMs + 100);
    expect([...names]).toEqual(expect.arrayContaining(['a-fw1', 'b-rtr1', 'b-rtr2']));
    fleet.close();
  });

  it('the chain fails over from a lost node at once: its hop down (bypassed on the others), the node left out, its whole table given again when it is back', async () => {
    const { a, b, fleet } = setUp();
    const controller = new ChainController({
      store: new MemoryChainStore(),
      directory: new SwitchAttachmentDirectory(fleet),
      switch: fleet,
      health: () => () => undefined,
    });
    await controller.start();
    await controller.create('cross', { ...crossSpec('nfs'), failurePolicy: 'BYPASS' });
    // and one on node b alone: b's table changes whenever it is given again
    await controller.create('on-b', {
      classifier: { ingressPort: 'nfs/rtr/net2', ipVersion: 4, protocol: 'tcp' },
      egressPort: 'nfs/rtr/net1',
    });
    const actions = (t: string[]) => t.map((f) => f.replace(/^.*actions=/, ''));
    const through = actions(a.table);
    expect(through).toEqual([
      'output:a-fw1',
      expect.stringMatching(/output:gnv-b$/),
      'output:a-sink',
      'NORMAL',
    ]);
    const bTable = b.table;
    const hop = () => controller.get('cross').status?.hops?.[1];

    b.silent = true;
    await until('rtr down', () => hop()?.healthy === false);
    expect(hop()?.message).toMatch(/^node 10\.0\.0\.2 is unreachable: /);
    await until('the bypass on node a', () => !a.table.some((f) => f.includes('gnv-b')));
    expect(actions(a.table)).toEqual(['output:a-fw1', 'output:a-sink', 'NORMAL']);
    expect(controller.get('cross').status?.phase).toBe('DEGRADED');
    expect(b.table).toEqual(bTable); // never reached

    b.table = ['priority=0,actions=NORMAL']; // as a switch that restarted meanwhile
    b.silent = false;
    await until('rtr back', () => controller.get('cross').status?.phase === 'ACTIVE');
    expect(actions(a.table)).toEqual(through);
    expect(b.table).toEqual(bTable);
    controller.stop();
    fleet.close();
  });
});
