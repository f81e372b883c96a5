import type { ChainSwitch } from './chain-switch';
import type { NfDirectory } from './directory';
import { UnresolvedPortError } from './errors';
import type { ResolvedChain } from './flows';
import { type Endpoint, type ValidChainSpec, endpointText } from './spec';

/**
 * Resolves a chain's endpoints to OVS ports on the bridge: a raw port must be on it; an NF's
 * interface is the port the directory has for it (contract 5, docs/architecture.md#chaining),
 * which must be on it too. With a switch per node every endpoint must be on one node's bridge.
 * A failure is an UnresolvedPortError naming the spec's field.
 */
export class PortResolver {
  constructor(
    private readonly sw: Pick<ChainSwitch, 'portNames' | 'nodesOf' | 'joined'>,
    private readonly directory: NfDirectory,
  ) {}

  async resolve(name: string, spec: ValidChainSpec): Promise<ResolvedChain> {
    const ports = await this.sw.portNames();
    const port = async (e: Endpoint, field: string): Promise<string> => {
      if (e.kind === 'port') {
        if (!ports.has(e.port))
          throw new UnresolvedPortError(field, `OVS port "${e.port}" is not on the bridge`);
        return e.port;
      }
      const record = await this.directory.lookup(e.nf);
      const ovsPort = record?.interfaces[e.iface];
      if (!ovsPort) {
        throw new UnresolvedPortError(
          field,
          `NF "${e.nf}" has no interface ${e.iface} on the switch (is its pod running and wired by the CNI plugin?)`,
        );
      }
      if (!ports.has(ovsPort))
        throw new UnresolvedPortError(
          field,
          `${endpointText(e)} is OVS port "${ovsPort}", which is not on the bridge`,
        );
      return ovsPort;
    };
    const ingressPort = await port(spec.classifier.ingress, 'spec.classifier.ingress_port');
    const hops: ResolvedChain['hops'] = [];
    for (const [i, h] of spec.hops.entries()) {
      hops.push({
        nf: h.nf,
        ingressPort: await port(
          { kind: 'nf', nf: h.nf, iface: h.ingress },
          `spec.hops[${i}].ingress_interface`,
        ),
        egressPort: await port(
          { kind: 'nf', nf: h.nf, iface: h.egress },
          `spec.hops[${i}].egress_interface`,
        ),
        healthy: true,
      });
    }
    const egressPort = await port(spec.egress, 'spec.egress_port');
    this.checkOneNode([
      ['spec.classifier.ingress_port', ingressPort],
      ...hops.flatMap((h, i): [string, string][] => [
        [`spec.hops[${i}].ingress_interface`, h.ingressPort],
        [`spec.hops[${i}].egress_interface`, h.egressPort],
      ]),
      ['spec.egress_port', egressPort],
    ]);
    return { name, spec, ingressPort, egressPort, hops };
  }

  /**
   * With a switch per node, every endpoint of a chain must be on one node's bridge, unless each
   * is on exactly one node and those nodes are all joined by tunnels (ChainSwitch.joined).
   */
  private checkOneNode(endpoints: [field: string, port: string][]): void {
    const nodesOf = this.sw.nodesOf?.bind(this.sw);
    if (!nodesOf) return;
    const joined = this.sw.joined?.bind(this.sw);
    if (joined) {
      const placed = endpoints.map(([, p]) => nodesOf(p));
      const used = [...new Set(placed.flat())];
      if (
        used.length > 1 &&
        placed.every((n) => n.length === 1) &&
        used.every((a) => used.every((b) => a === b || joined(a, b)))
      )
        return;
    }
    let common: string[] | undefined;
    let anchor: [string, string] | undefined;
    for (const [field, p] of endpoints) {
      const nodes = nodesOf(p);
      const next = common ? common.filter((n) => nodes.includes(n)) : nodes;
      if (next.length === 0 && anchor)
        throw new UnresolvedPortError(
          field,
          `OVS port "${p}" is on node ${nodes.join(', ')}, but ${anchor[0]} ("${anchor[1]}") is on ${common!.join(', ')}; a chain is steered within one node's switch: run its NFs and endpoints on one node (e.g. with pod affinity)`,
        );
      common = next;
      anchor ??= [field, p];
    }
  }
}

/** Whether two resolutions of a chain use the same OVS ports, endpoint by endpoint. */
export function samePorts(a: ResolvedChain, b: ResolvedChain): boolean {
  const ports = (c: ResolvedChain) => [
    c.ingressPort,
    c.egressPort,
    ...c.hops.flatMap((h) => [h.ingressPort, h.egressPort]),
  ];
  return ports(a).join('\n') === ports(b).join('\n');
}
