import { describe, expect, it } from 'vitest';
import {
  abRounds,
  countedRounds,
  fastPhase,
  GENERATOR_HEADROOM,
  headroom,
  nfBound,
  PHASE_MIN_SAMPLES,
  REF_PHASE,
} from './headroom';

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

describe('vhost topology: the rounds that count', () => {
  const round = (reference: number, candidate: number, room = 2) => ({
    reference,
    candidate,
    referenceHeadroom: room,
    candidateHeadroom: room,
  });

  it('drops windows of a slow phase, seen in the reference, and windows without headroom', () => {
    // the run: the reference at about 15 Mpps in its fast phase, 6.5 in the phase where every
    // NF sits at that rate whatever its work
    const acl = [round(15, 12.6), round(6.5, 6.4), round(14.8, 12.4), round(15.1, 15, 1.1)];
    const fwd = [round(15.2, 16), round(14.9, 15.8), round(6.4, 6.5)];
    const counted = countedRounds([acl, fwd], acl);
    expect(counted.map((x) => x.candidate)).toEqual([12.6, 12.4]);
    expect(countedRounds([acl, fwd], fwd).map((x) => x.candidate)).toEqual([16, 15.8]);
  });

  it("drops a case's window of a slow phase that the reference's window did not show", () => {
    // the AMD VM's 13:39 run: the ACL case at 12-13 Mpps, once at 5.9 with the generator still
    // trying 1.2x (the slow phase fell on the case's window only)
    const acl = [round(14.2, 12.4), round(14.8, 13.5), round(12.5, 5.9), round(14.4, 12.7)];
    expect(countedRounds([acl], acl).map((x) => x.candidate)).toEqual([12.4, 13.5, 12.7]);
    // at REF_PHASE of its own 90th percentile (13.5) it counts, just below it does not
    const edge = [
      ...acl.slice(0, 2),
      round(14, REF_PHASE * 13.5),
      round(14, REF_PHASE * 13.5 - 0.01),
    ];
    expect(countedRounds([edge], edge)).toHaveLength(3);
  });

  it("counts the Intel VM's rounds: the generator trying 1.24-1.39x, no slow phase", () => {
    // stop 40's first run, the ACL case: every window NF-bound by the 1.2x rule
    const acl = [
      { reference: 17.35, candidate: 13.08, referenceHeadroom: 1.29, candidateHeadroom: 1.88 },
      { reference: 17.53, candidate: 13.65, referenceHeadroom: 1.32, candidateHeadroom: 1.83 },
      { reference: 17.18, candidate: 13.09, referenceHeadroom: 1.24, candidateHeadroom: 1.7 },
    ];
    expect(countedRounds([acl], acl)).toHaveLength(3);
    expect(
      countedRounds(
        [acl],
        acl.map((x) => ({ ...x, referenceHeadroom: 1.19 })),
      ),
    ).toEqual([]);
  });

  it('keeps a reference at REF_PHASE of the 90th percentile and nothing from an empty run', () => {
    const at = (f: number) => round(10 * f, 9);
    const runs = [at(1), at(1), at(1), at(1), at(REF_PHASE), at(REF_PHASE - 0.01)];
    expect(countedRounds([runs], runs)).toHaveLength(5);
    expect(countedRounds([], [])).toEqual([]);
  });
});

describe('vhost topology: A/B of two builds', () => {
  const round = (reference: number, candidate: number) => ({
    reference,
    candidate,
    referenceHeadroom: 2,
    candidateHeadroom: 2,
  });
  it('pairs the rounds where both builds count, as ratios to their own reference', () => {
    const a = [round(16, 12), round(15, 13.5), round(7, 6)];
    const b = [round(15, 13.5), round(16, 12), round(16, 14.4)];
    const r = abRounds(a, b, new Set([a[0]!, a[1]!]), new Set([b[0]!, b[2]!]));
    // round 2: b's does not count; round 3: a's does not count
    expect(r).toEqual([{ reference: 0.75, candidate: 0.9 }]);
    expect(abRounds(a, b.slice(0, 1), new Set(a), new Set(b))).toHaveLength(1);
  });
});

describe('vhost topology: the phase gate', () => {
  // reference rates from a run on the 2-core VM: the slow phase (about 6.3) and the fast (15-16)
  const refs = [6.3, 6.4, 15.2, 6.2, 15.9, 6.1, 15.6, 6.5, 16.0, 6.3];

  it('waits while the generator has no headroom, whatever the rate', () => {
    expect(fastPhase({ mpps: 16, headroom: GENERATOR_HEADROOM - 0.01 }, refs)).toBe(false);
    expect(fastPhase({ mpps: 16, headroom: Number.NaN }, refs)).toBe(false);
    expect(fastPhase({ mpps: 16, headroom: GENERATOR_HEADROOM }, refs)).toBe(true);
  });

  it('waits while the reference runs below REF_PHASE of the 90th percentile seen', () => {
    // the 90th percentile of refs is 15.9
    expect(fastPhase({ mpps: 6.4, headroom: 1.8 }, refs)).toBe(false);
    expect(fastPhase({ mpps: REF_PHASE * 15.9 - 0.01, headroom: 1.8 }, refs)).toBe(false);
    expect(fastPhase({ mpps: REF_PHASE * 15.9, headroom: 1.8 }, refs)).toBe(true);
  });

  it('judges by headroom alone until it has seen PHASE_MIN_SAMPLES rates', () => {
    const few = refs.slice(2, 2 + PHASE_MIN_SAMPLES - 1); // fast ones: a slow probe would fail
    expect(fastPhase({ mpps: 6.4, headroom: 1.8 }, few)).toBe(true);
    expect(fastPhase({ mpps: 6.4, headroom: 1.8 }, refs.slice(2, 2 + PHASE_MIN_SAMPLES))).toBe(
      false,
    );
  });
});
