import type { chainV1 } from '@flowline/proto';
import type { ChainEventType } from './chain-state';

export interface ChainEvent {
  type: ChainEventType;
  chain: chainV1.Chain;
}

/** The part of a server stream the outbox uses (grpc-js ServerWritableStream has both). */
export interface EventSink {
  /** false: the stream's buffer is full; write again after 'drain'. */
  write(event: ChainEvent): boolean;
  once(event: 'drain', listener: () => void): unknown;
}

interface Pending {
  /** The chain as deleted, when the reader must first hear it is gone (deleted, then re-created). */
  deleted?: chainV1.Chain;
  /** Its latest state; undefined when its last change was a deletion. */
  current?: chainV1.Chain;
}

/**
 * One WatchChains stream's outbox, honouring backpressure. Events are written while the stream
 * accepts them. Once write() returns false (a slow reader: the HTTP/2 window and grpc-js's
 * buffer are full) nothing more is written until 'drain', and changes meanwhile are coalesced
 * per chain: the reader then gets each changed chain once, in its latest state, as ADDED,
 * MODIFIED or DELETED relative to what it was last sent (a chain deleted and re-created is
 * DELETED then ADDED; one added and deleted while waiting is not sent at all). Intermediate
 * states are dropped, never queued: what is held is at most one entry per chain, however
 * many changes happen and however long the reader does not read.
 */
export class WatchOutbox {
  private readonly pending = new Map<string, Pending>();
  /** Chains the reader was last told exist. */
  private readonly known = new Set<string>();
  private blocked = false;
  private closed = false;
  /** Events written to the stream, and events folded into a later one (for tests and metrics). */
  written = 0;
  coalesced = 0;

  constructor(private readonly sink: EventSink) {}

  /** Chains waiting for the reader (bounded by the number of chains). */
  get queued(): number {
    return this.pending.size;
  }

  push(type: ChainEventType, chain: chainV1.Chain): void {
    if (this.closed) return;
    const name = chain.name ?? '';
    if (!this.blocked && this.pending.size === 0) {
      this.send(type, chain);
      return;
    }
    const entry = this.pending.get(name);
    if (entry) this.coalesced++;
    const next: Pending = entry ?? {};
    if (type === 'DELETED') {
      next.deleted = chain;
      delete next.current;
    } else {
      next.current = chain;
    }
    this.pending.set(name, next);
  }

  close(): void {
    this.closed = true;
    this.pending.clear();
  }

  private send(type: ChainEventType, chain: chainV1.Chain): void {
    const name = chain.name ?? '';
    if (type === 'DELETED') this.known.delete(name);
    else this.known.add(name);
    this.written++;
    if (!this.sink.write({ type, chain })) {
      this.blocked = true;
      this.sink.once('drain', () => this.flush());
    }
  }

  private flush(): void {
    this.blocked = false;
    for (const [name, entry] of this.pending) {
      if (this.closed || this.blocked) return;
      if (entry.deleted && this.known.has(name)) {
        this.send('DELETED', entry.deleted);
        delete entry.deleted;
        if (this.blocked && entry.current) return; // its ADDED after the next 'drain'
      }
      this.pending.delete(name);
      if (entry.current) this.send(this.known.has(name) ? 'MODIFIED' : 'ADDED', entry.current);
    }
  }
}
