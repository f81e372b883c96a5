import { describe, expect, it } from 'vitest';
import { GENERATOR_HEADROOM, headroom, nfBound } from './headroom';

describe('vhost topology: the generator headroom check', () => {
  it('is the smallest tried/taken ratio over the parts', () => {
    // parts from a run on the 2-core VM: fast phase, then the generator's slow phase
    expect(headroom([{ sent: 100, dropped: 150 }])).toBeCloseTo(2.5, 9);
    expect(
      headroom([
        { sent: 100, dropped: 150 },
        { sent: 80, dropped: 8 },
      ]),
    ).toBeCloseTo(1.1, 9);
    expect(headroom([{ sent: 0, dropped: 5 }])).toBe(Infinity);
    expect(() => headroom([])).toThrow(RangeError);
  });

  it('counts a round only when both windows had the headroom', () => {
    const r = { reference: 15, candidate: 12, referenceHeadroom: 2, candidateHeadroom: 2 };
    expect(nfBound(r)).toBe(true);
    expect(nfBound({ ...r, candidateHeadroom: GENERATOR_HEADROOM - 0.01 })).toBe(false);
    expect(nfBound({ ...r, referenceHeadroom: 1.1 })).toBe(false);
    expect(nfBound({ ...r, referenceHeadroom: GENERATOR_HEADROOM })).toBe(true);
  });
});
