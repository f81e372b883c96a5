/**
 * Statistics for benchmarks on a noisy machine: the host moves vCPUs, so single figures swing
 * by 3x. Runs alternate the case under test with its reference within one run (A B A B ...),
 * and reports compare medians and the median of per-round ratios, never absolute times alone.
 */
import { must } from './must';

export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError('median of no values');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const hi = must(sorted[mid], 'middle value of the median');
  return sorted.length % 2 === 1 ? hi : (must(sorted[mid - 1], 'lower middle value') + hi) / 2;
}

/** Nearest-rank percentile, p in [0, 100]. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) throw new RangeError('percentile of no values');
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile ${p} is outside 0..100`);
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return must(sorted[rank - 1], `value of rank ${rank} of ${sorted.length}`);
}

/** An interval of order statistics around a median, and how often such an interval covers it. */
export interface MedianInterval {
  lo: number;
  hi: number;
  /** P(lo <= true median <= hi) for independent rounds, whatever their distribution */
  coverage: number;
}

/**
 * The distribution-free confidence interval of a median (order statistics; no assumption about
 * the rounds' distribution, only that they are independent): [x(k), x(n+1-k)] of the sorted
 * values covers the true median with probability 1 - 2 P(B <= k - 1), B ~ Binomial(n, 1/2).
 * The narrowest such interval with at least `confidence`; with too few values for that, the
 * whole range and the coverage it has (n = 4: 87.5 %).
 */
export function medianInterval(values: readonly number[], confidence = 0.9): MedianInterval {
  if (values.length === 0) throw new RangeError('medianInterval of no values');
  if (!(confidence > 0 && confidence < 1))
    throw new RangeError(`confidence ${confidence} is outside (0, 1)`);
  const x = [...values].sort((a, b) => a - b);
  const n = x.length;
  // coverageOf[k] = 1 - 2 P(B <= k - 1), B the number of values below the true median
  let pmf = 0.5 ** n; // P(B = 0)
  let below = 0; // P(B <= k - 1)
  const coverageOf: number[] = [];
  for (let k = 1; k <= Math.floor((n + 1) / 2); k++) {
    if (k > 1) pmf *= (n - k + 2) / (k - 1); // P(B = k - 1) from P(B = k - 2)
    below += pmf;
    coverageOf[k] = 1 - 2 * below;
  }
  let k = 1;
  const coverage = (i: number): number => must(coverageOf[i], `coverage of order statistic ${i}`);
  while (k + 1 < coverageOf.length && coverage(k + 1) >= confidence) k++;
  return {
    lo: must(x[k - 1], `order statistic ${k}`),
    hi: must(x[n - k], `order statistic ${n + 1 - k}`),
    coverage: Math.min(1, coverage(k)),
  };
}

/** "lo..hi (coverage %)", to two decimals and widened, never narrowed, by the rounding: the
 * lower end rounded down, the upper end up, the coverage down. */
export function formatInterval(i: MedianInterval): string {
  const down = (x: number): string => (Math.floor(x * 100 + 1e-9) / 100).toFixed(2);
  const up = (x: number): string => (Math.ceil(x * 100 - 1e-9) / 100).toFixed(2);
  return `${down(i.lo)}..${up(i.hi)} (${Math.floor(i.coverage * 100 + 1e-9)} %)`;
}

export interface Round {
  /** Measurement of the reference in this round (e.g. testpmd Mpps). */
  reference: number;
  /** Measurement of the case under test in the same round. */
  candidate: number;
}

export interface Comparison {
  rounds: number;
  referenceMedian: number;
  candidateMedian: number;
  /** Median over rounds of candidate/reference; robust to drift between rounds. */
  ratio: number;
  /** Smallest and largest per-round ratio, to show the spread. */
  ratioMin: number;
  ratioMax: number;
  /** The 90 % confidence interval of the ratio's median (medianInterval). */
  ratioInterval: MedianInterval;
}

export function compare(rounds: readonly Round[]): Comparison {
  if (rounds.length === 0) throw new RangeError('compare needs at least one round');
  const ratios = rounds.map((r) => (r.reference === 0 ? 0 : r.candidate / r.reference));
  return {
    rounds: rounds.length,
    referenceMedian: median(rounds.map((r) => r.reference)),
    candidateMedian: median(rounds.map((r) => r.candidate)),
    ratio: median(ratios),
    ratioMin: Math.min(...ratios),
    ratioMax: Math.max(...ratios),
    ratioInterval: medianInterval(ratios),
  };
}

/**
 * Runs reference and candidate alternately, swapping which goes first each round so that a
 * slow drift of the machine does not favour either.
 */
export async function alternate(
  rounds: number,
  reference: () => Promise<number>,
  candidate: () => Promise<number>,
): Promise<Round[]> {
  const out: Round[] = [];
  for (let i = 0; i < rounds; i++) {
    if (i % 2 === 0) {
      const r = await reference();
      const c = await candidate();
      out.push({ reference: r, candidate: c });
    } else {
      const c = await candidate();
      const r = await reference();
      out.push({ reference: r, candidate: c });
    }
  }
  return out;
}

/** A plain-text table: first row is the header; columns padded to their widest cell. */
export function formatTable(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows)
    row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  const line = (row: readonly string[]): string =>
    row
      .map((cell, i) => cell.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  const [header, ...body] = rows;
  if (!header) return '';
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

/** The rate `mpps` becomes when every packet costs `cycles` more TSC cycles (at `tscHz`). */
export function withExtraCycles(mpps: number, cycles: number, tscHz: number): number {
  return tscHz / (tscHz / (mpps * 1e6) + cycles) / 1e6;
}
