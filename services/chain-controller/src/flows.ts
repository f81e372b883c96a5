import { formatAddress } from '@flowline/packet';
import { type ValidChainSpec, type ValidClassifier, portRangeMasks } from './spec';

/** A chain ready to compile: its spec with every endpoint resolved to an OVS port. */
export interface ResolvedChain {
  name: string;
  spec: ValidChainSpec;
  ingressPort: string;
  egressPort: string;
  hops: { nf: string; ingressPort: string; egressPort: string; healthy: boolean }[];
}

export interface CompileOptions {
  /** What happens to traffic no chain claims: NORMAL L2 switching (default) or drop. */
  defaultAction: 'normal' | 'drop';
}

/** Where one flow sits in a chain, decoded from its cookie. */
export interface FlowOrigin {
  chainKey: number;
  reverse: boolean;
  /** 0: the classifier flow into the first hop; k: out of hop k-1 (1-based hops). */
  step: number;
}

const PRIORITY_BASE = 10_000;

/** 32-bit FNV-1a of the chain name: the high half of every cookie of the chain. */
export function chainKey(name: string): number {
  let h = 0x811c9dc5;
  for (const ch of Buffer.from(name)) {
    h ^= ch;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

export function cookieOf(origin: FlowOrigin): string {
  const low = ((origin.reverse ? 0x8000 : 0) | origin.step) >>> 0;
  return `0x${origin.chainKey.toString(16).padStart(8, '0')}${low.toString(16).padStart(8, '0')}`;
}

export function originOf(cookie: string): FlowOrigin | undefined {
  const hex = cookie.replace(/^0x/, '').padStart(16, '0');
  if (!/^[0-9a-f]{16}$/i.test(hex)) return undefined;
  const low = parseInt(hex.slice(8), 16);
  return {
    chainKey: parseInt(hex.slice(0, 8), 16),
    reverse: (low & 0x8000) !== 0,
    step: low & 0x7fff,
  };
}

function protoKeyword(family: 4 | 6, protocol: number | undefined): string {
  const names: Record<number, [string, string]> = {
    6: ['tcp', 'tcp6'],
    17: ['udp', 'udp6'],
    132: ['sctp', 'sctp6'],
    1: ['icmp', ''],
    58: ['', 'icmp6'],
  };
  const named = protocol !== undefined ? names[protocol]?.[family === 4 ? 0 : 1] : undefined;
  if (named) return named;
  const base = family === 4 ? 'ip' : 'ipv6';
  return protocol === undefined ? base : `${base},nw_proto=${protocol}`;
}

/** The match parts of a classifier, one list per flow (families × port masks). */
export function classifierMatches(c: ValidClassifier, reverse: boolean): string[] {
  if (c.families.length === 0) return ['']; // everything on the port, ARP included
  const src = reverse ? c.dst : c.src;
  const dst = reverse ? c.src : c.dst;
  const srcPorts = reverse ? c.dstPorts : c.srcPorts;
  const dstPorts = reverse ? c.srcPorts : c.dstPorts;
  const masks = (r: [number, number] | undefined, field: string): string[] =>
    !r || (r[0] === 0 && r[1] === 65535)
      ? ['']
      : portRangeMasks(r[0], r[1]).map(({ value, mask }) =>
          mask === 0xffff
            ? `,${field}=${value}`
            : `,${field}=0x${value.toString(16)}/0x${mask.toString(16)}`,
        );
  const out: string[] = [];
  for (const family of c.families) {
    const [srcField, dstField] = family === 4 ? ['nw_src', 'nw_dst'] : ['ipv6_src', 'ipv6_dst'];
    let m = protoKeyword(family, c.protocol);
    if (src) m += `,${srcField}=${formatAddress(src.bytes, family)}/${src.length}`;
    if (dst) m += `,${dstField}=${formatAddress(dst.bytes, family)}/${dst.length}`;
    for (const s of masks(srcPorts, 'tp_src'))
      for (const d of masks(dstPorts, 'tp_dst')) out.push(m + s + d);
  }
  return out;
}

/**
 * One direction of a chain as steps: where traffic comes in, and where each step sends it.
 * Step 0 takes the classified traffic from the ingress port; step k takes it from hop k's
 * egress. A dead hop is skipped (bypass) or its incoming step drops (fail-closed). Exported for
 * path computation across nodes (src/path.ts), which places these same steps on node switches.
 */
export function steps(
  chain: ResolvedChain,
  reverse: boolean,
): { step: number; inPort: string; out: string | 'drop' }[] {
  const hops = reverse
    ? [...chain.hops]
        .reverse()
        .map((h) => ({ ...h, ingressPort: h.egressPort, egressPort: h.ingressPort }))
    : chain.hops;
  const from = reverse ? chain.egressPort : chain.ingressPort;
  const to = reverse ? chain.ingressPort : chain.egressPort;
  const targets = hops.map((h) =>
    h.healthy ? h.ingressPort : chain.spec.failurePolicy === 'bypass' ? 'skip' : 'drop',
  );
  const nextFrom = (i: number): string | 'drop' => {
    for (let j = i; j < hops.length; j++) {
      if (targets[j] === 'skip') continue;
      return targets[j]!;
    }
    return to;
  };
  const out: { step: number; inPort: string; out: string | 'drop' }[] = [
    { step: 0, inPort: from, out: nextFrom(0) },
  ];
  hops.forEach((h, i) => {
    if (targets[i] === 'skip' || targets[i] === 'drop') return; // nothing comes out of a dead hop
    out.push({ step: i + 1, inPort: h.egressPort, out: nextFrom(i + 1) });
  });
  return out;
}

/**
 * The complete flow table of the bridge for a set of chains, in ovs-ofctl syntax, to be applied
 * as one replace-flows bundle: every chain's steps in both directions when bidirectional, each
 * flow with a cookie naming its chain, direction and step, and the default flow last.
 */
export function compileFlows(
  chains: readonly ResolvedChain[],
  options: CompileOptions = { defaultAction: 'normal' },
): string[] {
  const flows: string[] = [];
  for (const chain of [...chains].sort((a, b) => a.name.localeCompare(b.name))) {
    const key = chainKey(chain.name);
    for (const reverse of chain.spec.bidirectional ? [false, true] : [false]) {
      const matches = classifierMatches(chain.spec.classifier, reverse);
      for (const s of steps(chain, reverse)) {
        const priority = PRIORITY_BASE + chain.spec.priority;
        const cookie = cookieOf({ chainKey: key, reverse, step: s.step });
        const actions = s.out === 'drop' ? 'drop' : `output:${s.out}`;
        for (const m of matches) {
          flows.push(
            `cookie=${cookie},priority=${priority},in_port=${s.inPort}${m ? `,${m}` : ''},actions=${actions}`,
          );
        }
      }
    }
  }
  flows.push(`priority=0,actions=${options.defaultAction === 'normal' ? 'NORMAL' : 'drop'}`);
  return flows;
}
