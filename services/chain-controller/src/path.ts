import type { TunnelKey } from '@flowline/ovs';
import { UnresolvedPortError } from './errors';
import { chainKey, steps, type ResolvedChain } from './flows';

/**
 * A chain's path over node switches (issue 19): each step of the chain (flows.ts `steps`: the
 * classified traffic from the ingress port into the first live hop, then out of each live hop
 * into the next, failure policy applied) placed on the node whose switch has the step's input
 * port. A step whose output port is on another node becomes two: on the sending node it gives
 * the packet the tunnel key (the chain's key and the step, as in the step's flow cookie) and
 * outputs into the tunnel to the other node; on the receiving node the packet that comes out
 * of the tunnel from that node with that key is output to the port. So a hop's counter is
 * still one flow's (the sending step's), and each crossing has its own (the receiving step's).
 *
 * Where a port is: `nodesOf(port)`, the nodes whose switch has a port of that name. A chain
 * whose every port is on one node stays there whole (as before tunnels: no crossing). Else
 * each port must be on exactly one node (a name several nodes have, e.g. a NIC's, is
 * ambiguous). Deterministic: nodes sorted by name, each node's steps in chain order (forward
 * steps, then reverse ones), tunnels in chain order.
 */

/** The nodes whose switch has a port of this name. */
export type NodesOf = (port: string) => readonly string[];

/** Where a step's packets come in on a node: a port, or the tunnel from a node with a key. */
export type StepInput =
  { kind: 'port'; port: string } | { kind: 'tunnel'; from: string; key: TunnelKey };

/** Where a step sends them: a port on the same node, into the tunnel to a node with a key, or drop. */
export type StepOutput =
  | { kind: 'port'; port: string }
  | { kind: 'tunnel'; to: string; key: TunnelKey }
  | { kind: 'drop' };

/** One step of the chain on one node's switch: one flow per classifier match when its input is a port. */
export interface SegmentStep {
  reverse: boolean;
  step: number;
  input: StepInput;
  output: StepOutput;
}

/** A crossing: the packets of step `step` go from node `from` to node `to` with `key`. */
export interface TunnelHop {
  reverse: boolean;
  step: number;
  from: string;
  to: string;
  key: TunnelKey;
}

export interface ChainPath {
  chain: string;
  /** The nodes the chain uses, sorted. */
  nodes: string[];
  /** Node → its steps; every node in `nodes` has an entry. */
  segments: Map<string, SegmentStep[]>;
  tunnels: TunnelHop[];
}

/** The bit of a hop key (and of a cookie's low half) marking the reverse direction. */
export const REVERSE_BIT = 0x8000;

/** The tunnel key of a chain's step: the chain key and the low half of the step's cookie. */
export function stepKey(chain: string, reverse: boolean, step: number): TunnelKey {
  return { chain: chainKey(chain), hop: (reverse ? REVERSE_BIT : 0) | step };
}

/** The spec field each of a resolved chain's ports came from, for errors. */
function portFields(chain: ResolvedChain): [field: string, port: string][] {
  return [
    ['spec.classifier.ingress_port', chain.ingressPort],
    ...chain.hops.flatMap((h, i): [string, string][] => [
      [`spec.hops[${i}].ingress_interface`, h.ingressPort],
      [`spec.hops[${i}].egress_interface`, h.egressPort],
    ]),
    ['spec.egress_port', chain.egressPort],
  ];
}

/** Which node each of the chain's ports is on; UnresolvedPortError naming the field otherwise. */
export function placePorts(chain: ResolvedChain, nodesOf: NodesOf): Map<string, string> {
  const fields = portFields(chain);
  const candidates = fields.map(([, p]) => [...nodesOf(p)].sort());
  const [first = [], ...rest] = candidates;
  const common = first.find((n) => rest.every((c) => c.includes(n)));
  const placed = new Map<string, string>();
  for (const [i, [field, port]] of fields.entries()) {
    const nodes = candidates[i] ?? [];
    if (common !== undefined) {
      placed.set(port, common);
      continue;
    }
    const [only, ...others] = nodes;
    if (only === undefined)
      throw new UnresolvedPortError(field, `OVS port "${port}" is on no node's switch`);
    if (others.length > 0)
      throw new UnresolvedPortError(
        field,
        `OVS port "${port}" is on the switches of ${nodes.join(', ')}; a chain that spans nodes needs each of its ports on one node`,
      );
    placed.set(port, only);
  }
  return placed;
}

/** The chain's path over the nodes: per-node steps and the tunnel crossings between them. */
export function computePath(chain: ResolvedChain, nodesOf: NodesOf): ChainPath {
  const nodeOf = placePorts(chain, nodesOf);
  const at = (port: string): string => nodeOf.get(port) ?? '';
  const segments = new Map<string, SegmentStep[]>();
  const tunnels: TunnelHop[] = [];
  const add = (node: string, s: SegmentStep): void => {
    segments.set(node, [...(segments.get(node) ?? []), s]);
  };
  for (const reverse of chain.spec.bidirectional ? [false, true] : [false]) {
    for (const s of steps(chain, reverse)) {
      const from = at(s.inPort);
      const input: StepInput = { kind: 'port', port: s.inPort };
      if (s.out === 'drop') {
        add(from, { reverse, step: s.step, input, output: { kind: 'drop' } });
        continue;
      }
      const to = at(s.out);
      if (to === from) {
        add(from, { reverse, step: s.step, input, output: { kind: 'port', port: s.out } });
        continue;
      }
      const key = stepKey(chain.name, reverse, s.step);
      add(from, { reverse, step: s.step, input, output: { kind: 'tunnel', to, key } });
      add(to, {
        reverse,
        step: s.step,
        input: { kind: 'tunnel', from, key },
        output: { kind: 'port', port: s.out },
      });
      tunnels.push({ reverse, step: s.step, from, to, key });
    }
  }
  // Every node the chain's ports are on takes part, even with no step there (e.g. a dead hop's).
  const nodes = [...new Set(nodeOf.values())].sort();
  return {
    chain: chain.name,
    nodes,
    segments: new Map(nodes.map((n) => [n, segments.get(n) ?? []])),
    tunnels,
  };
}
