import type { Logger } from '@flowline/telemetry';

/**
 * One change over several node switches as one change (issue 19): a chain across nodes is
 * programmed on every node it uses, and a failure on any node undoes what the change already
 * did on the others, so no node is left steering into a path another node does not complete.
 *
 * Each node's table is replaced whole (one bundle per node, atomic there); across nodes there
 * is no transaction, so the undo is the previous table applied again, last applied first. Nodes
 * whose table only gains flows go first: they start nothing by themselves (their new flows wait
 * for packets the other nodes do not send yet), so a node that starts sending into a tunnel,
 * e.g. a hop coming back on another node, finds the receiving flows there already. A
 * node whose table the change does not alter is applied too (a switch that restarted gets its
 * flows back), but its failure does not fail the change: a node that is down must not block
 * changes elsewhere.
 */

export interface NodeChange {
  node: string;
  /** The node's whole table after the change. */
  next: readonly string[];
  /** Its table before it, as last applied: what the undo gives back. */
  previous: readonly string[];
}

/** A change failed on `node`; `undone` lists the nodes given back their table, `undoFailed` those that could not be. */
export class CrossNodeApplyError extends Error {
  override readonly name = 'CrossNodeApplyError';
  constructor(
    readonly node: string,
    override readonly cause: unknown,
    readonly undone: string[],
    readonly undoFailed: { node: string; error: string }[],
  ) {
    super(
      `programming node ${node} failed: ${(cause as Error)?.message ?? String(cause)}; ` +
        (undone.length > 0
          ? `the change was undone on ${undone.join(', ')}`
          : 'no other node had been changed') +
        (undoFailed.length > 0
          ? `; undoing it failed on ${undoFailed.map((u) => `${u.node} (${u.error})`).join(', ')}, whose table is now unknown`
          : ''),
    );
  }
}

export interface CrossNodeApplyResult {
  /** Nodes whose table was applied. */
  applied: string[];
  /** Nodes the change does not alter that failed: left as they were, retried by a later change. */
  unchangedFailed: string[];
}

const same = (a: readonly string[], b: readonly string[]): boolean =>
  a.length === b.length && a.every((f, i) => f === b[i]);

/** Whether `next` holds every flow of `previous` and more: the node only gains flows. */
const onlyGains = (c: NodeChange): boolean => {
  const next = new Set(c.next);
  return c.next.length > c.previous.length && c.previous.every((f) => next.has(f));
};

/**
 * Applies every node's new table: those that only gain flows first, then the others, each
 * group in node-name order. When a node whose table changes fails,
 * the nodes changed so far get their previous table back (last first) and CrossNodeApplyError
 * says which node failed and what was undone.
 */
export async function applyAcrossNodes(
  changes: readonly NodeChange[],
  apply: (node: string, flows: readonly string[]) => Promise<void>,
  log?: Logger,
): Promise<CrossNodeApplyResult> {
  const ordered = [...changes].sort(
    (x, y) => Number(onlyGains(y)) - Number(onlyGains(x)) || x.node.localeCompare(y.node),
  );
  const changedDone: NodeChange[] = [];
  const result: CrossNodeApplyResult = { applied: [], unchangedFailed: [] };
  for (const change of ordered) {
    const changed = !same(change.next, change.previous);
    try {
      await apply(change.node, change.next);
      result.applied.push(change.node);
      if (changed) changedDone.push(change);
    } catch (err) {
      if (!changed) {
        result.unchangedFailed.push(change.node);
        log?.warn('node switch failed; this change leaves its flows as they were', {
          node: change.node,
          err: (err as Error).message,
        });
        continue;
      }
      const undone: string[] = [];
      const undoFailed: { node: string; error: string }[] = [];
      for (const done of changedDone.reverse()) {
        try {
          await apply(done.node, done.previous);
          undone.push(done.node);
        } catch (undoErr) {
          undoFailed.push({ node: done.node, error: (undoErr as Error).message });
        }
      }
      const error = new CrossNodeApplyError(change.node, err, undone, undoFailed);
      log?.error('a change across nodes failed', {
        node: change.node,
        err: (err as Error).message,
        undone,
        undoFailed,
      });
      throw error;
    }
  }
  return result;
}
