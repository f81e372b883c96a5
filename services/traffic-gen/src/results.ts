/**
 * From the generator's raw per-flow results to flowline.trafficgen.v1.Results: totals over the
 * flows, loss ratio and average rates over the run's elapsed time. 64-bit counters go out as
 * decimal strings (the proto loader's longs: String).
 */
import type { FlowResults, TrafficResults } from '@flowline/dpdk';
import type { trafficGenV1 } from '@flowline/proto';

export type RunStateName = 'IDLE' | 'RUNNING' | 'STOPPED';

/** What the dataplane knows about the current (or last) run. */
export interface RunView {
  runId: number;
  state: RunStateName;
  elapsedMs: number;
  /** Flow names by flow index (flows only received, from another generator, have none). */
  names: readonly string[];
  results?: TrafficResults;
}

export interface Totals {
  txPackets: number;
  txBytes: number;
  rxPackets: number;
  rxBytes: number;
  lost: number;
  duplicates: number;
  reordered: number;
  expected: number;
  /** lost / expected; 0 while nothing was expected. */
  lossRatio: number;
  txPps: number;
  rxPps: number;
  /** Frame bits with FCS per second. */
  txBps: number;
  rxBps: number;
}

/** Per second over elapsedMs; 0 before any time passed. */
export function perSecond(count: number, elapsedMs: number): number {
  return elapsedMs > 0 ? (count * 1000) / elapsedMs : 0;
}

export function totalsOf(flows: readonly FlowResults[], elapsedMs: number): Totals {
  const sum = (k: keyof FlowResults) => flows.reduce((a, f) => a + (f[k] as number), 0);
  const t = {
    txPackets: sum('txPackets'),
    txBytes: sum('txBytes'),
    rxPackets: sum('rxPackets'),
    rxBytes: sum('rxBytes'),
    lost: sum('lost'),
    duplicates: sum('duplicates'),
    reordered: sum('reordered'),
    expected: sum('expected'),
  };
  return {
    ...t,
    lossRatio: t.expected > 0 ? t.lost / t.expected : 0,
    txPps: perSecond(t.txPackets, elapsedMs),
    rxPps: perSecond(t.rxPackets, elapsedMs),
    txBps: perSecond(t.txBytes * 8, elapsedMs),
    rxBps: perSecond(t.rxBytes * 8, elapsedMs),
  };
}

const u64 = (n: number): string => BigInt(Math.max(0, Math.round(n))).toString();

export function flowMessage(
  f: FlowResults,
  name: string,
  elapsedMs: number,
): trafficGenV1.FlowResult {
  return {
    flow: f.flow,
    name,
    txPackets: u64(f.txPackets),
    txBytes: u64(f.txBytes),
    txDone: f.txDone,
    rxPackets: u64(f.rxPackets),
    rxBytes: u64(f.rxBytes),
    expected: u64(f.expected),
    lost: u64(f.lost),
    duplicates: u64(f.duplicates),
    reordered: u64(f.reordered),
    ...(f.latency
      ? {
          latency: {
            samples: u64(f.latency.samples),
            minNs: f.latency.minNs,
            meanNs: f.latency.meanNs,
            p50Ns: f.latency.p50Ns,
            p99Ns: f.latency.p99Ns,
            maxNs: f.latency.maxNs,
          },
        }
      : {}),
    txPps: perSecond(f.txPackets, elapsedMs),
    rxPps: perSecond(f.rxPackets, elapsedMs),
  };
}

export function resultsMessage(view: RunView): trafficGenV1.Results {
  const r = view.results;
  const flows = r?.flows ?? [];
  const t = totalsOf(flows, view.elapsedMs);
  return {
    runId: view.runId,
    state: view.state,
    txDone: r?.txDone ?? false,
    elapsedMs: u64(view.elapsedMs),
    flows: flows.map((f) => flowMessage(f, view.names[f.flow] ?? `flow-${f.flow}`, view.elapsedMs)),
    totals: {
      txPackets: u64(t.txPackets),
      txBytes: u64(t.txBytes),
      rxPackets: u64(t.rxPackets),
      rxBytes: u64(t.rxBytes),
      lost: u64(t.lost),
      duplicates: u64(t.duplicates),
      reordered: u64(t.reordered),
      lossRatio: t.lossRatio,
      txPps: t.txPps,
      rxPps: t.rxPps,
      txBitsPerSecond: t.txBps,
      rxBitsPerSecond: t.rxBps,
    },
    rxUntagged: u64(r?.rxUntagged ?? 0),
    rxForeign: u64(r?.rxForeign ?? 0),
    txBackpressure: u64(r?.txBackpressure ?? 0),
  };
}
