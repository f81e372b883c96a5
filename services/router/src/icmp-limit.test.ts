import { describe, expect, it } from 'vitest';
import { IcmpErrorLimit } from './icmp-limit';

describe('IcmpErrorLimit', () => {
  it('lets a burst through, then the rate, never more', () => {
    const limit = new IcmpErrorLimit({ perSecond: 100, burst: 5 });
    const sent = (n: number, at: number) =>
      Array.from({ length: n }, () => limit.take(at)).filter(Boolean).length;
    expect(sent(8, 0)).toBe(5); // the burst
    expect(sent(3, 0)).toBe(0);
    expect(sent(3, 10)).toBe(1); // 10 ms at 100/s: one token
    expect(sent(3, 30)).toBe(2);
    expect(sent(100, 10_000)).toBe(5); // a long pause refills the burst, no more
  });

  it('does not run backwards when the clock does', () => {
    const limit = new IcmpErrorLimit({ perSecond: 1000, burst: 1 });
    expect(limit.take(100)).toBe(true);
    expect(limit.take(50)).toBe(false);
  });
});
