/**
 * The vhost-user bench's wall-time budget (--budget-ms): its sessions share it, and a session
 * starts no round that would run past its share, so that a full run keeps to its 10 minutes
 * when the machine sits in its slow phase.
 */

/** When session s of n must end its rounds: its cumulative share of the budget (0: none). */
export function sessionDeadline(
  start: number,
  budgetMs: number,
  sessions: number,
  s: number,
): number {
  if (budgetMs === 0) return Infinity;
  return start + (budgetMs * (s + 1)) / sessions;
}

/**
 * Whether round t of a session may start at `now`: the first always does (a session's
 * processes were started for it); a later one only if it would end by the deadline taking as
 * long as the longest round before it.
 */
export function mayStartRound(
  t: number,
  now: number,
  longestMs: number,
  deadline: number,
): boolean {
  return t === 0 || now + longestMs <= deadline;
}
