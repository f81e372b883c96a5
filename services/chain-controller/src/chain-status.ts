import type { chainV1 } from '@flowline/proto';
import type { ChainPhase, ChainState } from './chain-state';
import type { OversizeCount, SwitchFlowStats } from './chain-switch';
import { chainKey, originOf } from './flows';
import type { HopState } from './hop-health';
import {
  type ChainCrossing,
  TUNNEL_OVERSIZE_BIT,
  TUNNEL_RECEIVE_BIT,
  TUNNEL_SEND_BIT,
} from './node-flows';
import type { ValidChainSpec } from './spec';

/** The last health recorded for an NF (HopHealth.of), if any. */
export type HealthOf = (nf: string) => HopState | undefined;

/** The phase and message of a programmed chain, from its hops' health and failure policy. */
export function phaseOf(
  spec: ValidChainSpec,
  health: HealthOf,
): { phase: ChainPhase; message: string } {
  const down = spec.hops.filter((h) => health(h.nf)?.healthy === false);
  const phase: ChainPhase = down.length === 0 ? 'ACTIVE' : 'DEGRADED';
  const message =
    down.length === 0
      ? 'programmed; every hop healthy'
      : `${down.map((h) => h.nf).join(', ')} down: ${spec.failurePolicy === 'bypass' ? 'bypassed' : 'traffic dropped (fail-closed)'}`;
  return { phase, message };
}

/**
 * Brings a programmed chain's phase and message up to date (updatedAt moves only when they
 * change); a chain that is not programmed keeps what it has.
 */
export function refreshPhase(state: ChainState, health: HealthOf, now: () => number): void {
  if (!state.resolved) return;
  const { phase, message } = phaseOf(state.spec, health);
  if (phase !== state.phase || message !== state.message) {
    state.phase = phase;
    state.message = message;
    state.updatedAt = now();
  }
}

/** The chain as the ChainService reports it: spec as given, generation, status per hop. */
export function chainMessage(state: ChainState, health: HealthOf): chainV1.Chain {
  return {
    name: state.name,
    spec: state.raw,
    generation: String(state.generation),
    status: {
      phase: state.phase,
      message: state.message,
      updatedUnixNanos: String(BigInt(state.updatedAt) * 1_000_000n),
      hops: state.spec.hops.map((h, i) => ({
        nf: h.nf,
        healthy: health(h.nf)?.healthy ?? true,
        message: health(h.nf)?.message ?? '',
        ingressOvsPort: state.resolved?.hops[i]?.ingressPort ?? '',
        egressOvsPort: state.resolved?.hops[i]?.egressPort ?? '',
      })),
    },
  };
}

/**
 * The chain's status with packet counters from the switch's flow stats, mapped back to chain and
 * step by cookie: the classifier flow (step 0) counts the classified packets, and hop i's packets
 * are those of step i, the flow into it (on a chain across nodes, the sending step's), in the
 * forward direction. A flow receiving a crossing (TUNNEL_RECEIVE_BIT in its step) is never a
 * hop's: it counts the crossing of its direction and step, among `crossings` (the chain's path as
 * the switch programmed it, ChainSwitch.crossings), and only on the crossing's receiving node.
 * The flows checking a crossing's length (TUNNEL_OVERSIZE_BIT, TUNNEL_SEND_BIT) count nothing
 * (OVS credits both with every packet); a crossing's oversize drops are its meter's count on
 * the sending node (`oversizeCounts`, ChainSwitch.oversizeCounts). The status lists the forward
 * crossings in step order, then a bidirectional chain's reverse ones; none for a chain on one
 * node.
 */
export function withCounters(
  chain: chainV1.Chain,
  stats: readonly SwitchFlowStats[],
  crossings: readonly ChainCrossing[] = [],
  oversizeCounts: readonly OversizeCount[] = [],
): chainV1.Chain {
  const key = chainKey(chain.name ?? '');
  const byStep = new Map<number, number>();
  /** `<direction> <node> <step>` → packets of that step's receiving flows on that node. */
  const received = new Map<string, number>();
  /** The same key → packets of that step dropped as too long for the tunnel on that node. */
  const oversize = new Map<string, number>();
  const at = (reverse: boolean, node: string, step: number): string =>
    `${reverse ? 'r' : 'f'} ${node} ${step}`;
  for (const m of oversizeCounts) {
    const o = originOf(m.cookie);
    if (o?.chainKey !== key || (o.step & TUNNEL_OVERSIZE_BIT) === 0) continue;
    const where = at(o.reverse, m.node ?? '', o.step & ~TUNNEL_OVERSIZE_BIT);
    oversize.set(where, (oversize.get(where) ?? 0) + m.packets);
  }
  for (const f of stats) {
    const o = originOf(f.cookie);
    if (o?.chainKey !== key) continue;
    if ((o.step & (TUNNEL_SEND_BIT | TUNNEL_OVERSIZE_BIT)) !== 0) continue;
    if ((o.step & TUNNEL_RECEIVE_BIT) !== 0) {
      const where = at(o.reverse, f.node ?? '', o.step & ~TUNNEL_RECEIVE_BIT);
      received.set(where, (received.get(where) ?? 0) + f.nPackets);
    } else if (!o.reverse) byStep.set(o.step, (byStep.get(o.step) ?? 0) + f.nPackets);
  }
  return {
    ...chain,
    status: {
      ...chain.status,
      classifiedPackets: String(byStep.get(0) ?? 0),
      hops: (chain.status?.hops ?? []).map((h, i) => ({
        ...h,
        packets: String(byStep.get(i) ?? 0),
      })),
      crossings: [...crossings]
        .sort((a, b) => Number(a.reverse) - Number(b.reverse) || a.step - b.step)
        .map((c) => ({
          step: c.step,
          fromNode: c.from,
          toNode: c.to,
          tunnelPort: c.tunnelPort,
          packets: String(received.get(at(c.reverse, c.to, c.step)) ?? 0),
          reverse: c.reverse,
          oversizeDrops: String(oversize.get(at(c.reverse, c.from, c.step)) ?? 0),
        })),
    },
  };
}
