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
 * is never counted as the hop again and reads as the crossing's counter. With a frame limit, a
 * step into a tunnel checks each packet's length (check_pkt_larger) and continues in
 * TUNNEL_CHECK_TABLE, where two flows per step carry TUNNEL_OVERSIZE_BIT (too long: run the
 * crossing's own meter, then drop) and TUNNEL_SEND_BIT (into the tunnel). Neither flow's
 * counter means anything: OVS makes one datapath action of check_pkt_larger holding both
 * branches and credits the flows of both with every packet. The meter runs only in the branch
 * taken, so its count is the crossing's oversize drops (measured: 200 packets that fit and 50
 * too long, both flows 250, the meter 50). A chain on one node gives exactly compileFlows's
 * flows there.
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
/**
 * Set in the step of a cookie on the flow dropping a crossing's packets too long for the tunnel
 * through the crossing's meter (its count; the flow's own counter is not it, see above).
 */
export const TUNNEL_OVERSIZE_BIT = 0x2000;
/** Set in the step of a cookie on the flow sending a length-checked crossing into the tunnel (never counted). */
export const TUNNEL_SEND_BIT = 0x1000;
/** The table a length-checked crossing continues in (table 0 holds every chain's steps). */
export const TUNNEL_CHECK_TABLE = 1;

export interface NodeCompileOptions extends CompileOptions {
  /** The tunnel port on `from`'s bridge that leads to `to`. */
  tunnelPort(from: string, to: string): string;
  /**
   * The longest frame (Ethernet header included, as OVS's check_pkt_larger measures it) the
   * tunnel from `from` to `to` carries within the underlay MTU; undefined: not checked (the
   * underlay port drops what does not fit, counted per interface only).
   */
  tunnelFrameLimit?(from: string, to: string): number | undefined;
  /**
   * The id of the meter on `node` counting the too-long packets of the crossing whose check
   * flow has `cookie` (TUNNEL_OVERSIZE_BIT set): the caller allocates one per crossing and
   * node, and installs it before the flows. Required with tunnelFrameLimit.
   */
  oversizeMeter?(node: string, cookie: string): number;
}

/**
 * Geneve's overhead on the underlay's IP packet (the outer Ethernet header is not in the MTU):
 * outer IP header, UDP 8, Geneve 8, the chain option 8 (packages/ovs CHAIN_OPTION: 4 bytes of
 * option header, 4 of data).
 */
export function geneveOverhead(underlayFamily: 4 | 6): number {
  return (underlayFamily === 4 ? 20 : 40) + 8 + 8 + 8;
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
        let actions = actionsOf(node, s, options);
        const limit =
          s.output.kind === 'tunnel' ? options.tunnelFrameLimit?.(node, s.output.to) : undefined;
        if (limit !== undefined) {
          // The step's own flow (the hop's counter) checks the length and goes on in the check
          // table, where its too-long packets run the crossing's meter (its oversize counter)
          // and are dropped, and the rest enter the tunnel.
          const step = s.step | (s.input.kind === 'tunnel' ? TUNNEL_RECEIVE_BIT : 0);
          const here = cookieOf({ chainKey: key, reverse: s.reverse, step });
          const mark = (bit: number) =>
            cookieOf({ chainKey: key, reverse: s.reverse, step: s.step | bit });
          const oversize = mark(TUNNEL_OVERSIZE_BIT);
          if (!options.oversizeMeter)
            throw new Error('compileNodeFlows: a tunnel frame limit needs oversizeMeter');
          const meter = options.oversizeMeter(node, oversize);
          flows.push(
            `table=${TUNNEL_CHECK_TABLE},cookie=${oversize},priority=2,metadata=${here},reg0=0x1/0x1,actions=meter:${meter}`,
            `table=${TUNNEL_CHECK_TABLE},cookie=${mark(TUNNEL_SEND_BIT)},priority=1,metadata=${here},actions=${actions}`,
          );
          actions = `check_pkt_larger(${limit})->NXM_NX_REG0[0],write_metadata:${here},goto_table:${TUNNEL_CHECK_TABLE}`;
        }
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
