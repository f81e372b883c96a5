// Child processes of the node: started detached (they outlive a CLI invocation, as containers
// outlive kubectl), logged to a file each, and stopped by pid only after checking that the pid
// still runs the command we started.
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { ProcessRecord } from './state';

export interface StartOptions {
  argv: string[];
  log: string;
  env?: NodeJS.ProcessEnv;
  /** Run inside this network namespace (`ip netns exec`). */
  netns?: string;
  /** Word of the command line that identifies it later (default argv's last path part). */
  marker?: string;
}

export function startProcess(opts: StartOptions): ProcessRecord {
  mkdirSync(dirname(opts.log), { recursive: true });
  const argv = opts.netns ? ['ip', 'netns', 'exec', opts.netns, ...opts.argv] : opts.argv;
  const out = openSync(opts.log, 'a');
  const child = spawn(argv[0]!, argv.slice(1), {
    detached: true,
    stdio: ['ignore', out, out],
    env: opts.env ?? process.env,
  });
  closeSync(out);
  child.unref();
  if (child.pid === undefined) throw new Error(`cannot start ${argv.join(' ')}`);
  const marker = opts.marker ?? opts.argv.find((a) => a.includes('/')) ?? opts.argv[0]!;
  return { pid: child.pid, marker, log: opts.log };
}

/** True when the pid runs and its command line still contains the record's marker. */
export function isAlive(rec: ProcessRecord | undefined): boolean {
  if (!rec) return false;
  try {
    const cmdline = readFileSync(`/proc/${rec.pid}/cmdline`, 'utf8');
    if (!cmdline.includes(rec.marker)) return false;
    const stat = readFileSync(`/proc/${rec.pid}/stat`, 'utf8');
    // A zombie has exited; only its parent's wait is missing.
    return !/\) Z /.test(stat);
  } catch {
    return false;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** SIGTERM, wait up to graceMs, then SIGKILL. Resolves when the process is gone. */
export async function stopProcess(rec: ProcessRecord | undefined, graceMs = 10_000): Promise<void> {
  if (!isAlive(rec)) return;
  const pid = rec!.pid;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!isAlive(rec)) return;
    await sleep(50);
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return;
  }
  for (let i = 0; i < 100 && isAlive(rec); i++) await sleep(20);
}

/** Resolves when the process has exited (polls; the node may not be its parent). */
export async function waitForExit(rec: ProcessRecord, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive(rec)) return true;
    await sleep(50);
  }
  return !isAlive(rec);
}
