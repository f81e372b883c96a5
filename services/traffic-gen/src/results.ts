/**
 * From the generator's raw per-flow results to flowline.trafficgen.v1.Results: totals over the
 * flows, loss ratio and average rates over the time each flow was sending (a count-limited flow's
 * ends with its last packet, so its rate stays put while the run's results are read later).
 * 64-bit counters go out as decimal strings (the proto loader's longs: String).
 */
import { type FlowResults, type TrafficResults, bucketRange } from '@flowline/dpdk';
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
  /** Each flow's latency histogram (TSC cycles, by flow index), for p90 and the totals. */
  histograms?: readonly ArrayLike<number>[];
}

/**
 * Nearest-rank quantile of a cycle histogram in ns, as the bucket's midpoint clamped to
 * [minNs, maxNs] (what packages/dpdk's latencyFromHistogram does for p50 and p99).
 */
export function histogramQuantileNs(
  hist: ArrayLike<number>,
  q: number,
  tscHz: number,
  minNs: number,
  maxNs: number,
): number | undefined {
  let total = 0;
  for (let i = 0; i < hist.length; i++) total += hist[i]!;
  if (total === 0 || tscHz <= 0) return undefined;
  const rank = Math.max(1, Math.ceil(q * total));
  let seen = 0;
  for (let b = 0; b < hist.length; b++) {
    seen += hist[b]!;
    if (seen >= rank) {
      const { low, width } = bucketRange(b);
      return Math.min(maxNs, Math.max(minNs, ((low + (width - 1) / 2) * 1e9) / tscHz));
    }
  }
  return maxNs;
}

/** Latency over all flows together: their histograms summed, min/max/mean over the flows. */
export function totalLatency(
  flows: readonly FlowResults[],
  histograms: readonly ArrayLike<number>[] | undefined,
  tscHz: number,
): trafficGenV1.Latency | undefined {
  const measured = flows.filter((f) => f.latency && histograms?.[f.flow]);
  if (measured.length === 0) return undefined;
  const sum = new Float64Array(Math.max(...measured.map((f) => histograms![f.flow]!.length)));
  for (const f of measured) {
    const h = histograms![f.flow]!;
    for (let i = 0; i < h.length; i++) sum[i]! += h[i]!;
  }
  const minNs = Math.min(...measured.map((f) => f.latency!.minNs));
  const maxNs = Math.max(...measured.map((f) => f.latency!.maxNs));
  const samples = measured.reduce((a, f) => a + f.latency!.samples, 0);
  const meanNs =
    measured.reduce((a, f) => a + f.latency!.meanNs * f.latency!.samples, 0) / (samples || 1);
  const q = (x: number): number => histogramQuantileNs(sum, x, tscHz, minNs, maxNs) ?? 0;
  return {
    samples: u64(samples),
    minNs,
    meanNs,
    p50Ns: q(0.5),
    p90Ns: q(0.9),
    p99Ns: q(0.99),
    maxNs,
  };
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

/** Per second over `seconds`; 0 before any time passed. */
export function perSecond(count: number, seconds: number): number {
  return seconds > 0 ? count / seconds : 0;
}

export function totalsOf(flows: readonly FlowResults[]): Totals {
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
  // The flows send side by side: the run's rates are over the longest of their spans.
  const txSeconds = flows.reduce((a, f) => Math.max(a, f.txSeconds), 0);
  const rxSeconds = flows.reduce((a, f) => Math.max(a, f.rxSeconds), 0);
  return {
    ...t,
    lossRatio: t.expected > 0 ? t.lost / t.expected : 0,
    txPps: perSecond(t.txPackets, txSeconds),
    rxPps: perSecond(t.rxPackets, rxSeconds),
    txBps: perSecond(t.txBytes * 8, txSeconds),
    rxBps: perSecond(t.rxBytes * 8, rxSeconds),
  };
}

const u64 = (n: number): string => BigInt(Math.max(0, Math.round(n))).toString();

export function flowMessage(
  f: FlowResults,
  name: string,
  histogram?: ArrayLike<number>,
  tscHz = 0,
): trafficGenV1.FlowResult {
  const p90 =
    f.latency && histogram
      ? histogramQuantileNs(histogram, 0.9, tscHz, f.latency.minNs, f.latency.maxNs)
      : undefined;
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
            ...(p90 !== undefined ? { p90Ns: p90 } : {}),
          },
        }
      : {}),
    txPps: perSecond(f.txPackets, f.txSeconds),
    rxPps: perSecond(f.rxPackets, f.rxSeconds),
  };
}

export function resultsMessage(view: RunView): trafficGenV1.Results {
  const r = view.results;
  const flows = r?.flows ?? [];
  const t = totalsOf(flows);
  const latency = r ? totalLatency(flows, view.histograms, r.tscHz) : undefined;
  return {
    runId: view.runId,
    state: view.state,
    txDone: r?.txDone ?? false,
    elapsedMs: u64(view.elapsedMs),
    flows: flows.map((f) =>
      flowMessage(f, view.names[f.flow] ?? `flow-${f.flow}`, view.histograms?.[f.flow], r?.tscHz),
    ),
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
      ...(latency ? { latency } : {}),
    },
    rxUntagged: u64(r?.rxUntagged ?? 0),
    rxForeign: u64(r?.rxForeign ?? 0),
    txBackpressure: u64(r?.txBackpressure ?? 0),
  };
}
