/**
 * Phase A of the NF-bound bench in sessions: its rounds split over runs of fresh Flowline and
 * testpmd io processes (a process's speed is a draw for its life), each session's Flowline
 * counters checked against that session's own windows, and one check reported from them.
 */
import type { HitCheck } from './checks';

/** The session round r of `rounds` falls in, when they are split over `sessions` in order. */
export function sessionOfRound(r: number, rounds: number, sessions: number): number {
  if (!(rounds > 0 && sessions > 0)) throw new RangeError('rounds and sessions must be positive');
  return Math.floor((r * sessions) / rounds);
}

/** Counts that add up over sessions. */
const SUMMED = ['processed', 'rx', 'tx', 'droppedByRules', 'lost'] as const;

/**
 * One Flowline case's check from its sessions' checks (checkFlowline's records): counts summed,
 * ok only when every session's is, and the details (hits, conntrack) of the first session that
 * failed, or else of the last, with the most rules any session hit; each session's own record
 * is kept beside.
 */
export function mergeSessionChecks(
  list: readonly Record<string, unknown>[],
): Record<string, unknown> {
  const [first, ...rest] = list;
  if (first === undefined) return { ok: false, error: 'no session was checked' };
  if (rest.length === 0) return first;
  const failing = list.find((x) => x.ok === false);
  const out: Record<string, unknown> = { ...(failing ?? rest.at(-1) ?? first) };
  for (const k of SUMMED)
    if (list.every((x) => typeof x[k] === 'number'))
      out[k] = list.reduce((a, x) => a + (x[k] as number), 0);
  out.ok = list.every((x) => x.ok !== false);
  const hits = list.map((x) => x.hits as HitCheck | undefined).filter((h): h is HitCheck => !!h);
  const lastHits = hits.at(-1);
  if (lastHits && !failing)
    out.hits = { ...lastHits, binsHit: Math.max(...hits.map((h) => h.binsHit)) };
  out.sessions = list;
  return out;
}
