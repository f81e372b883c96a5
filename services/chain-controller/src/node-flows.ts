import { tunnelKeyActions, tunnelKeyMatch } from '@flowline/ovs';
import {
  type CompileOptions,
  type ResolvedChain,
  chainKey,
  classifierMatches,
  cookieOf,
} from './flows';
import { computePath, type NodesOf, type SegmentStep, type TunnelHop } from './path';

/**
 * Each node's flow table for a set of chains that may span nodes (issue 19): every chain's path
 * (src/path.ts), its steps on each node as flows. A step whose input is a port matches the
 * classifier there, as compileFlows does (one flow per classifier match); a step whose input
 * is a tunnel matches the tunnel port from the sending node and the key. Cookies: a sending or
 * local step has the step's cookie (so a hop's counter is still that one flow's, in
 * chain-status.ts); a receiving step has the same with TUNNEL_RECEIVE_BIT in the step, so it
 * is never counted as the hop again and reads as the crossing's counter. A chain on one node
 * gives exactly compileFlows's flows there.
 */

/** No tunnel port from one node to another: the chain cannot cross there. */
export class MissingTunnelError extends Error {
  override readonly name = 'MissingTunnelError';
  constructor(
    readonly from: string,
    readonly to: string,
  ) {
    super(`node ${from}'s switch has no tunnel port to node ${to}; set up the tunnel first`);
  }
}

/** Set in the step of a cookie (its low half) on flows that receive a crossing. */
export const TUNNEL_RECEIVE_BIT = 0x4000;

export interface NodeCompileOptions extends CompileOptions {
  /** The tunnel port on `from`'s bridge that leads to `to`. */
  tunnelPort(from: string, to: string): string;
}

/** The tunnel port on `from`'s bridge that leads to `to`, if there is one. */
export type TunnelPortOf = (from: string, to: string) => string | undefined;

/** NodeCompileOptions.tunnelPort from a lookup: MissingTunnelError where there is no port. */
export function requireTunnelPort(lookup: TunnelPortOf): NodeCompileOptions['tunnelPort'] {
  return (from, to) => {
    const port = lookup(from, to);
    if (!port) throw new MissingTunnelError(from, to);
    return port;
  };
}

/** A crossing of a chain's path (TunnelHop) and the sending node's tunnel port ('' if none). */
export interface ChainCrossing extends TunnelHop {
  tunnelPort: string;
}

/**
 * Each chain's crossings, by chain name: its path's tunnels (src/path.ts computePath, the same
 * path compileNodeFlows programs), in chain order. A chain on one node has none.
 */
export function chainCrossings(
  chains: readonly ResolvedChain[],
  nodesOf: NodesOf,
  tunnelPortOf: TunnelPortOf,
): Map<string, ChainCrossing[]> {
  return new Map(
    chains.map((chain) => [
      chain.name,
      computePath(chain, nodesOf).tunnels.map((t) => ({
        ...t,
        tunnelPort: tunnelPortOf(t.from, t.to) ?? '',
      })),
    ]),
  );
}

function actionsOf(node: string, s: SegmentStep, options: NodeCompileOptions): string {
  switch (s.output.kind) {
    case 'drop':
      return 'drop';
    case 'port':
      return `output:${s.output.port}`;
    case 'tunnel':
      return tunnelKeyActions(s.output.key, options.tunnelPort(node, s.output.to));
  }
}

/**
 * The whole table of each node in `nodes` (the chains' flows there, then the default flow), to
 * be applied as one bundle per node; chains sorted by name, as compileFlows.
 */
export function compileNodeFlows(
  chains: readonly ResolvedChain[],
  nodesOf: NodesOf,
  nodes: readonly string[],
  options: NodeCompileOptions,
): Map<string, string[]> {
  const out = new Map<string, string[]>([...nodes].sort().map((n) => [n, []]));
  for (const chain of [...chains].sort((a, b) => a.name.localeCompare(b.name))) {
    const path = computePath(chain, nodesOf);
    const key = chainKey(chain.name);
    const priority = 10_000 + chain.spec.priority;
    for (const [node, segment] of path.segments) {
      const flows = out.get(node);
      if (!flows) continue; // a node not being programmed now (unreachable): its ports are unknown
      for (const s of segment) {
        const actions = actionsOf(node, s, options);
        if (s.input.kind === 'tunnel') {
          const cookie = cookieOf({
            chainKey: key,
            reverse: s.reverse,
            step: s.step | TUNNEL_RECEIVE_BIT,
          });
          flows.push(
            `cookie=${cookie},priority=${priority},in_port=${options.tunnelPort(node, s.input.from)},${tunnelKeyMatch(s.input.key)},actions=${actions}`,
          );
          continue;
        }
        const cookie = cookieOf({ chainKey: key, reverse: s.reverse, step: s.step });
        for (const m of classifierMatches(chain.spec.classifier, s.reverse))
          flows.push(
            `cookie=${cookie},priority=${priority},in_port=${s.input.port}${m ? `,${m}` : ''},actions=${actions}`,
          );
      }
    }
  }
  const defaultFlow = `priority=0,actions=${options.defaultAction === 'normal' ? 'NORMAL' : 'drop'}`;
  for (const flows of out.values()) flows.push(defaultFlow);
  return out;
}
