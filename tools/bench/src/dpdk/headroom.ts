/**
 * Whether the NF, not the generator, set the rate of one measured window of the vhost-user
 * topology. The generator (a FrameReplay since stop 46, testpmd flowgen before) counts what its
 * tx burst did not take: when the NF's ring is full, the rest goes back to the pool and the
 * generator goes on. A window counts as NF-bound when, in every
 * part of it, the generator tried to send at least GENERATOR_HEADROOM times what the ring took:
 * the NF's ring overflowed all along, so the NF's own work (and its vhost copies) set the rate.
 *
 * Headroom alone does not tell a slow phase of the machine, in which the NF runs slow as well:
 * on the VM of earlier stops (an AMD EPYC, Zen 4, in stop 39) the generator's rate flipped
 * between phases (about 7 and 15 Mpps delivered), trying 1.00-1.27x what it got through in the
 * slow one and 1.6-6.6x in the fast one, and the threshold was 1.5x, above the slow phase. On
 * stop 40's Intel Xeon VM the generator tried 1.24-1.55x in every window of a run, with the
 * reference at 16-18 Mpps throughout (no slow phase within the run) and the 100-cycle control
 * showing 111 % of its expected drop (from the run's medians): the NF set the rate, yet no window
 * reached 1.5x and every target read "not measured". So the threshold is 1.2x (the ring
 * overflowed in every part) and a slow phase is told by speed, on both sides of a round: the
 * reference at REF_PHASE of the run's 90th percentile, and the case's own window at REF_PHASE of
 * its 90th percentile. Replayed over the AMD run of 2026-12-06 13:39, this rule counts 7-9 rounds
 * of a case where 1.5x counted 6-8, with medians within 0.015 of theirs (l2fwd 1.054 against
 * 1.055, ACL 0.912 against 0.913, LPM 0.882 both).
 */
import { percentile, type Round } from '../stats';

/** How many times what the NF took the generator must have tried to send, in every part. */
export const GENERATOR_HEADROOM = 1.2;

/** One part of a window: the generator's tx counters over it. */
export interface WindowPart {
  /** Packets the generator's tx burst handed to the ring. */
  sent: number;
  /** Packets it tried to send that the full ring did not take. */
  dropped: number;
}

/** The smallest tried/taken over a window's parts (Infinity for a part that took nothing). */
export function headroom(parts: readonly WindowPart[]): number {
  if (parts.length === 0) throw new RangeError('headroom needs at least one part');
  return Math.min(...parts.map((p) => (p.sent === 0 ? Infinity : (p.sent + p.dropped) / p.sent)));
}

/** A round of the vhost topology: both windows' rates and generator headroom. */
export interface VhostRound extends Round {
  referenceHeadroom: number;
  candidateHeadroom: number;
}

/** Whether both windows of a round were NF-bound. */
export function nfBound(r: VhostRound, min = GENERATOR_HEADROOM): boolean {
  return r.referenceHeadroom >= min && r.candidateHeadroom >= min;
}

/** A window slower than this share of its 90th percentile (over the run's reference windows, or
 * over the case's own) is another phase. */
export const REF_PHASE = 0.8;

/**
 * The rounds of a case that count: the generator had headroom in both windows, the reference ran
 * at the machine's speed, at least REF_PHASE of the 90th percentile of every reference window of
 * the run (all cases), and the case's own window at least REF_PHASE of the 90th percentile of its
 * windows. On the AMD VM every NF also sat at about 6.5 Mpps in some phases, burned cycles or
 * not, while the generator still had headroom: such windows are not the NF's speed, and the
 * reference shows them when it runs in that phase, the case's own rate when the phase falls on
 * its window only.
 */
export function countedRounds(
  all: Iterable<readonly VhostRound[]>,
  mine: readonly VhostRound[],
): VhostRound[] {
  const refs = [...all].flatMap((x) => x.map((y) => y.reference));
  if (refs.length === 0 || mine.length === 0) return [];
  const floor = REF_PHASE * percentile(refs, 90);
  const own =
    REF_PHASE *
    percentile(
      mine.map((x) => x.candidate),
      90,
    );
  return mine.filter((x) => nfBound(x) && x.reference >= floor && x.candidate >= own);
}

/**
 * A/B of two builds on the vhost topology: per round where both count, the other build's ratio
 * to its reference window over this build's (each build's NF is measured against testpmd in its
 * own windows of the round). `a` and `b` are the two builds' rounds, index for index.
 */
export function abRounds(
  a: readonly VhostRound[],
  b: readonly VhostRound[],
  countsA: ReadonlySet<VhostRound>,
  countsB: ReadonlySet<VhostRound>,
): Round[] {
  return a.flatMap((x, i) => {
    const y = b[i];
    return y && countsA.has(x) && countsB.has(y)
      ? [{ reference: x.candidate / x.reference, candidate: y.candidate / y.reference }]
      : [];
  });
}

/** Reference rates a run needs before its phase gate judges by speed (before: headroom only). */
export const PHASE_MIN_SAMPLES = 4;

/** A short measurement of the reference taken only to learn the machine's phase. */
export interface PhaseProbe {
  mpps: number;
  headroom: number;
}

/**
 * Whether a probe shows the phase in which a round can count (countedRounds): the generator had
 * its headroom and the reference ran at the machine's speed, REF_PHASE of the 90th percentile of
 * the reference rates seen so far (`refs`: windows and probes). Why: in the slow phase every
 * window is voided afterwards, and on this VM that phase takes most of the time, so a pair of
 * windows started in it is time spent for nothing. The gate only decides when a pair starts;
 * whether it counts is still decided afterwards, over the whole run, by countedRounds.
 */
export function fastPhase(probe: PhaseProbe, refs: readonly number[]): boolean {
  if (!(probe.headroom >= GENERATOR_HEADROOM)) return false;
  if (refs.length < PHASE_MIN_SAMPLES) return true;
  return probe.mpps >= REF_PHASE * percentile(refs, 90);
}

/** What a run's phase gate did (dpdk-bench.ts's JSON `phaseGate`). */
export interface PhaseGateSummary {
  /** --gate-wait-ms: 0 when the gate was off (absent in runs recorded before this field) */
  waitMaxMs?: number;
  probes: number;
  waitedMs: number;
  /** the run's wall-time budget (--budget-ms), 0 or absent for none */
  budgetMs?: number;
  /** sessions that stopped at their share of it */
  sessionsCut?: number;
}

/** The gate's line under a vhost-user table, in the bench's report and the full run's. */
export function phaseGateNote(g: PhaseGateSummary): string {
  if (g.waitMaxMs === 0) return 'phase gate: off (--gate-wait-ms 0)';
  return (
    `phase gate: ${g.probes} probes of the reference, ${(g.waitedMs / 1000).toFixed(1)} s spent waiting for the phase in which a round can count` +
    (g.budgetMs
      ? `; time budget ${(g.budgetMs / 1000).toFixed(0)} s: ${g.sessionsCut ?? 0} sessions stopped at their share`
      : '')
  );
}
