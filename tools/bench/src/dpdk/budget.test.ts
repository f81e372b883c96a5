import { describe, expect, it } from 'vitest';
import { mayStartRound, sessionDeadline } from './budget';

describe('vhost bench: the time budget', () => {
  it('gives session s its cumulative share, so a session that ended early leaves time to the next', () => {
    expect(sessionDeadline(1000, 300_000, 3, 0)).toBe(101_000);
    expect(sessionDeadline(1000, 300_000, 3, 2)).toBe(301_000);
    expect(sessionDeadline(1000, 0, 3, 0)).toBe(Infinity);
  });

  it('starts a later round only when it would end in time', () => {
    expect(mayStartRound(0, 500, 17_000, 100)).toBe(true); // the first round always runs
    expect(mayStartRound(1, 83_000, 17_000, 100_000)).toBe(true);
    expect(mayStartRound(1, 83_001, 17_000, 100_000)).toBe(false);
    expect(mayStartRound(5, 1e9, 17_000, Infinity)).toBe(true);
  });
});
