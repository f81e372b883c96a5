import { describe, expect, it } from 'vitest';
import { recordingLogger } from '../test/support/recording-logger';
import { CrossNodeApplyError, applyAcrossNodes, type NodeChange } from './cross-node-apply';

/** Node switches in memory: each node's table, the calls made, and nodes that refuse. */
function fleet(tables: Record<string, string[]>, failing: Record<string, 'always' | 'once'> = {}) {
  const calls: [node: string, flows: string[]][] = [];
  const apply = async (node: string, flows: readonly string[]): Promise<void> => {
    calls.push([node, [...flows]]);
    const mode = failing[node];
    if (mode) {
      if (mode === 'once') delete failing[node];
      throw new Error(`${node}: connection refused`);
    }
    tables[node] = [...flows];
  };
  return { tables, calls, apply };
}

const change = (node: string, previous: string[], next: string[]): NodeChange => ({
  node,
  previous,
  next,
});

describe('applyAcrossNodes', () => {
  it('applies every node in name order', async () => {
    const f = fleet({ a: ['old-a'], b: ['old-b'] });
    const r = await applyAcrossNodes(
      [change('b', ['old-b'], ['new-b']), change('a', ['old-a'], ['new-a'])],
      f.apply,
    );
    expect(f.calls.map(([n]) => n)).toEqual(['a', 'b']);
    expect(f.tables).toEqual({ a: ['new-a'], b: ['new-b'] });
    expect(r).toEqual({ applied: ['a', 'b'], unchangedFailed: [] });
  });

  it('applies a node whose table only gains flows before the others (a hop coming back on it)', async () => {
    const f = fleet({ a: ['a-to-tunnel-b', 'default'], b: ['default'] });
    await applyAcrossNodes(
      [
        // a steers into the tunnel to b again, b gets the flows receiving from it
        change('a', ['a-around-b', 'default'], ['a-to-tunnel-b', 'default']),
        change('b', ['default'], ['b-from-tunnel-a', 'default']),
        change('c', ['c-x', 'default'], ['default']),
      ],
      f.apply,
    );
    expect(f.calls.map(([n]) => n)).toEqual(['b', 'a', 'c']);
  });

  it('undoes node a when node b fails: a has its previous table back, and the error says so', async () => {
    const f = fleet({ a: ['old-a'], b: ['old-b'] }, { b: 'always' });
    const log = recordingLogger();
    const err = await applyAcrossNodes(
      [change('a', ['old-a'], ['new-a']), change('b', ['old-b'], ['new-b'])],
      f.apply,
      log,
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CrossNodeApplyError);
    const e = err as CrossNodeApplyError;
    expect(e.node).toBe('b');
    expect(e.undone).toEqual(['a']);
    expect(e.undoFailed).toEqual([]);
    expect(e.message).toBe(
      'programming node b failed: b: connection refused; the change was undone on a',
    );
    expect(f.tables).toEqual({ a: ['old-a'], b: ['old-b'] });
    expect(f.calls).toEqual([
      ['a', ['new-a']],
      ['b', ['new-b']],
      ['a', ['old-a']],
    ]);
    expect(log.lines).toMatchObject([
      { level: 'error', msg: 'a change across nodes failed', node: 'b', undone: ['a'] },
    ]);
  });

  it('undoes the nodes changed so far last first, and never touches the nodes after the failure', async () => {
    const f = fleet({ a: ['a0'], b: ['b0'], c: ['c0'], d: ['d0'] }, { c: 'always' });
    await expect(
      applyAcrossNodes(
        ['a', 'b', 'c', 'd'].map((n) => change(n, [`${n}0`], [`${n}1`])),
        f.apply,
      ),
    ).rejects.toMatchObject({ node: 'c', undone: ['b', 'a'] });
    expect(f.tables).toEqual({ a: ['a0'], b: ['b0'], c: ['c0'], d: ['d0'] });
    expect(f.calls.map(([n, t]) => `${n}:${t.join()}`)).toEqual([
      'a:a1',
      'b:b1',
      'c:c1',
      'b:b0',
      'a:a0',
    ]);
  });

  it('reports a node whose undo failed as well: its table is unknown', async () => {
    const f = fleet({ a: ['a0'], b: ['b0'] });
    let calls = 0;
    const apply = async (node: string, flows: readonly string[]) => {
      calls++;
      // a takes the change, then b fails and a refuses the undo
      if (calls > 1) throw new Error(`${node} is gone`);
      await f.apply(node, flows);
    };
    const err = (await applyAcrossNodes(
      [change('a', ['a0'], ['a1']), change('b', ['b0'], ['b1'])],
      apply,
    ).catch((e: unknown) => e)) as CrossNodeApplyError;
    expect(err.undone).toEqual([]);
    expect(err.undoFailed).toEqual([{ node: 'a', error: 'a is gone' }]);
    expect(err.message).toContain('undoing it failed on a (a is gone), whose table is now unknown');
  });

  it('does not fail the change for a node it leaves as it was, and does not undo for it', async () => {
    const f = fleet({ a: ['a0'], b: ['b0'], c: ['c0'] }, { b: 'always' });
    const log = recordingLogger();
    const r = await applyAcrossNodes(
      [change('a', ['a0'], ['a1']), change('b', ['b0'], ['b0']), change('c', ['c0'], ['c1'])],
      f.apply,
      log,
    );
    expect(r).toEqual({ applied: ['a', 'c'], unchangedFailed: ['b'] });
    expect(f.tables).toEqual({ a: ['a1'], b: ['b0'], c: ['c1'] });
    expect(log.lines).toMatchObject([{ level: 'warn', node: 'b' }]);
  });

  it('has nothing to undo when the first changed node fails', async () => {
    const f = fleet({ a: ['a0'], b: ['b0'] }, { a: 'once' });
    const err = (await applyAcrossNodes(
      [change('a', ['a0'], ['a1']), change('b', ['b0'], ['b1'])],
      f.apply,
    ).catch((e: unknown) => e)) as CrossNodeApplyError;
    expect(err.message).toBe(
      'programming node a failed: a: connection refused; no other node had been changed',
    );
    expect(f.calls).toEqual([['a', ['a1']]]);
  });
});
