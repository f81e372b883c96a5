import { describe, expect, it } from 'vitest';

import { LineChild } from './line-child';

// A child speaking the protocol: "@@" answers in order, other output is log; {"refuse":...} is
// refused, {"slow":ms} answered after ms (and the requests after it later still), {"exit":code}
// ends it without an answer.
const CHILD = `
const rl = require('node:readline').createInterface({ input: process.stdin });
console.log('EAL: some log line');
console.log('@@' + JSON.stringify({ ready: true }));
rl.on('line', (l) => {
  const q = JSON.parse(l);
  if (q.exit !== undefined) process.exit(q.exit);
  // in order, as the bench's children answer: a slow request holds up the ones after it
  if (q.slow) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, q.slow);
  console.log('@@' + JSON.stringify(q.refuse ? { ok: false, error: q.refuse } : { echo: q.n }));
});
rl.on('close', () => process.exit(0));
`;

const start = (): LineChild => LineChild.spawn('test child', ['-e', CHILD]);

describe('LineChild', () => {
  it('answers requests in order, keeps the log apart and turns a refusal into an error', async () => {
    const c = start();
    expect(await c.next(5000)).toEqual({ ready: true });
    const answers = await Promise.all([1, 2, 3].map((n) => c.request({ n }, 5000)));
    expect(answers).toEqual([{ echo: 1 }, { echo: 2 }, { echo: 3 }]);
    await expect(c.request({ refuse: 'no such port' }, 5000)).rejects.toThrow(
      'test child: no such port',
    );
    expect(c.output).toContain('EAL: some log line');
    await c.stop(undefined, 5000);
    expect(await c.exited).toBe(0);
  });

  it('a timed-out request keeps its place: the next request gets its own answer', async () => {
    const c = start();
    await c.next(5000);
    await expect(c.request({ slow: 300, n: 1 }, 50)).rejects.toThrow('no answer in 50 ms');
    expect(await c.request({ n: 2 }, 5000)).toEqual({ echo: 2 });
    await c.stop(undefined, 5000);
  });

  it('fails what is pending when the child exits, and every request after', async () => {
    const c = start();
    await c.next(5000);
    await expect(c.request({ exit: 3 }, 5000)).rejects.toThrow('test child exited (3)');
    await expect(c.request({ n: 1 }, 5000)).rejects.toThrow('test child exited (3)');
  });
});
