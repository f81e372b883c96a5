import type { FlowStats, TlvMapping } from '@flowline/ovs';
import { describe, expect, it } from 'vitest';
import { CrossNodeApplyError } from './cross-node-apply';
import type { NfDirectory, NfRecord } from './directory';
import { PortResolver } from './port-resolver';
import { validateChainSpec } from './spec';
import { MissingTunnelError, TunnelSwitches, type TunnelNode } from './tunnel-switches';
import {
  countedCrossAndLocal,
  crossSpec,
  dropController,
  tableStats,
} from '../test/support/switch-counters';

/**
 * A node switch in memory: its ports, tunnel ports, table, TLV map; it can be made to refuse.
 * Every flow of its table has counted `packets`.
 */
class MemoryNode implements TunnelNode {
  table: readonly string[] = [];
  tlv: TlvMapping[] = [];
  refuse = false;
  packets = 0;
  constructor(
    readonly name: string,
    readonly ports: string[],
    readonly tunnels: Record<string, string>,
  ) {}
  async apply(flows: readonly string[]) {
    if (this.refuse) throw new Error(`${this.name}: bundle rejected`);
    if (flows.some((f) => f.includes('tun_metadata0')) && this.tlv.length === 0)
      throw new Error(`${this.name}: tun_metadata0 is not mapped`);
    this.table = flows;
  }
  async flowStats(): Promise<FlowStats[]> {
    return tableStats(this.table, this.packets);
  }
  async portNames() {
    return [...this.ports, ...Object.values(this.tunnels)];
  }
  async tunnelPorts() {
    return new Map(Object.entries(this.tunnels));
  }
  async ensureTlvMap(m: readonly TlvMapping[]) {
    this.tlv = [...m];
  }
}

const directory: NfDirectory = {
  lookup: async (nf): Promise<NfRecord | undefined> =>
    ({
      'default/gen': { name: nf, interfaces: { net1: 'gen1' } },
      'default/fw': { name: nf, interfaces: { net1: 'fw1', net2: 'fw2' } },
      'default/rtr': { name: nf, interfaces: { net1: 'rtr1', net2: 'rtr2' } },
      'default/sink': { name: nf, interfaces: { net1: 'sink1' } },
    })[nf],
};

const spec = crossSpec('default');

function setup(tunnels = true) {
  const a = new MemoryNode('a', ['gen1', 'fw1', 'fw2', 'sink1'], tunnels ? { b: 'gnv-ab' } : {});
  const b = new MemoryNode('b', ['rtr1', 'rtr2'], tunnels ? { a: 'gnv-ba' } : {});
  const sw = new TunnelSwitches(() => [a, b]);
  const controller = dropController(sw, directory);
  return { a, b, sw, controller };
}

describe('TunnelSwitches', () => {
  it('lets the controller create a chain across nodes: each node gets its steps, the TLV map, tunnels both ways', async () => {
    const { a, b, controller } = setup();
    await controller.start();
    const chain = await controller.create('cross', spec);
    expect(chain.status?.phase).toBe('ACTIVE');
    expect(a.tlv).toHaveLength(1);
    expect(b.tlv).toHaveLength(1);
    const actions = (t: readonly string[]) => t.map((f) => f.replace(/^.*actions=/, ''));
    expect(actions(a.table)).toEqual([
      'output:fw1',
      expect.stringMatching(/->tun_metadata0,output:gnv-ab$/),
      'output:sink1',
      'drop',
    ]);
    expect(actions(b.table)).toEqual([
      'output:rtr1',
      expect.stringMatching(/->tun_metadata0,output:gnv-ba$/),
      'drop',
    ]);
  });

  it("reports each crossing in the chain's status: from → to, step, tunnel port, packets received there", async () => {
    const { a, b, sw, controller } = setup();
    const [cross, local] = await countedCrossAndLocal(controller, spec, 'default', () => {
      [a.packets, b.packets] = [5, 3];
    });
    expect((await sw.flowStats()).map((f) => f.node)).toEqual([
      ...a.table.map(() => 'a'),
      ...b.table.map(() => 'b'),
    ]);
    expect(cross?.status?.crossings).toEqual([
      {
        step: 1,
        fromNode: 'a',
        toNode: 'b',
        tunnelPort: 'gnv-ab',
        packets: '3',
        reverse: false,
        oversizeDrops: '0',
      },
      {
        step: 2,
        fromNode: 'b',
        toNode: 'a',
        tunnelPort: 'gnv-ba',
        packets: '5',
        reverse: false,
        oversizeDrops: '0',
      },
    ]);
    // Hops count their sending steps (both on a), never the receiving flow on b.
    expect(cross?.status?.hops?.map((h) => h.packets)).toEqual(['5', '5']);
    expect(local?.status?.crossings).toEqual([]);
    await controller.delete('cross');
    expect(sw.crossings('cross')).toEqual([]);
  });

  it('is what the PortResolver asked before: without nodesOf a chain spanning nodes resolves', async () => {
    const { sw } = setup();
    const resolved = await new PortResolver(sw, directory).resolve(
      'cross',
      validateChainSpec(spec),
    );
    expect(resolved.hops.map((h) => h.ingressPort)).toEqual(['fw1', 'rtr1']);
    expect(sw.nodesOfPort('rtr1')).toEqual(['b']);
  });

  it('undoes node a when node b refuses: the create fails and a has its previous table', async () => {
    const { a, b, controller } = setup();
    await controller.start();
    const before = a.table;
    b.refuse = true;
    const err = await controller.create('cross', spec).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CrossNodeApplyError);
    expect((err as CrossNodeApplyError).undone).toEqual(['a']);
    expect(a.table).toEqual(before);
    expect(await controller.list()).toEqual([]);
  });

  it('refuses a crossing with no tunnel port, changing no node', async () => {
    const { a, b, controller } = setup(false);
    await controller.start();
    const [ta, tb] = [a.table, b.table];
    await expect(controller.create('cross', spec)).rejects.toBeInstanceOf(MissingTunnelError);
    expect([a.table, b.table]).toEqual([ta, tb]);
  });
});
