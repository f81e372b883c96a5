import {
  CHAIN_OPTION,
  listTunnelPeers,
  type FlowStats,
  type OpenFlow,
  type SwitchHandle,
  type TlvMapping,
} from '@flowline/ovs';
import type { Logger } from '@flowline/telemetry';
import type { ChainSwitch, SwitchFlowStats } from './chain-switch';
import { applyAcrossNodes } from './cross-node-apply';
import type { CompileOptions, ResolvedChain } from './flows';
import {
  type ChainCrossing,
  MissingTunnelError,
  chainCrossings,
  compileNodeFlows,
  requireTunnelPort,
} from './node-flows';

export { MissingTunnelError };
import { flowPorts } from './node-switches';

/** One node's chain bridge as TunnelSwitches drives it. */
export interface TunnelNode {
  name: string;
  apply(flows: readonly string[]): Promise<void>;
  flowStats(): Promise<FlowStats[]>;
  /** Names of the ports on its chain bridge. */
  portNames(): Promise<string[]>;
  /** Its tunnel port to each peer node (by node name), e.g. from @flowline/ovs listTunnelPeers. */
  tunnelPorts(): Promise<Map<string, string>>;
  /** Adds OVS TLV mappings the bridge lacks (OpenFlow.ensureTlvMap). */
  ensureTlvMap(mappings: readonly TlvMapping[]): Promise<void>;
}

/**
 * A node's OVS as a TunnelNode: ports over OVSDB, flows and the TLV map over OpenFlow, its
 * tunnel ports as @flowline/ovs addTunnelPeer made them (`peerNode` names the node of each
 * peer's underlay address; a tunnel to an address of no known node is left out).
 */
export function ovsTunnelNode(
  name: string,
  sw: Pick<SwitchHandle, 'vswitch' | 'bridge'>,
  openflow: Pick<OpenFlow, 'applyFlows' | 'dumpFlows' | 'ensureTlvMap'>,
  peerNode: (underlayAddress: string) => string | undefined,
): TunnelNode {
  return {
    name,
    apply: (flows) => openflow.applyFlows(flows, 'replace'),
    flowStats: () => openflow.dumpFlows(),
    portNames: async () => (await sw.vswitch.listPorts(sw.bridge)).map((p) => p.name),
    tunnelPorts: async () => {
      const out = new Map<string, string>();
      for (const [address, port] of await listTunnelPeers(sw)) {
        const node = peerNode(address);
        if (node) out.set(node, port);
      }
      return out;
    },
    ensureTlvMap: (m) => openflow.ensureTlvMap(m),
  };
}

/**
 * Node switches joined by tunnels (issue 19): a chain's hops and endpoints may sit on different
 * nodes. Each change computes every node's table from the chains (src/node-flows.ts: each
 * chain's path, crossings keyed by chain and step), makes sure each bridge has the chain key's
 * TLV map, and applies the tables across the nodes as one change (src/cross-node-apply.ts: a
 * failure on a node undoes the nodes already changed). It does not expose `nodesOf`, so the
 * PortResolver no longer refuses a chain spanning nodes: where a port is, is this class's job.
 * Flow stats carry their node's name; each chain's crossings are those of the paths last
 * applied (`crossings`), for the chain status.
 */
export class TunnelSwitches implements ChainSwitch {
  private portNodes = new Map<string, string[]>();
  /** Each node's table as last applied: what an undo gives back. */
  private readonly applied = new Map<string, readonly string[]>();
  /** Each chain's crossings as last applied. */
  private crossed = new Map<string, ChainCrossing[]>();

  constructor(
    private readonly nodes: () => readonly TunnelNode[],
    private readonly log?: Logger,
  ) {}

  async portNames(): Promise<Set<string>> {
    const portNodes = new Map<string, string[]>();
    for (const node of this.nodes())
      for (const p of await node.portNames())
        portNodes.set(p, [...(portNodes.get(p) ?? []), node.name]);
    this.portNodes = portNodes;
    return new Set(portNodes.keys());
  }

  /** The nodes whose bridge has `port`, as of the last portNames(). */
  nodesOfPort(port: string): string[] {
    return this.portNodes.get(port) ?? [];
  }

  /** Flows as they are (no chain): each to the nodes having every port it names. */
  async apply(flows: string[]): Promise<void> {
    for (const node of this.nodes()) {
      const share = flows.filter((f) =>
        flowPorts(f).every((p) => this.nodesOfPort(p).includes(node.name)),
      );
      await node.apply(share);
      this.applied.set(node.name, share);
    }
    this.crossed = new Map();
  }

  crossings(chain: string): readonly ChainCrossing[] {
    return this.crossed.get(chain) ?? [];
  }

  async applyChains(chains: readonly ResolvedChain[], options: CompileOptions): Promise<void> {
    const nodes = [...this.nodes()];
    await this.portNames();
    const tunnels = new Map<string, Map<string, string>>();
    for (const node of nodes) tunnels.set(node.name, await node.tunnelPorts());
    const tunnelPortOf = (from: string, to: string): string | undefined =>
      tunnels.get(from)?.get(to);
    const nodesOf = (p: string): string[] => this.nodesOfPort(p);
    const tables = compileNodeFlows(
      chains,
      nodesOf,
      nodes.map((n) => n.name),
      { ...options, tunnelPort: requireTunnelPort(tunnelPortOf) },
    );
    const byName = new Map(nodes.map((n) => [n.name, n]));
    const defaultOnly = [
      `priority=0,actions=${options.defaultAction === 'normal' ? 'NORMAL' : 'drop'}`,
    ];
    await applyAcrossNodes(
      [...tables].map(([node, next]) => ({
        node,
        next,
        previous: this.applied.get(node) ?? defaultOnly,
      })),
      async (node, flows) => {
        const target = byName.get(node);
        if (!target) throw new Error(`node ${node} is not among the switches`);
        if (flows.some((f) => f.includes('tun_metadata')))
          await target.ensureTlvMap([CHAIN_OPTION]);
        await target.apply(flows);
        this.applied.set(node, flows);
      },
      this.log,
    );
    this.crossed = chainCrossings(chains, nodesOf, tunnelPortOf);
  }

  async flowStats(): Promise<SwitchFlowStats[]> {
    const out: SwitchFlowStats[] = [];
    for (const node of this.nodes())
      for (const f of await node.flowStats()) out.push({ ...f, node: node.name });
    return out;
  }
}
