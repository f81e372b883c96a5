import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { lockOwnerAlive, withLock } from './lock';

describe('per-pod lock', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flcni-lock-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('serialises holders in one process (the daemon) and frees the lock after', async () => {
    const order: string[] = [];
    const hold = (name: string, ms: number) =>
      withLock(dir, 'pod-a', 5000, async () => {
        order.push(`${name}+`);
        await new Promise((r) => setTimeout(r, ms));
        order.push(`${name}-`);
      });
    await Promise.all([hold('first', 80), hold('second', 0)]);
    // Either may win (the folder is made asynchronously); they never overlap.
    const [a, b] = [order[0]!.slice(0, -1), order[2]!.slice(0, -1)];
    expect(new Set([a, b])).toEqual(new Set(['first', 'second']));
    expect(order).toEqual([`${a}+`, `${a}-`, `${b}+`, `${b}-`]);
  });

  it("takes over a lock its own pid left in an earlier life (a restarted daemon's), and a dead pid's", async () => {
    // Same pid, another incarnation: what a daemon restarted as the same pid in its container finds.
    writeFileSync(join(dir, 'pod-b.lock'), `${process.pid} 00000000-dead-4000-8000-000000000000`);
    expect(lockOwnerAlive(readFileSync(join(dir, 'pod-b.lock'), 'utf8'))).toBe(false);
    expect(await withLock(dir, 'pod-b', 200, async () => 'ran')).toBe('ran');
    writeFileSync(join(dir, 'pod-c.lock'), '2147483646 x'); // no such process
    expect(await withLock(dir, 'pod-c', 200, async () => 'ran')).toBe('ran');
  });

  it('waits for a live owner, then gives code 11 naming the lock', async () => {
    writeFileSync(join(dir, 'pod-d.lock'), `${process.pid}`); // a bare pid: an older plugin's
    expect(lockOwnerAlive(`${process.pid}`)).toBe(true);
    await expect(withLock(dir, 'pod-d', 100, async () => 'ran')).rejects.toMatchObject({
      code: 11,
      message: expect.stringContaining('pod-d.lock'),
    });
  });
});
