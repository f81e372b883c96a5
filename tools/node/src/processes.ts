// Child processes of the node: started detached (they outlive a CLI invocation, as containers
// outlive kubectl), logged to a file each, and stopped by pid only after checking that the pid
// still runs the command we started.
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { ProcessRecord } from './state';

export interface StartOptions {
  argv: string[];
  log: string;
  env?: NodeJS.ProcessEnv;
  /** Run inside this network namespace (`ip netns exec`). */
  netns?: string;
  /**
   * An entry of the command line that identifies it later (default: argv's first path, else
   * argv[0]).
   */
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
  // Not reaped before the event loop runs, so its /proc entry is there.
  const startTime = procStat(child.pid)?.startTime;
  return { pid: child.pid, marker, log: opts.log, ...(startTime ? { startTime } : {}) };
}

/** A process's state letter and start time (field 22 of /proc/<pid>/stat); undefined if gone. */
function procStat(pid: number): { state: string; startTime: number } | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // Fields 3.. follow the command name, which is in parentheses and may hold spaces and ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const startTime = Number(fields[22 - 3]);
  return fields[0] && Number.isInteger(startTime) ? { state: fields[0], startTime } : undefined;
}

/** When the process started (clock ticks after boot), to tell it from a later one with its pid. */
export const procStartTime = (pid: number): number | undefined => procStat(pid)?.startTime;

/**
 * True when the pid runs the process recorded: the same start time (when recorded) and the
 * marker as a whole entry of its command line (a bare name also as the start of the executable's
 * name), so a reused pid is never taken for it.
 */
export function isAlive(rec: ProcessRecord | undefined): boolean {
  // An empty marker names nothing (and every command line ends in an empty entry).
  if (!rec?.marker) return false;
  const stat = procStat(rec.pid);
  // A zombie has exited; only its parent's wait is missing.
  if (!stat || stat.state === 'Z') return false;
  if (rec.startTime !== undefined && stat.startTime !== rec.startTime) return false;
  let cmdline: string;
  try {
    cmdline = readFileSync(`/proc/${rec.pid}/cmdline`, 'utf8');
  } catch {
    return false;
  }
  // An entry matches whole; a bare name (ovs-vswitchd) also the start of the executable's name,
  // as Debian installs ovs-vswitchd-dpdk.
  const args = cmdline.split('\0');
  return (
    args.some((a) => a === rec.marker) ||
    (!rec.marker.includes('/') && basename(args[0] ?? '').startsWith(rec.marker))
  );
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
