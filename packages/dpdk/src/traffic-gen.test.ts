import { describe, expect, it } from 'vitest';
import {
  IMIX_PATTERN,
  bucketOf,
  bucketRange,
  flowResults,
  runSpan,
  frameSizeOf,
  latencyFromHistogram,
  minFrameSize,
} from './traffic-gen';

describe('traffic generator: sizes', () => {
  it('the smallest frame carries Ethernet, IP, L4, the 16-byte tag and the FCS', () => {
    expect(minFrameSize(4, 'udp')).toBe(64); // 62, raised to Ethernet's minimum
    expect(minFrameSize(4, 'tcp')).toBe(74);
    expect(minFrameSize(6, 'udp')).toBe(82);
    expect(minFrameSize(6, 'tcp')).toBe(94);
  });

  it('IMIX is 64/594/1518 in 7:4:1 per 12 packets, raised to the flow minimum', () => {
    expect(IMIX_PATTERN.filter((s) => s === 64)).toHaveLength(7);
    expect(IMIX_PATTERN.filter((s) => s === 594)).toHaveLength(4);
    expect(IMIX_PATTERN.filter((s) => s === 1518)).toHaveLength(1);
    expect(frameSizeOf('imix', 6, 'tcp', 0)).toBe(94);
    expect(frameSizeOf('imix', 4, 'udp', 6)).toBe(1518);
    expect(frameSizeOf('imix', 4, 'udp', 18)).toBe(1518);
    expect(frameSizeOf(undefined, 6, 'udp', 3)).toBe(82);
    expect(frameSizeOf(200, 6, 'udp', 3)).toBe(200);
  });
});

describe('traffic generator: latency histogram', () => {
  it('buckets are exact below 16 cycles, then 16 per power of two; bucketOf inverts bucketRange', () => {
    expect(bucketRange(5)).toEqual({ low: 5, width: 1 });
    expect(bucketRange(16)).toEqual({ low: 16, width: 1 });
    expect(bucketRange(32)).toEqual({ low: 32, width: 2 });
    expect(bucketRange(47)).toEqual({ low: 62, width: 2 });
    for (const v of [0, 15, 16, 31, 32, 33, 63, 64, 1000, 123456, 2 ** 40 + 12345]) {
      const { low, width } = bucketRange(bucketOf(v));
      expect(v).toBeGreaterThanOrEqual(low);
      expect(v).toBeLessThan(low + width);
      if (v >= 16) expect(width / low).toBeLessThanOrEqual(1 / 16);
    }
  });

  it('quantiles by nearest rank, at bucket midpoints clamped to the exact min and max', () => {
    const hist = new Float64Array(1024);
    // 1 GHz: one cycle is one nanosecond. 98 samples near 1000, 2 near 100000.
    hist[bucketOf(1000)] = 98;
    hist[bucketOf(100_000)] = 2;
    const l = latencyFromHistogram(hist, 990, 100_500, 98 * 1000 + 2 * 100_000, 1e9)!;
    const mid = (v: number) => {
      const { low, width } = bucketRange(bucketOf(v));
      return low + (width - 1) / 2;
    };
    expect(l.samples).toBe(100);
    expect(l.minNs).toBe(990);
    expect(l.p50Ns).toBe(mid(1000));
    expect(l.p99Ns).toBe(mid(100_000));
    expect(l.maxNs).toBe(100_500);
    expect(l.meanNs).toBe(2980);
    expect(l.p50Ns).toBeLessThanOrEqual(l.p99Ns);
  });

  it('a single sample reports min = p50 = p99 = max; no samples, no latency', () => {
    const hist = new Float64Array(1024);
    hist[bucketOf(777)] = 1;
    const l = latencyFromHistogram(hist, 777, 777, 777, 2e9)!;
    expect([l.minNs, l.p50Ns, l.p99Ns, l.maxNs]).toEqual([388.5, 388.5, 388.5, 388.5]);
    expect(latencyFromHistogram(new Float64Array(1024), 0, 0, 0, 1e9)).toBeUndefined();
  });
});

describe('traffic generator: per-flow results', () => {
  it('lost is expected minus distinct arrivals (duplicates do not hide a loss)', () => {
    // tx, txBytes, rx, rxBytes, expected, dups, reordered, late, latMin, latMax, latSum, txDone,
    // txEndTsc, rxLastTsc
    const span = { startTsc: 1e9, endTsc: 5e9, tscHz: 1e9 };
    const r = flowResults(
      3,
      [10, 640, 9, 576, 10, 1, 2, 0, 5, 9, 48, 1, 2e9, 2.5e9],
      undefined,
      span,
    );
    expect(r).toEqual({
      flow: 3,
      txPackets: 10,
      txBytes: 640,
      txDone: true,
      rxPackets: 9,
      rxBytes: 576,
      expected: 10,
      lost: 2,
      duplicates: 1,
      reordered: 2,
      late: 0,
      txSeconds: 1,
      rxSeconds: 1.5,
    });
  });

  it('rates are over the time a flow sent, not the time since its results were last read', () => {
    // a count-limited flow done at 2 s of a run read at 60 s: its rate is over 2 s, not 60
    const done = [1000, 64_000, 990, 63_360, 1000, 0, 0, 0, 1, 1, 990, 1, 3e9, 3.1e9];
    const late = flowResults(0, done, undefined, { startTsc: 1e9, endTsc: 61e9, tscHz: 1e9 });
    expect(late.txSeconds).toBe(2);
    expect(late.rxSeconds).toBeCloseTo(2.1, 12);
    // a flow still sending (or a sink of another generator's flows): to now, or to the stop
    const open = [...done];
    open[11] = 0; // not done
    open[12] = 0;
    const running = flowResults(0, open, undefined, { startTsc: 1e9, endTsc: 4e9, tscHz: 1e9 });
    expect([running.txSeconds, running.rxSeconds]).toEqual([3, 3]);
    // done, but its end time not yet visible to this read: to now, never 0 or negative
    const racing = [...done];
    racing[12] = 0;
    const r = flowResults(0, racing, undefined, { startTsc: 1e9, endTsc: 4e9, tscHz: 1e9 });
    expect(r.txSeconds).toBe(3);
    // never started: no time, so no rate
    const idle = flowResults(0, open, undefined, { startTsc: 0, endTsc: 4e9, tscHz: 1e9 });
    expect([idle.txSeconds, idle.rxSeconds]).toEqual([0, 0]);
  });

  it('the span comes from the global counters: now while running, the stop once stopped', () => {
    // untagged, foreign, backpressure, allocFailed, sleeps, running, txDone, hz, start, stop, now
    expect(runSpan([0, 0, 0, 0, 0, 1, 0, 2e9, 10, 0, 50])).toEqual({
      startTsc: 10,
      endTsc: 50,
      tscHz: 2e9,
    });
    expect(runSpan([0, 0, 0, 0, 0, 0, 0, 2e9, 10, 30, 50]).endTsc).toBe(30);
  });
});
