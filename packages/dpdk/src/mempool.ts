import { DpdkError, nativeError } from './errors';
import { requireEal } from './eal';
import { native, type NativePoolInfo } from './native';

export interface MempoolOptions {
  /** Number of mbufs. Size it to rx descriptors x queues x ports + burst x workers + in-flight (punt ring, JS batches). */
  size: number;
  /** Per-lcore cache (0 disables; at most 512 and size / 1.5). Default 256. */
  cacheSize?: number;
  /** Buffer size including the 128-byte headroom. Default 2176 (2048 of data). */
  dataRoom?: number;
  /** NUMA socket; default the caller's. */
  socket?: number;
}

let seq = 0;

/**
 * An rte_pktmbuf pool. Ports receive into it; JS batches view its memory zero-copy. It outlives
 * what uses it: free() is refused while a port, batch or poller still does, or while any of its
 * mbufs is out (Eal.cleanup() frees it after those, in reverse order of creation).
 */
export class Mempool {
  private freed = false;
  private untrack: () => void;
  /** What holds or allocates this pool's mbufs, by description ("port net_ring0"). */
  private readonly users = new Map<object, string>();

  private constructor(
    readonly handle: number,
    readonly name: string,
  ) {
    this.untrack = requireEal().track(() => this.release());
  }

  static create(opts: MempoolOptions, name = `fl_pool_${process.pid}_${seq++}`): Mempool {
    requireEal().assertRunning();
    const size = opts.size;
    const cache = opts.cacheSize ?? Math.min(256, Math.floor(size / 1.5));
    if (!Number.isInteger(size) || size < 64)
      throw new DpdkError(`mempool size ${size} must be an integer >= 64`, 'mempool');
    if (!Number.isInteger(cache) || cache < 0 || cache > 512 || cache > size / 1.5)
      throw new DpdkError(
        `mempool cacheSize ${cache} must be 0..512 and at most size/1.5`,
        'mempool',
      );
    const dataRoom = opts.dataRoom ?? 2176;
    if (!Number.isInteger(dataRoom) || dataRoom < 256 || dataRoom > 65535)
      throw new DpdkError(`mempool dataRoom ${dataRoom} must be 256..65535`, 'mempool');
    if (name.length > 25)
      throw new DpdkError(`mempool name "${name}" is longer than 25 characters`, 'mempool');
    try {
      return new Mempool(native().poolCreate(name, size, cache, dataRoom, opts.socket ?? -1), name);
    } catch (e) {
      const n = nativeError(e);
      throw new DpdkError(
        `${n.message} (reserve more hugepages or lower size)`,
        n.op ?? 'mempool',
        n.errno,
      );
    }
  }

  info(): NativePoolInfo {
    this.assertLive();
    return native().poolInfo(this.handle);
  }

  /**
   * The pool's memory as one ArrayBuffer (zero-copy), or null when DPDK placed the pool in
   * several chunks (use IOVA mode 'va'). Valid until free() or Eal.cleanup().
   */
  view(): ArrayBuffer | null {
    this.assertLive();
    return native().poolView(this.handle);
  }

  /**
   * Frees the pool. Refused while a port, batch or poller uses it or any of its mbufs is out (in
   * a port's rings, a batch, a pipeline's rings): those would later go back into freed memory.
   */
  free(): void {
    if (this.freed) return;
    if (this.users.size > 0)
      throw new DpdkError(
        `mempool ${this.name} is still used by ${[...this.users.values()].join(', ')}: close or free them first`,
        'mempool',
      );
    const { inUse } = native().poolInfo(this.handle);
    if (inUse > 0)
      throw new DpdkError(
        `mempool ${this.name} still has ${inUse} mbufs out (a port's queue, a ring or a batch holds them): it cannot be freed`,
        'mempool',
      );
    this.release();
  }

  /** @internal a port, batch or poller that holds this pool's mbufs or allocates from it. */
  use(user: object, what: string): void {
    this.assertLive();
    this.users.set(user, what);
  }

  /** @internal */
  unuse(user: object): void {
    this.users.delete(user);
  }

  get isFreed(): boolean {
    return this.freed;
  }

  /** Frees without the checks: Eal.cleanup() has already closed what used the pool. */
  private release(): void {
    if (this.freed) return;
    this.freed = true;
    this.untrack();
    native().poolFree(this.handle);
  }

  private assertLive(): void {
    if (this.freed) throw new DpdkError(`mempool ${this.name} was freed`, 'mempool');
  }
}
