/**
 * What a run must have counted, from the trace and the windows of it each case processed: the
 * per-rule and per-route hits, and for conntrack + ACL the hits the ACL sees once the flows it
 * permitted are tracked. The benchmark fails a case whose counters differ.
 */
import { must } from '../must';
import { median } from '../stats';

import { compareHits, hitsOver, markSeen, type HitMismatch } from './trace';

/** A stretch of the endless replay a case processed: packets [from, from + count). */
export interface Window {
  from: number;
  count: number;
}

/** Hits per bin over all windows. */
export function expectedHits(
  expect: Int32Array,
  bins: number,
  windows: readonly Window[],
): Float64Array {
  const out = new Float64Array(bins);
  for (const w of windows) hitsOver(expect, bins, w.from, w.count, out);
  return out;
}

/**
 * The ACL hits behind a conntrack stage: a packet of a flow the ACL permitted before is tracked
 * and skips the ACL, so a permit bin counts each flow once (its first packet); a deny bin counts
 * every packet (the first judged by the ACL, the rest by the denial conntrack cached, counted
 * against the same rule). `permits[bin]` says which bins permit. Also the flows conntrack must
 * have opened (`flows`) and the denials it must have cached (`deniedFlows`: every trace flow is
 * TCP or UDP).
 */
export function expectedCtAclHits(
  expect: Int32Array,
  permits: readonly boolean[],
  windows: readonly Window[],
): { hits: Float64Array; flows: number; deniedFlows: number } {
  const bins = permits.length;
  const all = expectedHits(expect, bins, windows);
  const seen = new Uint8Array(expect.length);
  for (const w of windows) markSeen(seen, w.from, w.count);
  const firsts = new Float64Array(bins);
  let flows = 0;
  let deniedFlows = 0;
  expect.forEach((e, i) => {
    if (!seen[i] || e < 0) return;
    if (permits[e]) {
      // permits[e] is set only for e < bins: firsts[e] is a number
      firsts[e] = (firsts[e] ?? 0) + 1;
      flows++;
    } else {
      deniedFlows++;
    }
  });
  const hits = all.map((a, b) => (permits[b] ? must(firsts[b], `first packets of bin ${b}`) : a));
  return { hits, flows, deniedFlows };
}

export interface HitCheck {
  ok: boolean;
  bins: number;
  /** bins that got hits */
  binsHit: number;
  mismatched: number;
  first: HitMismatch[];
}

export function checkHits(expected: ArrayLike<number>, actual: ArrayLike<number>): HitCheck {
  const { mismatches, count } = compareHits(expected, actual);
  let binsHit = 0;
  for (let i = 0; i < actual.length; i++) if ((actual[i] ?? 0) > 0) binsHit++;
  return { ok: count === 0, bins: expected.length, binsHit, mismatched: count, first: mismatches };
}

/** Upcalls in `ovs-appctl dpif-netdev/pmd-stats-show` (every PMD's, successful or failed). */
export function upcallsIn(pmdStats: string): number {
  return [...pmdStats.matchAll(/miss with (?:success|failed) upcall: (\d+)/g)].reduce(
    (x, m) => x + Number(m[1]),
    0,
  );
}

/**
 * Whether an OVS case ran in its steady state. OVS installs a megaflow per new flow mask through
 * an upcall, so a window with upcalls measured its slow path (as when OVS cut its datapath flow
 * limit after a stop), not its fast path; and a case whose windows ran at under a quarter of the
 * rate it reached at its warm-up (the same rules, the same trace, minutes before) was not
 * measured at its speed, whatever the cause (one run's 10,000-rule case made 0.04-0.08 Mpps in
 * its windows against 0.63 at its warm-up). Unsteady when more than half its windows had upcalls
 * or their median is under MIN_OF_WARMUP of the warm-up rate.
 */
export const MIN_OF_WARMUP = 0.25;

export function ovsSteadiness(
  upcallsPerWindow: readonly number[],
  mppsPerWindow: readonly number[],
  warmupMpps: number,
): {
  windows: number;
  windowsWithUpcalls: number;
  warmupMpps: number;
  /** the windows' median over the warm-up rate */
  ofWarmup: number;
  steady: boolean;
} {
  const withUpcalls = upcallsPerWindow.filter((n) => n > 0).length;
  const ofWarmup = warmupMpps > 0 ? median([...mppsPerWindow]) / warmupMpps : NaN;
  return {
    windows: upcallsPerWindow.length,
    windowsWithUpcalls: withUpcalls,
    warmupMpps,
    ofWarmup,
    steady: withUpcalls * 2 <= upcallsPerWindow.length && !(ofWarmup < MIN_OF_WARMUP),
  };
}

/**
 * A Flowline case's ratio to OVS judged against its target, unless OVS was off its fast path
 * (ovsSteadiness) in that run: a ratio to OVS's slow path says nothing about its fast path.
 */
export function judgeOvsRatio(
  ratio: number,
  target: number,
  ovs:
    | { steady?: unknown; windows?: unknown; windowsWithUpcalls?: unknown; ofWarmup?: unknown }
    | undefined,
): { met: boolean } | { unsteady: string } {
  if (ovs?.steady !== false) return { met: ratio >= target };
  const upcalls = Number(ovs.windowsWithUpcalls);
  const windows = Number(ovs.windows);
  return {
    unsteady:
      upcalls * 2 > windows
        ? `OVS had upcalls in ${upcalls} of ${windows} windows`
        : `OVS ran at ${Number(ovs.ofWarmup).toFixed(2)} of its warm-up rate`,
  };
}
