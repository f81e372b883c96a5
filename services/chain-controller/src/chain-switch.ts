import type { FlowStats } from '@flowline/ovs';
import type { CompileOptions, ResolvedChain } from './flows';

/**
 * The switch as the chain controller drives it: one bridge's flow table, its counters and its
 * ports. Implemented by OvsChainSwitch (src/ovs-switch.ts: one local OVS) and NodeSwitches
 * (src/node-switches.ts: a switch per node).
 */
export interface ChainSwitch {
  /** Makes the bridge's flow table exactly `flows`, atomically (one bundle). */
  apply(flows: string[]): Promise<void>;
  flowStats(): Promise<FlowStats[]>;
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
}
