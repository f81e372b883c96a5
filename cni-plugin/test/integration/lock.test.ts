import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { withLock } from '../../src/lock';
import { waitFor } from '../support/wait';

const HOLDER = join(__dirname, '..', 'support', 'lock-holder.cjs');

interface Holder {
  child: ChildProcess;
  out(): string;
  exit: Promise<number | null>;
}

/** Starts a lock holder, in a pid namespace of its own when `ownPidNamespace` (needs root). */
function startHolder(args: string[], ownPidNamespace: boolean): Holder {
  const argv = [process.execPath, HOLDER, ...args];
  // --kill-child: the holder dies with unshare, so a failed test leaves nothing running.
  const child = ownPidNamespace
    ? spawn('unshare', ['--pid', '--fork', '--kill-child', ...argv], {
        stdio: ['ignore', 'pipe', 'inherit'],
      })
    : spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  const exit = new Promise<number | null>((r) => child.once('close', (code) => r(code)));
  return { child, out: () => out, exit };
}

// The daemon runs in a container and the in-process fallback on the host: they number pids in
// different pid namespaces, and the pod lock must hold across them.
describe('pod lock across pid namespaces (integration, root)', () => {
  const base = `/tmp/flcni-lockns-${process.pid}`;
  const holders: Holder[] = [];
  mkdirSync(base, { recursive: true });
  afterEach(async () => {
    for (const h of holders.splice(0)) {
      h.child.kill('SIGKILL');
      await h.exit;
    }
  });
  afterAll(() => rmSync(base, { recursive: true, force: true }));

  it('holders in two pid namespaces and on the host never hold one pod lock at once', async () => {
    const lockDir = join(base, 'locks-a');
    const marker = join(base, 'inside');
    const args = ['loop', lockDir, 'ns_pod', '40', marker];
    holders.push(startHolder(args, true), startHolder(args, true), startHolder(args, false));
    const codes = await Promise.all(holders.map((h) => h.exit));
    const outs = holders.map((h) => h.out());
    // Both namespaced holders are pid 1 in their own namespace: pids say nothing about owners.
    expect(outs[0]).toMatch(/^pid 1\n/);
    expect(outs[1]).toMatch(/^pid 1\n/);
    for (const out of outs) expect(out).not.toContain('overlap');
    expect(codes).toEqual([0, 0, 0]);
    for (const out of outs) expect(out).toContain('done 40');
  }, 120_000);

  it('a holder in another pid namespace killed with SIGKILL releases the lock at once', async () => {
    const lockDir = join(base, 'locks-b');
    const h = startHolder(['hold', lockDir, 'ns_pod'], true);
    holders.push(h);
    await waitFor(() => h.out().includes('held'), 'the holder to take the lock');
    // Held: another taker times out.
    await expect(withLock(lockDir, 'ns_pod', 100, async () => 'ran')).rejects.toMatchObject({
      code: 11,
    });
    // SIGKILL the holder itself (unshare's child, pid 1 inside), then wait for it to be gone.
    const children = readFileSync(`/proc/${h.child.pid}/task/${h.child.pid}/children`, 'utf8');
    const holderPid = Number(children.trim().split(/\s+/)[0]);
    expect(holderPid).toBeGreaterThan(1);
    process.kill(holderPid, 'SIGKILL');
    await h.exit;
    const started = Date.now();
    expect(await withLock(lockDir, 'ns_pod', 1000, async () => 'ran')).toBe('ran');
    expect(Date.now() - started).toBeLessThan(1000);
  }, 60_000);
});
