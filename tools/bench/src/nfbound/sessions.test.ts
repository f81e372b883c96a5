import { describe, expect, it } from 'vitest';
import { mergeSessionChecks, sessionOfRound } from './sessions';

describe('NF-bound sessions', () => {
  it('splits the rounds over the sessions in order, as evenly as they go', () => {
    expect([0, 1, 2, 3, 4].map((r) => sessionOfRound(r, 5, 3))).toEqual([0, 0, 1, 1, 2]);
    expect([0, 1, 2].map((r) => sessionOfRound(r, 3, 1))).toEqual([0, 0, 0]);
    expect([0, 1, 2].map((r) => sessionOfRound(r, 3, 3))).toEqual([0, 1, 2]);
    expect(() => sessionOfRound(0, 0, 3)).toThrow(RangeError);
  });

  const hits = (binsHit: number, ok = true) => ({
    ok,
    bins: 1001,
    binsHit,
    mismatched: ok ? 0 : 3,
    first: [],
  });

  it('sums the counts and keeps ok only when every session is ok', () => {
    const a = {
      processed: 10,
      rx: 10,
      tx: 9,
      droppedByRules: 1,
      lost: 0,
      ok: true,
      hits: hits(998),
    };
    const b = {
      processed: 20,
      rx: 20,
      tx: 18,
      droppedByRules: 2,
      lost: 0,
      ok: true,
      hits: hits(1000),
    };
    const m = mergeSessionChecks([a, b]);
    expect(m).toMatchObject({
      processed: 30,
      rx: 30,
      tx: 27,
      droppedByRules: 3,
      lost: 0,
      ok: true,
    });
    expect(m.hits).toMatchObject({ ok: true, binsHit: 1000 });
    expect(m.sessions).toEqual([a, b]);
  });

  it("reports a failing session's details, and fails the whole", () => {
    const a = { processed: 10, lost: 0, ok: true, hits: hits(1000) };
    const b = { processed: 20, lost: 2, ok: false, hits: hits(990, false), ctOk: false };
    const m = mergeSessionChecks([a, b, a]);
    expect(m.ok).toBe(false);
    expect(m.lost).toBe(2);
    expect(m.ctOk).toBe(false);
    expect(m.hits).toMatchObject({ ok: false, mismatched: 3 });
  });

  it('passes one session through and fails none', () => {
    const a = { processed: 10, ok: true };
    expect(mergeSessionChecks([a])).toBe(a);
    expect(mergeSessionChecks([])).toMatchObject({ ok: false });
  });
});
