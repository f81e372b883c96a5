/**
 * What the native pollers that own one worker lcore (the traffic generator, the frame replay)
 * share on the JavaScript side: start, stop (waits for the lcore; counters stay readable),
 * close (frees the native object; Eal.cleanup() closes it too) and the check that it is open.
 */
import { nativeError } from './errors';
import { requireEal } from './eal';
import type { Mempool } from './mempool';
import { openPort, type Port } from './port';

export interface LcorePollerNative {
  start(handle: number): void;
  stop(handle: number): void;
  free(handle: number): void;
}

export abstract class LcorePoller {
  private closed = false;
  private started = false;
  private readonly untrack: () => void;
  /** The ports it polls and sends on, which must not close under it. */
  private readonly usedPorts = new Set<Port>();

  protected constructor(
    readonly handle: number,
    readonly lcore: number,
    private readonly native: LcorePollerNative,
    /** The pool it allocates from, which must outlive it. */
    private readonly pool?: Mempool,
    /** Its ports (create() refused closed ones). */
    ports: readonly (Port | number)[] = [],
  ) {
    this.untrack = requireEal().track(() => this.close());
    const what = `${this.constructor.name} on lcore ${lcore}`;
    pool?.use(this, what);
    for (const id of ports) {
      const p = openPort(id);
      if (!p || this.usedPorts.has(p)) continue;
      p.use(this, what);
      this.usedPorts.add(p);
    }
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
    for (const p of this.usedPorts) p.unuse(this);
  }

  /** A port a create() is given: open (a closed one's id may be another port's by now). */
  protected static livePort<P extends Port | number>(
    p: P,
    at: string,
    error: (message: string, path: string) => Error,
  ): P {
    if (typeof p === 'object' && p !== null && p.isClosed)
      throw error(`port ${p.name} was closed`, at);
    return p;
  }

  protected assertLive(): void {
    if (this.closed) throw this.error(`the ${this.what} was closed`, '');
  }
}
