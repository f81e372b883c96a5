import { EventEmitter } from 'node:events';
import type { chainV1 } from '@flowline/proto';
import { describe, expect, it } from 'vitest';
import { type ChainEvent, WatchOutbox } from './watch-outbox';

/** A stream that accepts `room` events, then reports itself full until drain() is called. */
class Sink extends EventEmitter {
  events: string[] = [];
  room: number;
  constructor(room: number) {
    super();
    this.room = room;
  }
  write(e: ChainEvent): boolean {
    this.events.push(`${e.type} ${e.chain.name}@${e.chain.generation}`);
    return --this.room > 0;
  }
  drain(room: number): void {
    this.room = room;
    this.emit('drain');
  }
}

const chain = (name: string, generation: number): chainV1.Chain => ({
  name,
  generation: String(generation),
});

describe('WatchOutbox', () => {
  it('writes straight through while the stream takes events', () => {
    const sink = new Sink(100);
    const outbox = new WatchOutbox(sink);
    outbox.push('ADDED', chain('a', 1));
    outbox.push('MODIFIED', chain('a', 2));
    outbox.push('DELETED', chain('a', 2));
    expect(sink.events).toEqual(['ADDED a@1', 'MODIFIED a@2', 'DELETED a@2']);
    expect(outbox.queued).toBe(0);
  });

  it('a full stream gets nothing more until drain; changes meanwhile are coalesced per chain', () => {
    const sink = new Sink(1);
    const outbox = new WatchOutbox(sink);
    outbox.push('ADDED', chain('a', 1)); // fills the stream
    for (let g = 2; g <= 10_000; g++) outbox.push('MODIFIED', chain('a', g));
    outbox.push('ADDED', chain('b', 1));
    outbox.push('MODIFIED', chain('b', 2));
    outbox.push('ADDED', chain('c', 1));
    outbox.push('DELETED', chain('c', 1)); // came and went unseen: never sent
    expect(sink.events).toEqual(['ADDED a@1']);
    expect(outbox.queued).toBe(3);
    expect(outbox.coalesced).toBe(9_998 + 1 + 1);
    sink.drain(100);
    expect(sink.events).toEqual(['ADDED a@1', 'MODIFIED a@10000', 'ADDED b@2']);
    expect(outbox.queued).toBe(0);
    expect(outbox.written).toBe(3);
  });

  it('a chain deleted and re-created while waiting is DELETED then ADDED, across drains', () => {
    const sink = new Sink(2);
    const outbox = new WatchOutbox(sink);
    outbox.push('ADDED', chain('a', 1));
    outbox.push('ADDED', chain('b', 1)); // fills the stream
    outbox.push('DELETED', chain('a', 1));
    outbox.push('ADDED', chain('a', 1));
    outbox.push('MODIFIED', chain('a', 2));
    outbox.push('DELETED', chain('b', 1));
    sink.drain(1); // room for the DELETED only: a's ADDED waits for the next drain
    expect(sink.events).toEqual(['ADDED a@1', 'ADDED b@1', 'DELETED a@1']);
    expect(outbox.queued).toBe(2);
    sink.drain(100);
    expect(sink.events.slice(3)).toEqual(['ADDED a@2', 'DELETED b@1']);
  });

  it('holds nothing after close', () => {
    const sink = new Sink(1);
    const outbox = new WatchOutbox(sink);
    outbox.push('ADDED', chain('a', 1));
    outbox.push('MODIFIED', chain('a', 2));
    outbox.close();
    outbox.push('MODIFIED', chain('a', 3));
    expect(outbox.queued).toBe(0);
    sink.drain(100);
    expect(sink.events).toEqual(['ADDED a@1']);
  });
});
