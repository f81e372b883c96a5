/**
 * Packet batches for JavaScript slow paths and custom NFs.
 *
 * Ownership rule: after `port.rxBurst(queue, batch)` (or `pipeline.punted(batch)`) returns n,
 * the batch owns those n mbufs and JavaScript may read and write their bytes through
 * `batch.packet(i)` (a zero-copy view into the mempool) and change their length with
 * `setLength(i, len)` / `drop(i)`. The next `txBurst`, `inject`, `rxBurst`, `punted` or
 * `release` on the batch hands every packet back to DPDK (sent, or freed); views taken before
 * then must not be used afterwards, because the memory is reused for other packets.
 * Never keep a view across bursts; copy (`Buffer.from(view)`) what must live longer.
 */
import { DpdkError } from './errors';
import { requireEal } from './eal';
import type { Mempool } from './mempool';
import { native } from './native';

const META = 4;

export class PacketBatch {
  /** Per packet: [offset in the pool view (-1: not viewable), length, port, reason code]. */
  readonly meta: Int32Array;
  readonly handle: number;
  /** The whole mempool as bytes, or null when the pool is not viewable. */
  readonly data: Uint8Array | null;
  private freed = false;
  private untrack: () => void;

  /**
   * A batch views `pool`'s memory: receive into it from ports whose rx queues use that pool
   * (Port.rxBurst refuses another); a punted packet of another pool is held but not viewable.
   */
  constructor(
    readonly pool: Mempool,
    readonly capacity = 32,
  ) {
    const eal = requireEal();
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > 4096)
      throw new DpdkError(`batch capacity ${capacity} must be 1..4096`, 'batch');
    const view = pool.view();
    this.meta = new Int32Array(capacity * META);
    this.handle = native().batchCreate(capacity, this.meta, pool.handle);
    this.data = view ? new Uint8Array(view) : null;
    pool.use(this, 'a packet batch');
    this.untrack = eal.track(() => this.free());
  }

  /** Packets the batch holds now. */
  get count(): number {
    return native().batchCount(this.handle);
  }

  offset(i: number): number {
    return this.meta[i * META]!;
  }

  length(i: number): number {
    return this.meta[i * META + 1]!;
  }

  /** The port the packet came in on. */
  port(i: number): number {
    return this.meta[i * META + 2]!;
  }

  /** The punt reason code (see `reasons`); 0 for received packets. */
  reasonCode(i: number): number {
    return this.meta[i * META + 3]!;
  }

  /** Zero-copy view of packet i (see the ownership rule above). */
  packet(i: number): Uint8Array {
    // offsets are -1 past the packets the batch holds now (the native side marks them when
    // packets leave), so a view is never taken of an mbuf the batch no longer owns
    const off = Number.isInteger(i) && i >= 0 && i < this.capacity ? this.offset(i) : -1;
    if (!this.data || off < 0)
      throw new DpdkError(
        `packet ${i} is not viewable (not in the batch now, multi-segment, from another pool, or the pool is in several chunks)`,
        'batch',
      );
    return this.data.subarray(off, off + this.length(i));
  }

  /** Sets the length txBurst/inject will send (<= the mbuf's room). */
  setLength(i: number, len: number): void {
    this.meta[i * META + 1] = len;
  }

  /** Marks packet i to be freed instead of sent by the next txBurst/inject. */
  drop(i: number): void {
    this.meta[i * META + 1] = -1;
  }

  /** Frees every packet the batch holds. */
  release(): void {
    if (!this.freed) native().batchRelease(this.handle);
  }

  free(): void {
    if (this.freed) return;
    this.freed = true;
    this.untrack();
    native().batchFree(this.handle);
    this.pool.unuse(this);
  }
}
