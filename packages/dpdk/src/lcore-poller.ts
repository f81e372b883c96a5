/**
 * What the native pollers that own one worker lcore (the traffic generator, the frame replay)
 * share on the JavaScript side: start, stop (waits for the lcore; counters stay readable),
 * close (frees the native object; Eal.cleanup() closes it too) and the check that it is open.
 */
import { nativeError } from './errors';
import { requireEal } from './eal';
import type { Mempool } from './mempool';

export interface LcorePollerNative {
  start(handle: number): void;
  stop(handle: number): void;
  free(handle: number): void;
}

export abstract class LcorePoller {
  private closed = false;
  private started = false;
  private readonly untrack: () => void;

  protected constructor(
    readonly handle: number,
    readonly lcore: number,
    private readonly native: LcorePollerNative,
    /** The pool it allocates from, which must outlive it. */
    private readonly pool?: Mempool,
  ) {
    this.untrack = requireEal().track(() => this.close());
    pool?.use(this, `${this.constructor.name} on lcore ${lcore}`);
  }

  /** The typed error of this poller (`path` names the field, as its create() errors do). */
  protected abstract error(message: string, path: string, op?: string, errno?: number): Error;

  /** What it is, for "the <what> was closed". */
  protected abstract readonly what: string;

  start(): void {
    this.assertLive();
    try {
      this.native.start(this.handle);
    } catch (e) {
      const n = nativeError(e);
      throw this.error(n.message, 'lcore', n.op, n.errno);
    }
    this.started = true;
  }

  /** Stops the poller (waits for its lcore); counters stay readable. */
  stop(): void {
    if (this.closed || !this.started) return;
    this.native.stop(this.handle);
    this.started = false;
  }

  get running(): boolean {
    return this.started && !this.closed;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.untrack();
    this.native.free(this.handle);
    this.pool?.unuse(this);
  }

  protected assertLive(): void {
    if (this.closed) throw this.error(`the ${this.what} was closed`, '');
  }
}
