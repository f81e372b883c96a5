import { describe, expect, it } from 'vitest';
import { alternate, compare, formatTable, median, percentile } from './stats';

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
