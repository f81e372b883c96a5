/**
 * A forwarder written in JavaScript on the batch API: the benchmark's pure-JS point and an
 * example of a custom NF's fast-ish path. It receives a burst zero-copy and, per packet, in
 * JavaScript: parses Ethernet (one VLAN tag) and the IPv4/IPv6 header, decrements the TTL (IPv4
 * checksum updated incrementally, RFC 1624) or hop limit, dropping packets that would expire
 * and malformed IP headers, rewrites the MAC addresses in place, and sends the burst out. Non-IP
 * frames pass with their MACs rewritten. The pipeline engine in C is the real fast path.
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
  /** Decrement IPv4 TTL / IPv6 hop limit and drop what would expire. Default true. */
  decrementTtl?: boolean;
  /**
   * Idle back-off for start(): after this many empty polls in a row a slice ends early and the
   * loop sleeps (doubling from 0.1 ms up to idleSleepMaxMs) instead of spinning, so that an
   * idle forwarder leaves its core to other pollers. Default 1024 polls, 1 ms.
   */
  idlePolls?: number;
  idleSleepMaxMs?: number;
  /**
   * The rx port was opened with `rxInterrupts: true`: when idle, start() sleeps until the peer
   * kicks (Port.rxArm/rxWait; at most 100 × idleSleepMaxMs) instead of on timers.
   */
  rxInterrupts?: boolean;
}

export interface JsForwarder {
  /**
   * Polls for about `ms` milliseconds of wall time (or until `idlePolls` empty polls in a row),
   * then returns packets forwarded.
   */
  runFor(ms: number, idlePolls?: number): number;
  /** Forwards until stop() is called, yielding to the event loop between slices. */
  start(sliceMs?: number): void;
  stop(): Promise<{ forwarded: number; dropped: number; expired: number; malformed: number }>;
  close(): void;
}

export function createJsForwarder(o: JsForwarderOptions): JsForwarder {
  const queue = o.queue ?? 0;
  const batch = new PacketBatch(o.pool, o.burst ?? 32);
  const data = batch.data;
  const meta = batch.meta;
  let forwarded = 0;
  let dropped = 0;
  let expired = 0;
  let malformed = 0;
  let stopping = false;
  const ttl = o.decrementTtl ?? true;
  const dstMac = o.dstMac;
  const srcMac = o.srcMac;

  /** One packet's work; false drops it. */
  const work = (d: Uint8Array, off: number, len: number): boolean => {
    if (len < 14) {
      malformed++;
      return false;
    }
    let et = (d[off + 12]! << 8) | d[off + 13]!;
    let l3 = off + 14;
    if (et === 0x8100) {
      if (len < 18) {
        malformed++;
        return false;
      }
      et = (d[off + 16]! << 8) | d[off + 17]!;
      l3 += 4;
    }
    if (ttl && et === 0x0800) {
      if (l3 + 20 > off + len || d[l3]! >> 4 !== 4) {
        malformed++;
        return false;
      }
      const t = d[l3 + 8]!;
      if (t <= 1) {
        expired++;
        return false;
      }
      d[l3 + 8] = t - 1;
      // the TTL is the high byte of its 16-bit word: the checksum goes up by 0x0100
      let ck = ((d[l3 + 10]! << 8) | d[l3 + 11]!) + 0x100;
      ck = (ck & 0xffff) + (ck >>> 16);
      d[l3 + 10] = ck >>> 8;
      d[l3 + 11] = ck & 0xff;
    } else if (ttl && et === 0x86dd) {
      if (l3 + 40 > off + len || d[l3]! >> 4 !== 6) {
        malformed++;
        return false;
      }
      const h = d[l3 + 7]!;
      if (h <= 1) {
        expired++;
        return false;
      }
      d[l3 + 7] = h - 1;
    }
    if (dstMac) for (let k = 0; k < 6; k++) d[off + k] = dstMac[k]!;
    if (srcMac) for (let k = 0; k < 6; k++) d[off + 6 + k] = srcMac[k]!;
    return true;
  };
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
      let kept = n;
      if (n > 0 && data) {
        for (let i = 0; i < n; i++) {
          const off = meta[i * 4]!;
          if (off < 0) continue;
          if (!work(data, off, meta[i * 4 + 1]!)) {
            meta[i * 4 + 1] = -1; // txBurst frees it
            dropped++;
            kept--;
          }
        }
      }
      if (n > 0) {
        empty = 0;
        const sent = o.tx.txBurst(queue, batch);
        forwarded += sent;
        dropped += kept - sent; // the tx queue did not take them
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
          } else if (o.rxInterrupts) {
            // Adaptive: arm, poll once more, and sleep until the peer kicks if still idle.
            o.rx.rxArm(queue);
            if (runFor(0, 1) > 0) {
              o.rx.rxArm(queue, false);
              setImmediate(tick);
            } else {
              void o.rx.rxWait(queue, idleMax * 100).then(() => setImmediate(tick));
            }
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
      return { forwarded, dropped, expired, malformed };
    },
    close() {
      batch.free();
    },
  };
}
