import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import type { ChainBenchResult } from './bench';
import { renderChainBench } from './report';
import { KEPT_GAP_US, measureCpuStalls, spinnerSource, summarizeGaps } from './stalls';

describe('stall probe', () => {
  it('counts each gap in the bands it exceeds, the stalled time from gaps over 100 µs', () => {
    const s = summarizeGaps(1, 3, [60, 100, 101, 500, 501, 1000, 1001, 4300]);
    expect(s).toEqual({
      cpu: 1,
      seconds: 3,
      maxUs: 4300,
      over100Us: 6, // 101, 500, 501, 1000, 1001, 4300
      over500Us: 4, // 501, 1000, 1001, 4300
      over1Ms: 2, // 1001, 4300
      stalledMs: (101 + 500 + 501 + 1000 + 1001 + 4300) / 1000,
    });
    expect(summarizeGaps(0, 1, [])).toMatchObject({ maxUs: 0, over100Us: 0, stalledMs: 0 });
    expect(() => summarizeGaps(0, 1, [-1])).toThrow(RangeError);
  });

  it('the spinner keeps only gaps over KEPT_GAP_US, a sleep it is made to take among them', () => {
    // The spinner's loop with a 3 ms busy-free pause put in: the pause must come out as a gap.
    const src = spinnerSource(0.2).replace(
      '  const now = performance.now();',
      '  if (!globalThis.paused) { globalThis.paused = true; Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 3); }\n  const now = performance.now();',
    );
    const gaps = JSON.parse(
      execFileSync(process.execPath, ['-e', src], { encoding: 'utf8' }),
    ) as number[];
    expect(gaps.every((g) => g >= KEPT_GAP_US)).toBe(true);
    expect(Math.max(...gaps)).toBeGreaterThanOrEqual(2900);
  });

  it('spins on each CPU asked for, pinned, and reports it', async () => {
    const r = await measureCpuStalls(0.3, [0]);
    expect(r).toHaveLength(1);
    expect(r[0]).toMatchObject({ cpu: 0, seconds: 0.3 });
    expect(r[0]!.maxUs).toBeGreaterThanOrEqual(0);
    expect(() => measureCpuStalls(0)).toThrow(RangeError);
  });

  it('the report has a row per CPU', () => {
    const r = {
      chain: 'sim',
      at: 'now',
      search: {
        ndr: { lowerPps: 1, upperPps: 2 },
        pdr: { lowerPps: 1, upperPps: 2 },
        trials: [],
      },
      latency: [],
      counters: { hops: [], drops: {} },
      stalls: [summarizeGaps(0, 3, [700, 1200]), summarizeGaps(1, 3, [])],
    } as unknown as ChainBenchResult;
    const text = renderChainBench(r);
    expect(text).toMatch(/CPU 0, 3 s\s+1200\s+2\s+2\s+1\s+1\.9/);
    expect(text).toMatch(/CPU 1, 3 s\s+0\s+0\s+0\s+0\s+0\.0/);
  });
});
