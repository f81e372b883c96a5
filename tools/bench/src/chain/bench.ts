/**
 * The chain benchmark around the search: NDR/PDR (search.ts), then latency at fixed fractions
 * of the PDR, the chain's per-hop counters and drops by reason, and the CPU of the idle chain.
 * What it drives is a ChainTarget: `flowline bench chain` (tools/cli) gives it the local
 * node's chain and traffic-gen; tests give it a simulation.
 */
import { must } from '../must';

import { type IdleCost, type ProcessRef, measureIdleCost } from './idle';
import { type SearchOptions, type SearchResult, type TrialOutcome, searchNdrPdr } from './search';
import { type CpuStalls, measureCpuStalls } from './stalls';

export interface LatencyUs {
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/** What a trial on a real chain reports in TrialOutcome.extra. */
export interface ChainTrialExtra {
  latencyUs?: LatencyUs;
  flows?: { name: string; sent: number; received: number; lost: number }[];
  /** Seconds the generator took to send the trial's packets (the offered duration if on time). */
  txSeconds?: number;
}

export interface HopCounters {
  hop: string;
  packets: number;
  dropped: number;
}

export interface ChainCounters {
  hops: HopCounters[];
  /** Drops by "<where>: <reason>". */
  drops: Record<string, number>;
}

export interface ChainTarget {
  name: string;
  trial(offeredPps: number, durationS: number): Promise<TrialOutcome>;
  counters(): Promise<ChainCounters>;
  processes(): ProcessRef[];
}

export interface ChainBenchOptions {
  search: SearchOptions;
  /** Fractions of the PDR at which latency is measured; default 0.1, 0.5, 0.9. */
  latencyFractions?: readonly number[];
  /** Duration of each latency trial; default the search's final duration. */
  latencyDurationS?: number;
  /** Seconds of the idle-cost window; 0 skips it. Default 5. */
  idleSeconds?: number;
  /**
   * Seconds of the stall probe (a thread spinning on every CPU, after the idle window: what
   * the machine itself takes from a packet's path); 0 skips it. Default 0.
   */
  stallSeconds?: number;
  log?: (line: string) => void;
}

export interface LatencyPoint {
  fraction: number;
  offeredPps: number;
  sent: number;
  lost: number;
  lossRatio: number;
  latencyUs?: LatencyUs;
}

export interface ChainBenchResult {
  chain: string;
  at: string;
  search: SearchResult;
  latency: LatencyPoint[];
  counters: ChainCounters;
  idle?: IdleCost;
  stalls?: CpuStalls[];
}

export async function runChainBench(
  target: ChainTarget,
  opts: ChainBenchOptions,
): Promise<ChainBenchResult> {
  const log = opts.log ?? ((): void => undefined);
  let idle: IdleCost | undefined;
  const idleSeconds = opts.idleSeconds ?? 5;
  if (idleSeconds > 0) {
    // First, before any traffic: every NF up, nothing sent.
    log(`idle cost: CPU of ${target.processes().length} processes over ${idleSeconds} s`);
    idle = await measureIdleCost(target.processes(), idleSeconds);
  }
  let stalls: CpuStalls[] | undefined;
  const stallSeconds = opts.stallSeconds ?? 0;
  if (stallSeconds > 0) {
    log(`stall probe: a thread spinning on every CPU for ${stallSeconds} s`);
    stalls = await measureCpuStalls(stallSeconds);
  }
  const search = await searchNdrPdr(target.trial.bind(target), {
    ...opts.search,
    onTrial: (t) => {
      log(
        `trial ${(t.offeredPps / 1e6).toFixed(3)} Mpps × ${t.durationS} s: sent ${t.sent}, lost ${t.lost} (${(t.lossRatio * 100).toFixed(3)} %)`,
      );
      opts.search.onTrial?.(t);
    },
  });
  // searchNdrPdr has checked that there is at least one duration
  const final = must(opts.search.durationsS.at(-1), 'trial duration');
  const latency: LatencyPoint[] = [];
  for (const fraction of opts.latencyFractions ?? [0.1, 0.5, 0.9]) {
    if (search.pdr.lowerPps <= 0) break;
    const offeredPps = Math.round(search.pdr.lowerPps * fraction);
    const out = await target.trial(offeredPps, opts.latencyDurationS ?? final);
    const extra = (out.extra ?? {}) as ChainTrialExtra;
    latency.push({
      fraction,
      offeredPps,
      sent: out.sent,
      lost: out.lost,
      lossRatio: out.sent > 0 ? out.lost / out.sent : 0,
      ...(extra.latencyUs ? { latencyUs: extra.latencyUs } : {}),
    });
    log(
      `latency at ${fraction * 100} % of PDR (${(offeredPps / 1e6).toFixed(3)} Mpps): ${extra.latencyUs ? `p50 ${extra.latencyUs.p50.toFixed(1)} µs, p90 ${extra.latencyUs.p90.toFixed(1)} µs, p99 ${extra.latencyUs.p99.toFixed(1)} µs` : 'no samples'}`,
    );
  }
  const counters = await target.counters();
  return {
    chain: target.name,
    at: new Date().toISOString(),
    search,
    latency,
    counters,
    ...(idle ? { idle } : {}),
    ...(stalls ? { stalls } : {}),
  };
}
