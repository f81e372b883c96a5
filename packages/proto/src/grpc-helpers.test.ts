import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { WatchStreamLimit, streamEvery } from './grpc-helpers';

/** A server stream whose reader is as slow as the test says: write() returns `accepts`. */
class FakeStream extends EventEmitter {
  accepts = true;
  written: number[] = [];
  errors: Partial<grpc.StatusObject>[] = [];
  constructor() {
    super();
    this.on('error', (e: Partial<grpc.StatusObject>) => this.errors.push(e));
  }
  write(v: number): boolean {
    this.written.push(v);
    return this.accepts;
  }
}
const asCall = (s: FakeStream) => s as unknown as grpc.ServerWritableStream<unknown, number>;

describe('streamEvery', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('writes one sample at once and one per interval', () => {
    const s = new FakeStream();
    let n = 0;
    streamEvery(asCall(s), 100, () => ++n, { limit: new WatchStreamLimit(4) });
    vi.advanceTimersByTime(350);
    expect(s.written).toEqual([1, 2, 3, 4]);
    s.emit('cancelled');
    vi.advanceTimersByTime(500);
    expect(s.written).toEqual([1, 2, 3, 4]);
  });

  it('produces nothing while the reader has not taken the last sample, and a fresh one on drain', () => {
    const s = new FakeStream();
    let n = 0;
    let skipped = 0;
    streamEvery(asCall(s), 100, () => ++n, {
      limit: new WatchStreamLimit(4),
      onSkip: () => (skipped += 1),
    });
    s.accepts = false;
    vi.advanceTimersByTime(100); // written, and the buffer is now full
    vi.advanceTimersByTime(10_000); // 100 ticks: none written, none produced
    expect(s.written).toEqual([1, 2]);
    expect(n).toBe(2);
    expect(skipped).toBe(100);
    s.accepts = true;
    s.emit('drain');
    expect(s.written).toEqual([1, 2, 3]);
    vi.advanceTimersByTime(100);
    expect(s.written).toEqual([1, 2, 3, 4]);
    s.emit('close');
  });

  it('refuses a stream past the limit, naming watch_streams, until one ends', () => {
    const limit = new WatchStreamLimit(2);
    const streams = [new FakeStream(), new FakeStream(), new FakeStream()];
    for (const s of streams) streamEvery(asCall(s), 100, () => 0, { limit });
    expect(streams[2]!.errors).toEqual([
      {
        code: grpc.status.RESOURCE_EXHAUSTED,
        details:
          'watch_streams: 2 watch streams are open on this server, its limit; close one and retry',
      },
    ]);
    expect(streams[2]!.written).toEqual([]);
    expect(limit.active).toBe(2);
    streams[0]!.emit('cancelled');
    streams[0]!.emit('close'); // a second end event releases nothing more
    expect(limit.active).toBe(1);
    const again = new FakeStream();
    streamEvery(asCall(again), 100, () => 0, { limit });
    expect(again.errors).toEqual([]);
    expect(limit.active).toBe(2);
    streams[1]!.emit('error', { code: grpc.status.CANCELLED });
    again.emit('finish');
    expect(limit.active).toBe(0);
  });

  it('refuses an interval under the minimum, naming interval_ms, without taking a place', () => {
    const limit = new WatchStreamLimit(1);
    const s = new FakeStream();
    streamEvery(asCall(s), 10, () => 0, { limit });
    expect(s.errors[0]).toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
    expect(s.errors[0]!.details).toMatch(/^interval_ms must be at least 100/);
    expect(limit.active).toBe(0);
  });
});
