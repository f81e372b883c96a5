/**
 * Command-line values the benchmarks share: a positive integer flag, and the measurement window
 * flags of the DPDK benchmarks (src/dpdk-bench.ts and src/nfbound/main.ts): --rounds,
 * --warmup-ms, --window-ms and --burst.
 */

/** `raw`, the value after `flag`, as a positive integer; else an error naming both. */
export function positiveInt(flag: string, raw: string | undefined): number {
  const n = Number(raw);
  if (raw === undefined || raw.trim() === '' || !Number.isInteger(n) || n <= 0)
    throw new Error(`${flag} needs a positive integer, got ${raw}`);
  return n;
}

/** How each round is measured: rounds, warm-up and window lengths, the burst size. */
export interface WindowOptions {
  rounds: number;
  warmupMs: number;
  windowMs: number;
  burst: number;
}

const WINDOW_FLAGS: Readonly<Record<string, keyof WindowOptions>> = {
  '--rounds': 'rounds',
  '--warmup-ms': 'warmupMs',
  '--window-ms': 'windowMs',
  '--burst': 'burst',
};

/**
 * When `flag` is a window flag, sets it on `o` from `raw` (the next argument) and returns true:
 * the caller then skips `raw`. Returns false for any other flag.
 */
export function windowFlag(o: WindowOptions, flag: string, raw: string | undefined): boolean {
  const key = Object.hasOwn(WINDOW_FLAGS, flag) ? WINDOW_FLAGS[flag] : undefined;
  if (key === undefined) return false;
  o[key] = positiveInt(flag, raw);
  return true;
}
