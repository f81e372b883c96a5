/**
 * The CPU an idle chain costs: user + system time of each process (all its threads: an OVS
 * PMD thread counts in ovs-vswitchd) from /proc/<pid>/stat over a window, as a percentage of
 * one core.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';

import { must } from '../must';

export interface ProcessRef {
  name: string;
  pid: number;
}

export interface ProcessCpu extends ProcessRef {
  /** CPU time over the window as a percentage of one core (100 = one core busy). */
  cpuPercent: number;
  /** The threads that used the most (≥ 0.1 %), by their kernel name: where the cost is. */
  threads: { name: string; cpuPercent: number }[];
}

export interface IdleCost {
  seconds: number;
  processes: ProcessCpu[];
  totalPercent: number;
}

let clkTck: number | undefined;
function ticksPerSecond(): number {
  if (clkTck === undefined) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

/** The name and utime + stime (seconds) in a /proc stat file, or undefined if it is gone. */
function readStat(path: string): { name: string; cpu: number } | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  // The command name may hold spaces and parentheses: fields start after the last ')'.
  const close = text.lastIndexOf(')');
  const fields = text.slice(close + 2).split(' ');
  // Fields 14 and 15 of stat(5) are utime and stime; here indexes 11 and 12.
  return {
    name: text.slice(text.indexOf('(') + 1, close),
    cpu: (Number(fields[11]) + Number(fields[12])) / ticksPerSecond(),
  };
}

/** utime + stime of a process in seconds (all threads), or undefined if it is gone. */
export function cpuSeconds(pid: number): number | undefined {
  return readStat(`/proc/${pid}/stat`)?.cpu;
}

/** Each thread's name and CPU seconds, by thread id. */
function threadSeconds(pid: number): Map<string, { name: string; cpu: number }> {
  const out = new Map<string, { name: string; cpu: number }>();
  let tids: string[] = [];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    const st = readStat(`/proc/${pid}/task/${tid}/stat`);
    if (st) out.set(tid, st);
  }
  return out;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function measureIdleCost(
  processes: readonly ProcessRef[],
  seconds: number,
): Promise<IdleCost> {
  const before = processes.map((p) => cpuSeconds(p.pid));
  const threadsBefore = processes.map((p) => threadSeconds(p.pid));
  const t0 = process.hrtime.bigint();
  await sleep(seconds * 1000);
  const after = processes.map((p) => cpuSeconds(p.pid));
  const threadsAfter = processes.map((p) => threadSeconds(p.pid));
  const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
  const rows = processes.map((p, i) => {
    const a = before[i];
    const b = after[i];
    if (a === undefined || b === undefined) throw new Error(`process ${p.name} (${p.pid}) is gone`);
    const threadsBeforeHere = must(threadsBefore[i], `threads of ${p.name} before`);
    const threads = [...must(threadsAfter[i], `threads of ${p.name} after`)]
      .map(([tid, t]) => ({
        name: t.name,
        cpuPercent: ((t.cpu - (threadsBeforeHere.get(tid)?.cpu ?? 0)) / elapsed) * 100,
      }))
      .filter((t) => t.cpuPercent >= 0.1)
      .sort((x, y) => y.cpuPercent - x.cpuPercent)
      .slice(0, 3);
    return { ...p, cpuPercent: ((b - a) / elapsed) * 100, threads };
  });
  return {
    seconds: elapsed,
    processes: rows,
    totalPercent: rows.reduce((s, r) => s + r.cpuPercent, 0),
  };
}
