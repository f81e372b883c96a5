/**
 * How long this machine takes a CPU away from a thread that wants it: one process per CPU,
 * pinned with taskset, reads the clock in a tight loop for a few seconds and keeps every gap
 * between two reads longer than 50 µs. A packet in flight on that CPU waits as long as such a
 * gap, whatever the NFs do, so a chain's tail latency cannot be shown below what this finds
 * (on a VM the host's scheduling shows here). The loop uses performance.now(), which allocates
 * nothing, so the spinner's own garbage collection does not count as a stall.
 */
import { execFile } from 'node:child_process';
import { cpus } from 'node:os';

export interface CpuStalls {
  cpu: number;
  seconds: number;
  /** The longest gap, µs. */
  maxUs: number;
  over100Us: number;
  over500Us: number;
  over1Ms: number;
  /** All gaps over 100 µs together, ms. */
  stalledMs: number;
}

/** Gaps below this are not kept by the spinner (the loop itself, timer interrupts). */
export const KEPT_GAP_US = 50;

/** The figures of one CPU from the gaps (µs) its spinner kept over `seconds`. */
export function summarizeGaps(cpu: number, seconds: number, gapsUs: readonly number[]): CpuStalls {
  let maxUs = 0;
  let over100Us = 0;
  let over500Us = 0;
  let over1Ms = 0;
  let stalledUs = 0;
  for (const g of gapsUs) {
    if (!Number.isFinite(g) || g < 0) throw new RangeError(`a gap of ${g} µs`);
    if (g > maxUs) maxUs = g;
    if (g > 100) {
      over100Us++;
      stalledUs += g;
    }
    if (g > 500) over500Us++;
    if (g > 1000) over1Ms++;
  }
  return { cpu, seconds, maxUs, over100Us, over500Us, over1Ms, stalledMs: stalledUs / 1000 };
}

/** The spinner, run by `node -e` pinned to one CPU: prints the kept gaps (µs) as JSON. */
export function spinnerSource(seconds: number): string {
  return [
    `const end = performance.now() + ${seconds * 1000};`,
    `const gaps = [];`,
    `let prev = performance.now();`,
    `while (prev < end) {`,
    `  const now = performance.now();`,
    `  if (now - prev > ${KEPT_GAP_US / 1000}) gaps.push(Math.round((now - prev) * 1000));`,
    `  prev = now;`,
    `}`,
    `process.stdout.write(JSON.stringify(gaps));`,
  ].join('\n');
}

function spinOn(cpu: number, seconds: number): Promise<CpuStalls> {
  return new Promise((resolve, reject) => {
    execFile(
      'taskset',
      ['-c', String(cpu), process.execPath, '-e', spinnerSource(seconds)],
      { timeout: (seconds + 30) * 1000, maxBuffer: 64 << 20 },
      (err, stdout) => {
        if (err) return reject(new Error(`stall probe on CPU ${cpu}: ${err.message}`));
        try {
          resolve(summarizeGaps(cpu, seconds, JSON.parse(stdout) as number[]));
        } catch (e) {
          reject(new Error(`stall probe on CPU ${cpu}: ${(e as Error).message}`));
        }
      },
    );
  });
}

/** Spins on every CPU at once (default: all of this machine's) for `seconds`. */
export function measureCpuStalls(
  seconds: number,
  cpuList: readonly number[] = cpus().map((_, i) => i),
): Promise<CpuStalls[]> {
  if (!(seconds > 0)) throw new RangeError(`stall probe: seconds must be > 0, got ${seconds}`);
  return Promise.all(cpuList.map((cpu) => spinOn(cpu, seconds)));
}
