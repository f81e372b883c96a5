import type { FlowStats } from '@flowline/ovs';
import type { CompileOptions, ResolvedChain } from './flows';
import type { ChainCrossing } from './node-flows';

/** One flow's counters as the switch read them, and whose bridge holds the flow. */
export interface SwitchFlowStats extends FlowStats {
  /**
   * The node whose switch the flow is on, named as the switch names its nodes (as in
   * `nodesOf` and the chains' paths); absent with one switch (OvsChainSwitch).
   */
  node?: string;
}

/**
 * A crossing's packets too long for its tunnel, as the meter its too-long flow runs counted them
 * on the sending node (src/node-flows.ts: the flow's own counter is not that count).
 */
export interface OversizeCount {
  /** The cookie of the crossing's too-long flow (TUNNEL_OVERSIZE_BIT in its step). */
  cookie: string;
  /** The node, named as SwitchFlowStats names it. */
  node?: string;
  packets: number;
}

/**
 * The switch as the chain controller drives it: one bridge's flow table, its counters and its
 * ports. Implemented by OvsChainSwitch (src/ovs-switch.ts: one local OVS) and NodeSwitches
 * (src/node-switches.ts: a switch per node).
 */
export interface ChainSwitch {
  /** Makes the bridge's flow table exactly `flows`, atomically (one bundle). */
  apply(flows: string[]): Promise<void>;
  /** Every flow's counters, each with its node when the switch spans several. */
  flowStats(): Promise<SwitchFlowStats[]>;
  /** Names of the ports on the bridge. */
  portNames(): Promise<Set<string>>;
  /**
   * With a switch per node: the nodes whose bridge has this port (as of the last portNames()),
   * so that a chain spanning nodes is refused naming the endpoint.
   */
  nodesOf?(port: string): string[];
  /**
   * With a switch per node: whether nodes `a` and `b` have tunnels to each other (issue 19), so
   * a chain may span them (its path: src/path.ts). Absent: a chain stays on one node.
   */
  joined?(a: string, b: string): boolean;
  /**
   * Switches that compile the chains themselves (src/tunnel-switches.ts: node switches joined
   * by tunnels, each node's table from the chains' paths). When present the controller hands
   * it the chains instead of one compiled table.
   */
  applyChains?(chains: readonly ResolvedChain[], options: CompileOptions): Promise<void>;
  /**
   * With applyChains: where the chain crosses between nodes as last programmed (its path's
   * tunnels, src/path.ts, both directions, in chain order), each with the sending node's
   * tunnel port. Empty for a chain on one node or not programmed. Absent: no chain crosses.
   */
  crossings?(chain: string): readonly ChainCrossing[];
  /**
   * With applyChains and a known underlay MTU: each crossing's packets too long for its tunnel
   * (the meters of the too-long flows), on the nodes that answer. Absent: nothing is checked.
   */
  oversizeCounts?(): Promise<OversizeCount[]>;
  /**
   * With a switch per node: why the node this port is on is lost (its switch stopped
   * answering), if it is. The controller counts a hop on a lost node as down (issue 19).
   */
  portLost?(port: string): string | undefined;
  /**
   * With a switch per node: calls back when a node is found lost and when it answers again;
   * returns the unsubscribe.
   */
  watchNodes?(listener: (node: string, up: boolean) => void): () => void;
}
