import { describe, expect, it } from 'vitest';
import {
  alternate,
  compare,
  formatInterval,
  formatTable,
  median,
  medianInterval,
  percentile,
} from './stats';

describe('bench statistics', () => {
  it('median of odd and even counts', () => {
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(() => median([])).toThrow(RangeError);
  });

  it('nearest-rank percentiles', () => {
    const v = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(v, 50)).toBe(50);
    expect(percentile(v, 99)).toBe(99);
    expect(percentile(v, 100)).toBe(100);
    expect(percentile([7], 99)).toBe(7);
    expect(() => percentile(v, 101)).toThrow(/outside/);
  });

  it('compares by the median of per-round ratios, robust to one noisy round', () => {
    const c = compare([
      { reference: 10, candidate: 9.5 },
      { reference: 16, candidate: 15.2 },
      { reference: 2, candidate: 19 }, // the host moved a vCPU mid-round
    ]);
    expect(c.ratio).toBeCloseTo(0.95);
    expect(c.referenceMedian).toBe(10);
    expect(c.ratioMax).toBeCloseTo(9.5);
  });

  it('alternates which side runs first each round', async () => {
    const order: string[] = [];
    await alternate(
      3,
      async () => (order.push('ref'), 1),
      async () => (order.push('cand'), 1),
    );
    expect(order).toEqual(['ref', 'cand', 'cand', 'ref', 'ref', 'cand']);
  });

  it('formats an aligned table', () => {
    expect(
      formatTable([
        ['case', 'Mpps'],
        ['forward', '15.1'],
      ]),
    ).toBe('case     Mpps\n-------  ----\nforward  15.1');
  });
});

describe('the confidence interval of a median', () => {
  it('takes the order statistics whose binomial coverage reaches the confidence', () => {
    // n = 8: [x(1), x(8)] covers with 1 - 2/256, [x(2), x(7)] with 1 - 18/256 = 0.9297,
    // [x(3), x(6)] with only 1 - 74/256 = 0.711
    const v = [0.86, 0.79, 0.9, 0.85, 0.88, 0.83, 0.87, 0.84];
    const i = medianInterval(v, 0.9);
    expect(i.lo).toBe(0.83);
    expect(i.hi).toBe(0.88);
    expect(i.coverage).toBeCloseTo(1 - 18 / 256, 12);
    // at 70 % the next pair in is enough
    expect(medianInterval(v, 0.7)).toMatchObject({ lo: 0.84, hi: 0.87 });
  });

  it('gives the whole range and its lower coverage when there are too few values', () => {
    const i = medianInterval([3, 1, 2, 4], 0.9);
    expect(i).toMatchObject({ lo: 1, hi: 4 });
    expect(i.coverage).toBeCloseTo(1 - 2 / 16, 12);
    expect(medianInterval([5], 0.9)).toEqual({ lo: 5, hi: 5, coverage: 0 });
    expect(() => medianInterval([], 0.9)).toThrow(RangeError);
    expect(() => medianInterval([1, 2], 1)).toThrow(RangeError);
  });

  it('matches the binomial tables for 13 rounds', () => {
    // n = 13: P(B <= 2) = 92/8192, P(B <= 3) = 378/8192, P(B <= 4) = 1093/8192
    const v = Array.from({ length: 13 }, (_, j) => j + 1);
    const i = medianInterval(v, 0.9);
    expect(i).toMatchObject({ lo: 4, hi: 10 });
    expect(i.coverage).toBeCloseTo(1 - (2 * 378) / 8192, 12);
  });

  it('is part of every comparison', () => {
    const c = compare([
      { reference: 10, candidate: 8 },
      { reference: 10, candidate: 9 },
      { reference: 10, candidate: 8.5 },
      { reference: 10, candidate: 8.8 },
      { reference: 10, candidate: 8.2 },
    ]);
    // n = 5: [x(1), x(5)] covers with 1 - 2/32 = 0.9375
    expect(c.ratioInterval.lo).toBeCloseTo(0.8, 12);
    expect(c.ratioInterval.hi).toBeCloseTo(0.9, 12);
    expect(c.ratioInterval.coverage).toBeCloseTo(0.9375, 12);
  });
});

describe('an interval as text', () => {
  it('rounds its ends outwards and its coverage down, so the text never claims more', () => {
    expect(formatInterval({ lo: 0.8499, hi: 0.8801, coverage: 0.9297 })).toBe('0.84..0.89 (92 %)');
    // values that are exact in two decimals stay as they are
    expect(formatInterval({ lo: 0.86, hi: 0.87, coverage: 0.9 })).toBe('0.86..0.87 (90 %)');
  });
});
