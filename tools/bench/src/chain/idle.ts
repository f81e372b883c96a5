/**
 * The CPU an idle chain costs: user + system time of each process (all its threads: an OVS
 * PMD thread counts in ovs-vswitchd) from /proc/<pid>/stat over a window, as a percentage of
 * one core.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface ProcessRef {
  name: string;
  pid: number;
}

export interface ProcessCpu extends ProcessRef {
  /** CPU time over the window as a percentage of one core (100 = one core busy). */
  cpuPercent: number;
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

/** utime + stime of a process in seconds (all threads), or undefined if it is gone. */
export function cpuSeconds(pid: number): number | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name may hold spaces and parentheses: fields start after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // Fields 14 and 15 of stat(5) are utime and stime; here indexes 11 and 12.
  return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond();
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function measureIdleCost(
  processes: readonly ProcessRef[],
  seconds: number,
): Promise<IdleCost> {
  const before = processes.map((p) => cpuSeconds(p.pid));
  const t0 = process.hrtime.bigint();
  await sleep(seconds * 1000);
  const after = processes.map((p) => cpuSeconds(p.pid));
  const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
  const rows = processes.map((p, i) => {
    const a = before[i];
    const b = after[i];
    if (a === undefined || b === undefined) throw new Error(`process ${p.name} (${p.pid}) is gone`);
    return { ...p, cpuPercent: ((b - a) / elapsed) * 100 };
  });
  return {
    seconds: elapsed,
    processes: rows,
    totalPercent: rows.reduce((s, r) => s + r.cpuPercent, 0),
  };
}
