import { describe, expect, it } from 'vitest';

import {
  checkHits,
  expectedCtAclHits,
  expectedHits,
  judgeOvsRatio,
  ovsSteadiness,
  upcallsIn,
} from './checks';
import { hitsOver, markSeen } from './trace';

/** The replay packet by packet: what the hit counters must say. */
function naive(expect: Int32Array, bins: number, from: number, count: number): Float64Array {
  const out = new Float64Array(bins);
  for (let k = 0; k < count; k++) {
    const e = expect[(from + k) % expect.length]!;
    if (e >= 0) out[e]!++;
  }
  return out;
}

describe('hit-count checks', () => {
  const expect5 = Int32Array.from([0, 2, 1, 2, -1, 3, 2]);

  it('hitsOver counts whole laps and the part of one, from any offset', () => {
    for (const [from, count] of [
      [0, 0],
      [0, 7],
      [3, 5],
      [6, 100],
      [123, 45],
    ] as const)
      expect(Array.from(hitsOver(expect5, 4, from, count))).toEqual(
        Array.from(naive(expect5, 4, from, count)),
      );
  });

  it('expectedHits sums windows of a case', () => {
    const w = [
      { from: 2, count: 9 },
      { from: 40, count: 3 },
    ];
    const sum = naive(expect5, 4, 2, 9).map((v, i) => v + naive(expect5, 4, 40, 3)[i]!);
    expect(Array.from(expectedHits(expect5, 4, w))).toEqual(Array.from(sum));
  });

  it('behind conntrack, a permit rule counts each flow once and a deny rule every packet', () => {
    // bins 0 and 2 permit, 1 and 3 deny; flows at positions 0..6
    const { hits, flows, deniedFlows } = expectedCtAclHits(
      expect5,
      [true, false, true, false],
      [
        { from: 0, count: 3 },
        { from: 10, count: 30 },
      ],
    );
    // every position was seen: bin 0 has one flow, bin 2 three flows
    expect(flows).toBe(4);
    expect(deniedFlows).toBe(2); // positions 2 (bin 1) and 5 (bin 3); position 4 has no bin
    const all = naive(expect5, 4, 0, 3).map((v, i) => v + naive(expect5, 4, 10, 30)[i]!);
    expect(Array.from(hits)).toEqual([1, all[1], 3, all[3]]);
    // a window that saw only positions 1 and 2: one flow of bin 2, one of bin 1 (deny)
    const part = expectedCtAclHits(expect5, [true, false, true, false], [{ from: 1, count: 2 }]);
    expect(Array.from(part.hits)).toEqual([0, 1, 1, 0]);
    expect([part.flows, part.deniedFlows]).toEqual([1, 1]);
  });

  it('markSeen wraps around the trace', () => {
    const s = new Uint8Array(5);
    markSeen(s, 3, 3);
    expect(Array.from(s)).toEqual([1, 0, 0, 1, 1]);
  });

  it('checkHits reports the bins that differ', () => {
    expect(checkHits([1, 2, 3], [1, 2, 3])).toMatchObject({ ok: true, binsHit: 3, mismatched: 0 });
    const bad = checkHits([1, 2, 3, 0], [1, 5, 3, 1]);
    expect(bad).toMatchObject({ ok: false, mismatched: 2 });
    expect(bad.first).toEqual([
      { index: 1, expected: 2, actual: 5 },
      { index: 3, expected: 0, actual: 1 },
    ]);
  });
});

describe("OVS's steady state", () => {
  it('adds up the upcalls of every PMD in pmd-stats-show, successful and failed', () => {
    const stats = [
      'pmd thread numa_id 0 core_id 1:',
      '  packets received: 6542848',
      '  megaflow hits: 6530000',
      '  miss with success upcall: 12840',
      '  miss with failed upcall: 8',
      'pmd thread numa_id 0 core_id 3:',
      '  miss with success upcall: 2',
      '  miss with failed upcall: 0',
    ].join('\n');
    expect(upcallsIn(stats)).toBe(12_850);
    expect(upcallsIn('main thread:\n  packets received: 0\n')).toBe(0);
  });

  it('calls a case unsteady when most windows had upcalls or ran far under its warm-up rate', () => {
    const mpps = [0.7, 0.68, 0.71, 0.69, 0.7];
    expect(ovsSteadiness([0, 0, 3, 0, 0], mpps, 0.7)).toEqual({
      windows: 5,
      windowsWithUpcalls: 1,
      warmupMpps: 0.7,
      ofWarmup: 1,
      steady: true,
    });
    expect(ovsSteadiness([5, 0, 3, 0], mpps.slice(0, 4), 0.7).steady).toBe(true);
    expect(ovsSteadiness([5, 1, 3, 0, 0], mpps, 0.7).steady).toBe(false);
    // one run's 10,000-rule case: 0.04-0.08 Mpps in its windows against 0.63 at its warm-up
    const collapsed = ovsSteadiness([0, 0, 0, 0, 0], [0.04, 0.05, 0.06, 0.04, 0.08], 0.63);
    expect(collapsed.steady).toBe(false);
    expect(collapsed.ofWarmup).toBeCloseTo(0.05 / 0.63, 6);
    // conntrack's windows at a third of its warm-up: slower, still measured
    expect(ovsSteadiness([0, 0, 0, 0, 0], [0.09, 0.13, 0.07, 0.12, 0.04], 0.29).steady).toBe(true);
  });

  it('judges a ratio to OVS only when OVS ran its fast path', () => {
    expect(judgeOvsRatio(28, 5, { steady: true, windows: 5, windowsWithUpcalls: 0 })).toEqual({
      met: true,
    });
    expect(judgeOvsRatio(3, 4, undefined)).toEqual({ met: false });
    expect(judgeOvsRatio(280, 4, { steady: false, windows: 5, windowsWithUpcalls: 5 })).toEqual({
      unsteady: 'OVS had upcalls in 5 of 5 windows',
    });
    expect(
      judgeOvsRatio(280, 4, { steady: false, windows: 5, windowsWithUpcalls: 0, ofWarmup: 0.079 }),
    ).toEqual({ unsteady: 'OVS ran at 0.08 of its warm-up rate' });
  });
});
