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

/** An rte_pktmbuf pool. Ports receive into it; JS batches view its memory zero-copy. */
export class Mempool {
  private freed = false;
  private untrack: () => void;

  private constructor(
    readonly handle: number,
    readonly name: string,
  ) {
    this.untrack = requireEal().track(() => this.free());
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

  free(): void {
    if (this.freed) return;
    this.freed = true;
    this.untrack();
    native().poolFree(this.handle);
  }

  private assertLive(): void {
    if (this.freed) throw new DpdkError(`mempool ${this.name} was freed`, 'mempool');
  }
}
