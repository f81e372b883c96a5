/**
 * A forwarder written in JavaScript on the batch API: the benchmark's pure-JS point and an
 * example of a custom NF's fast-ish path. It receives a burst zero-copy, rewrites each
 * packet's MAC addresses in place, and sends the burst out; the pipeline engine in C is the
 * real fast path.
 */
import { PacketBatch } from '../batch';
import type { Mempool } from '../mempool';
import type { Port } from '../port';

export interface JsForwarderOptions {
  rx: Port;
  tx: Port;
  pool: Mempool;
  queue?: number;
  burst?: number;
  /** Destination MAC written into every packet (6 bytes); default: leave. */
  dstMac?: Uint8Array;
  /** Source MAC written into every packet; default: leave. */
  srcMac?: Uint8Array;
  /**
   * Idle back-off for start(): after this many empty polls in a row a slice ends early and the
   * loop sleeps (doubling from 0.1 ms up to idleSleepMaxMs) instead of spinning, so that an
   * idle forwarder leaves its core to other pollers. Default 1024 polls, 1 ms.
   */
  idlePolls?: number;
  idleSleepMaxMs?: number;
}

export interface JsForwarder {
  /**
   * Polls for about `ms` milliseconds of wall time (or until `idlePolls` empty polls in a row),
   * then returns packets forwarded.
   */
  runFor(ms: number, idlePolls?: number): number;
  /** Forwards until stop() is called, yielding to the event loop between slices. */
  start(sliceMs?: number): void;
  stop(): Promise<{ forwarded: number; dropped: number }>;
  close(): void;
}

export function createJsForwarder(o: JsForwarderOptions): JsForwarder {
  const queue = o.queue ?? 0;
  const batch = new PacketBatch(o.pool, o.burst ?? 32);
  const data = batch.data;
  const meta = batch.meta;
  let forwarded = 0;
  let dropped = 0;
  let stopping = false;
  let done: Promise<void> | undefined;

  const idleLimit = o.idlePolls ?? 1024;
  const idleMax = o.idleSleepMaxMs ?? 1;

  const runFor = (ms: number, idlePolls = Infinity): number => {
    const end = performance.now() + ms;
    const before = forwarded;
    let polls = 0;
    let empty = 0;
    while (true) {
      const n = o.rx.rxBurst(queue, batch);
      if (n === 0 && ++empty >= idlePolls) break;
      if (n > 0 && data) {
        for (let i = 0; i < n; i++) {
          const off = meta[i * 4]!;
          if (off < 0) continue;
          if (o.dstMac) data.set(o.dstMac, off);
          if (o.srcMac) data.set(o.srcMac, off + 6);
        }
      }
      if (n > 0) {
        empty = 0;
        const sent = o.tx.txBurst(queue, batch);
        forwarded += sent;
        dropped += n - sent;
      }
      if ((++polls & 255) === 0 && performance.now() >= end) break;
    }
    return forwarded - before;
  };

  return {
    runFor,
    start(sliceMs = 50) {
      stopping = false;
      done = new Promise<void>((resolve) => {
        let sleepMs = 0.1;
        const tick = (): void => {
          if (stopping) return resolve();
          if (runFor(sliceMs, idleLimit) > 0) {
            sleepMs = 0.1;
            setImmediate(tick);
          } else {
            setTimeout(tick, sleepMs);
            sleepMs = Math.min(sleepMs * 2, idleMax);
          }
        };
        setImmediate(tick);
      });
    },
    async stop() {
      stopping = true;
      await done;
      return { forwarded, dropped };
    },
    close() {
      batch.free();
    },
  };
}
