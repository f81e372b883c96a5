/**
 * An RFC 2544 throughput search for a chain, in the style of MLRsearch (RFC 9932 draft,
 * FD.io CSIT): one set of trials serves two targets at once, the NDR (no loss at all) and the
 * PDR (loss ratio at most `pdrLossRatio`, 0.5 % by default). The search narrows both targets'
 * intervals with short trials first and confirms them with full-length trials (the last phase's
 * duration, at least 5 s in a real search), so the figures it reports rest only on trials of
 * the final duration.
 *
 * A target's interval is [lower, upper): upper is the lowest load decided to fail at this phase's
 * duration, lower the highest load decided to pass below it. Both are derived from every load
 * decided in the phase, so a contradicting trial (a pass above a fail: noise on a shared
 * machine) never throws away a pass below the failing load, and the targets stay consistent:
 * every NDR pass is a PDR pass and every PDR fail an NDR fail, so the NDR never exceeds the PDR. A target is done when its interval is narrower
 * than the phase's resolution, when the lowest load fails (then its result is 0) or the
 * highest passes (then it is the highest load). The trial function does the measuring; this
 * module holds no clock or traffic and is tested against a simulated lossy link.
 *
 * On a noisy host (other processes take the cores for tens of ms now and then) one trial says
 * little: `trialsPerLoad` > 1 gives each final-phase load that many trials' worth of goal
 * duration, and MLRsearch's goal exceed ratio (`exceedRatio`, default 0.5) decides it: a load
 * fails a target once its failing trials add up to more than exceedRatio of the goal, and
 * passes once its passing trials reach the rest. With 3 trials per load and 0.5, the majority
 * of up to 3 trials decides; with 1 (the default), one trial does, as in RFC 2544.
 */

export interface TrialOutcome {
  /** Packets the generator sent during the trial, over all flows. */
  sent: number;
  /** Packets sent and not received (counted per flow, summed). */
  lost: number;
  /** Optional: the load the generator actually achieved (pps); reported, not judged. */
  achievedPps?: number;
  /** Anything else the trial function wants in the report (latency, per-flow counts). */
  extra?: Record<string, unknown>;
}

export type TrialFn = (offeredPps: number, durationS: number) => Promise<TrialOutcome>;

export interface Trial extends TrialOutcome {
  offeredPps: number;
  durationS: number;
  phase: number;
  lossRatio: number;
}

export interface SearchOptions {
  minPps: number;
  maxPps: number;
  /** Trial durations of the phases, shortest first; the last is the final (reported) one. */
  durationsS: readonly number[];
  /** Final width of each interval relative to its upper bound (e.g. 0.05 = 5 %). */
  relativeResolution: number;
  /** Width goal of earlier phases, as a multiple of the final resolution; default 4. */
  coarseFactor?: number;
  /** PDR loss ratio; default 0.005 (0.5 %). */
  pdrLossRatio?: number;
  /** Hard bound on the number of trials (a noisy link cannot make the search run forever). */
  maxTrials?: number;
  /** Trials' worth of goal duration per load in the final phase (default 1); see above. */
  trialsPerLoad?: number;
  /** Share of the goal duration a load may fail and still pass (default 0.5). */
  exceedRatio?: number;
  onTrial?: (t: Trial) => void;
}

export interface Bound {
  /** Highest load that passed at the final duration (0 if even minPps failed). */
  lowerPps: number;
  /** Lowest load that failed at the final duration (undefined if maxPps passed). */
  upperPps?: number;
  /** The trial that made the lower bound. */
  lowerTrial?: Trial;
}

export interface SearchResult {
  ndr: Bound;
  pdr: Bound;
  pdrLossRatio: number;
  relativeResolution: number;
  trials: Trial[];
  /** False when maxTrials ran out before both intervals were narrow enough. */
  converged: boolean;
}

interface Interval {
  lossRatio: number;
  lower?: number;
  upper?: number;
  lowerTrial?: Trial;
  /** A load measured but not decided yet for this target (more trials wanted). */
  pending?: number;
  /** Every load decided in this phase: its verdict and, for a pass, its witness trial. */
  decided: Map<number, { verdict: 'pass' | 'fail'; best?: Trial }>;
}

const interval = (lossRatio: number): Interval => ({ lossRatio, decided: new Map() });

const passes = (t: Trial, target: Interval): boolean =>
  t.lost <= 0 ? true : target.lossRatio > 0 && t.lossRatio <= target.lossRatio;

/** Whether the trials at one load decide a target (MLRsearch's goal exceed ratio). */
function classify(
  trials: readonly Trial[],
  target: Interval,
  goalS: number,
  exceedRatio: number,
): 'pass' | 'fail' | undefined {
  let passS = 0;
  let failS = 0;
  for (const t of trials) {
    if (passes(t, target)) passS += t.durationS;
    else failS += t.durationS;
  }
  if (failS > exceedRatio * goalS) return 'fail';
  if (passS >= (1 - exceedRatio) * goalS) return 'pass';
  return undefined;
}

function apply(target: Interval, load: number, verdict: 'pass' | 'fail', best?: Trial): void {
  if (target.pending === load) delete target.pending;
  target.decided.set(load, { verdict, ...(best ? { best } : {}) });
  let upper: number | undefined;
  for (const [l, d] of target.decided) if (d.verdict === 'fail' && (upper ?? l) >= l) upper = l;
  let lower: number | undefined;
  let lowerWitness: Trial | undefined;
  for (const [l, d] of target.decided)
    if (d.verdict === 'pass' && (upper === undefined || l < upper) && (lower ?? l) <= l) {
      lower = l;
      lowerWitness = d.best;
    }
  if (upper === undefined) delete target.upper;
  else target.upper = upper;
  if (lower === undefined) {
    delete target.lower;
    delete target.lowerTrial;
  } else {
    target.lower = lower;
    if (lowerWitness) target.lowerTrial = lowerWitness;
    else delete target.lowerTrial;
  }
}

/** The next load this target wants measured, or undefined when it is done. */
function nextLoad(target: Interval, opts: SearchOptions, width: number): number | undefined {
  if (target.pending !== undefined) return target.pending;
  const { minPps, maxPps } = opts;
  const { lower, upper } = target;
  if (lower === undefined) {
    if (upper === undefined) return maxPps;
    if (upper <= minPps) return undefined; // even the lowest load fails
    // Step down fast: a quarter of the failing load, not below the minimum.
    return Math.max(minPps, upper / 4);
  }
  if (upper === undefined) {
    if (lower >= maxPps) return undefined; // the highest load passes
    return Math.min(maxPps, lower * 2);
  }
  if (upper - lower <= width * upper) return undefined;
  // Bisect in the middle, rounded to whole packets per second.
  return Math.round((lower + upper) / 2);
}

export async function searchNdrPdr(trial: TrialFn, opts: SearchOptions): Promise<SearchResult> {
  if (!(opts.minPps > 0 && opts.maxPps > opts.minPps))
    throw new RangeError(`need 0 < minPps < maxPps (got ${opts.minPps}, ${opts.maxPps})`);
  if (opts.durationsS.length === 0) throw new RangeError('no trial durations');
  if (!(opts.relativeResolution > 0 && opts.relativeResolution < 1))
    throw new RangeError(`relativeResolution ${opts.relativeResolution} is not in (0, 1)`);
  const pdrLossRatio = opts.pdrLossRatio ?? 0.005;
  const maxTrials = opts.maxTrials ?? 60;
  const coarse = opts.coarseFactor ?? 4;
  const trials: Trial[] = [];
  let ndr = interval(0);
  let pdr = interval(pdrLossRatio);
  let converged = true;

  const exceedRatio = opts.exceedRatio ?? 0.5;
  /** Trials at each load in the current phase. */
  let atLoad = new Map<number, Trial[]>();
  let goalS = 0;

  const measure = async (load: number, phase: number, durationS: number): Promise<void> => {
    const out = await trial(load, durationS);
    const t: Trial = {
      ...out,
      offeredPps: load,
      durationS,
      phase,
      lossRatio: out.sent > 0 ? out.lost / out.sent : 0,
    };
    trials.push(t);
    opts.onTrial?.(t);
    const here = [...(atLoad.get(load) ?? []), t];
    atLoad.set(load, here);
    for (const target of [ndr, pdr]) {
      const verdict = classify(here, target, goalS, exceedRatio);
      if (verdict === undefined) target.pending = load;
      else {
        // The lower bound's witness: the passing trial with the least loss at this load.
        const best = here
          .filter((x) => passes(x, target))
          .sort((a, b) => a.lossRatio - b.lossRatio)[0];
        apply(target, load, verdict, best);
      }
    }
  };

  for (const [phase, durationS] of opts.durationsS.entries()) {
    const last = phase === opts.durationsS.length - 1;
    const width = last ? opts.relativeResolution : opts.relativeResolution * coarse;
    goalS = durationS * (last ? (opts.trialsPerLoad ?? 1) : 1);
    atLoad = new Map();
    // A new duration starts afresh, but from the previous phase's bounds: they are measured
    // again first (longer trials often lose more), so the bisection starts near the answer.
    const hints = [pdr.lower, ndr.lower, pdr.upper, ndr.upper].filter(
      (v): v is number => v !== undefined,
    );
    ndr = interval(0);
    pdr = interval(pdrLossRatio);
    for (const h of [...new Set(hints)]) {
      // Each hint until both targets have decided it (one trial unless trialsPerLoad > 1).
      do {
        if (trials.length >= maxTrials) break;
        await measure(h, phase, durationS);
      } while (ndr.pending === h || pdr.pending === h);
    }
    for (;;) {
      if (trials.length >= maxTrials) {
        converged = false;
        break;
      }
      // The NDR first (its interval sits lower; its trials narrow the PDR's too).
      const load = nextLoad(ndr, opts, width) ?? nextLoad(pdr, opts, width);
      if (load === undefined) break;
      await measure(load, phase, durationS);
    }
    if (!converged) break;
  }
  const bound = (i: Interval): Bound => ({
    lowerPps: i.lower ?? 0,
    ...(i.upper !== undefined ? { upperPps: i.upper } : {}),
    ...(i.lowerTrial ? { lowerTrial: i.lowerTrial } : {}),
  });
  return {
    ndr: bound(ndr),
    pdr: bound(pdr),
    pdrLossRatio,
    relativeResolution: opts.relativeResolution,
    trials,
    converged,
  };
}

/**
 * A simulated lossy link for tests and dry runs: no loss up to `ndrPps`, then a loss ratio
 * rising linearly to `pdrLossRatio` at `pdrPps` and on above it; `noise` (0..1) scales a
 * deterministic jitter of the capacity per trial (a shared machine's swings), and a trial
 * that meets a stall (`stallProbability`) loses `stallLoss` (1 %) of its packets at any load.
 */
export function simulatedLink(opts: {
  ndrPps: number;
  pdrPps: number;
  pdrLossRatio?: number;
  noise?: number;
  /** Probability that a trial meets a host stall, losing `stallLoss` of it whatever the load. */
  stallProbability?: number;
  stallLoss?: number;
  seed?: number;
}): TrialFn & { trials: number } {
  const ratio = opts.pdrLossRatio ?? 0.005;
  let seed = opts.seed ?? 1;
  const rand = (): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  const fn = (async (load: number, durationS: number): Promise<TrialOutcome> => {
    fn.trials++;
    const jitter = 1 + (opts.noise ?? 0) * (rand() * 2 - 1);
    const ndr = opts.ndrPps * jitter;
    const pdr = opts.pdrPps * jitter;
    const sent = Math.round(load * durationS);
    let lossRatio = 0;
    if (load > ndr) lossRatio = (ratio * (load - ndr)) / (pdr - ndr);
    // Just above the NDR a trial still loses at least one packet.
    if (rand() < (opts.stallProbability ?? 0)) lossRatio += opts.stallLoss ?? 0.01;
    const lost = lossRatio > 0 ? Math.max(1, Math.round(sent * lossRatio)) : 0;
    return { sent, lost: Math.min(sent, lost), achievedPps: load };
  }) as TrialFn & { trials: number };
  fn.trials = 0;
  return fn;
}
