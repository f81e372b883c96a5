import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { lockHelperPath, withLock } from './lock';

/** Resolves once `check` holds; fails naming `what` after `ms` (a deadline, never a fixed sleep). */
async function until(check: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('per-pod lock (flock through the native helper)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flcni-lock-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('finds its helper, the native executable', () => {
    expect(existsSync(lockHelperPath())).toBe(true);
  });

  it('serialises holders in one process (the daemon), and leaves no lock file behind', async () => {
    const events: string[] = [];
    let inside = 0;
    let overlapped = false;
    const hold = (name: string) =>
      withLock(dir, 'pod-a', 5000, async () => {
        if (++inside > 1) overlapped = true;
        events.push(`${name}+`);
        // Yield to the event loop so another holder could run now if the lock let it.
        for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
        events.push(`${name}-`);
        inside--;
      });
    await Promise.all(['a', 'b', 'c', 'd'].map(hold));
    expect(overlapped).toBe(false);
    expect(events).toHaveLength(8);
    for (let i = 0; i < 8; i += 2)
      expect(events[i]!.slice(0, -1)).toBe(events[i + 1]!.slice(0, -1));
    expect(readdirSync(dir)).toEqual([]);
  });

  it('waits for a holder in another process, then gives code 11 naming the lock', async () => {
    // util-linux flock(1) holds the same file in another process until its stdin closes.
    const holder = spawn('flock', [join(dir, 'pod-d.lock'), 'cat'], {
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    try {
      // Until it holds it: a non-blocking try by a third process fails.
      await until(
        () => spawnSync('flock', ['-n', join(dir, 'pod-d.lock'), 'true']).status === 1,
        'the other process to hold the lock',
      );
      const started = Date.now();
      await expect(withLock(dir, 'pod-d', 300, async () => 'ran')).rejects.toMatchObject({
        code: 11,
        message: expect.stringContaining('pod-d.lock'),
      });
      expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    } finally {
      holder.stdin.end();
      await new Promise((r) => holder.once('close', r));
    }
    // Released by the other process: taken at once.
    expect(await withLock(dir, 'pod-d', 1000, async () => 'ran')).toBe('ran');
  });

  it('releases the lock when the function throws', async () => {
    await expect(
      withLock(dir, 'pod-e', 1000, async () => {
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(await withLock(dir, 'pod-e', 100, async () => 'again')).toBe('again');
  });
});
