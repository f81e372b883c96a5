import type { Logger } from '@flowline/telemetry';

/** Any Kubernetes object, as far as list+watch cares. */
export interface KubeObject {
  metadata?: { name?: string; namespace?: string; resourceVersion?: string };
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

/** The client side of one collection: list it, watch it (client-node's Watch over the same path). */
export interface ListWatchSource<T extends KubeObject> {
  /** What the log and errors call it, e.g. "servicechains". */
  what: string;
  list(): Promise<{ items: T[]; resourceVersion: string }>;
  /**
   * Opens a watch from `resourceVersion`; calls `onEvent` per line and `onDone` once when the
   * stream ends (err set when it failed). Returns a function that aborts it.
   */
  watch(
    resourceVersion: string,
    onEvent: (type: string, object: unknown) => void,
    onDone: (err: unknown) => void,
  ): Promise<() => void>;
}

export interface ListWatchHandlers<T extends KubeObject> {
  /** A full list: the collection is exactly `items` now (first sync and every re-list). */
  onList(items: T[]): void;
  onEvent(type: WatchEventType, object: T): void;
}

export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
}

type WatchEnd =
  { kind: 'expired' } | { kind: 'closed'; events: number } | { kind: 'failed'; err: unknown };

const statusCodeOf = (err: unknown): number | undefined => {
  const e = err as { statusCode?: unknown; code?: unknown } | null;
  if (typeof e?.statusCode === 'number') return e.statusCode;
  return typeof e?.code === 'number' ? e.code : undefined;
};

/**
 * List then watch from the list's resourceVersion, as an informer does: the watch resumes from
 * the last resourceVersion seen (events and bookmarks); "410 Gone" (the apiserver compacted
 * past it) re-lists, so the handlers see a full list instead of the events they missed; a
 * dropped connection or an unreachable apiserver is retried with exponential backoff.
 */
export class ListWatcher<T extends KubeObject> {
  private stopped = false;
  private abort: (() => void) | undefined;
  private wake: (() => void) | undefined;
  private resourceVersion: string | undefined;
  private delayMs: number;
  private loop: Promise<void> | undefined;
  private resolveSynced!: () => void;
  /** Resolves after the first successful list. */
  readonly synced = new Promise<void>((resolve) => (this.resolveSynced = resolve));
  /** How many lists were made (the first, then one per 410 or failed resume). */
  lists = 0;

  constructor(
    private readonly source: ListWatchSource<T>,
    private readonly handlers: ListWatchHandlers<T>,
    private readonly backoff: BackoffOptions = { initialMs: 500, maxMs: 30_000 },
    private readonly logger?: Logger,
  ) {
    this.delayMs = backoff.initialMs;
  }

  start(): void {
    this.loop ??= this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort?.();
    this.wake?.();
    await this.loop;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      if (this.resourceVersion === undefined) {
        try {
          const { items, resourceVersion } = await this.source.list();
          if (this.stopped) return;
          this.lists++;
          this.resourceVersion = resourceVersion;
          this.handlers.onList(items);
          this.resolveSynced();
          this.delayMs = this.backoff.initialMs;
        } catch (err) {
          this.logger?.warn('list failed; retrying', {
            what: this.source.what,
            err,
            retryMs: this.delayMs,
          });
          await this.pause();
          continue;
        }
      }
      const started = Date.now();
      const end = await this.watchOnce(this.resourceVersion);
      if (this.stopped) return;
      if (end.kind === 'expired') {
        this.logger?.info('watch expired (410 Gone); listing again', { what: this.source.what });
        this.resourceVersion = undefined;
      } else if (end.kind === 'failed') {
        if (statusCodeOf(end.err) === 410) {
          this.resourceVersion = undefined;
          continue;
        }
        this.logger?.warn('watch failed; reconnecting', {
          what: this.source.what,
          err: end.err,
          retryMs: this.delayMs,
        });
        await this.pause();
      } else if (end.events > 0 || Date.now() - started > 1000) {
        // The apiserver ended a healthy watch (its timeout): resume right away.
        this.delayMs = this.backoff.initialMs;
      } else {
        // Closed at once with nothing in it: the apiserver is going away; do not spin.
        await this.pause();
      }
    }
  }

  private pause(): Promise<void> {
    const ms = this.delayMs;
    this.delayMs = Math.min(this.delayMs * 2, this.backoff.maxMs);
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    }).finally(() => (this.wake = undefined));
  }

  private watchOnce(from: string): Promise<WatchEnd> {
    return new Promise<WatchEnd>((resolve) => {
      let events = 0;
      let closed = false;
      let end: WatchEnd | undefined;
      const finish = (e: WatchEnd): void => {
        end ??= e;
      };
      const onEvent = (type: string, object: unknown): void => {
        if (end) return;
        if (type === 'ERROR') {
          const status = object as { code?: number; reason?: string; message?: string };
          finish(
            status.code === 410
              ? { kind: 'expired' }
              : {
                  kind: 'failed',
                  err: new Error(`watch error ${status.code} ${status.reason}: ${status.message}`),
                },
          );
          this.abort?.();
          return;
        }
        const rv = (object as KubeObject).metadata?.resourceVersion;
        if (rv) this.resourceVersion = rv;
        if (type === 'BOOKMARK') return;
        if (type !== 'ADDED' && type !== 'MODIFIED' && type !== 'DELETED') return;
        events++;
        this.delayMs = this.backoff.initialMs;
        this.handlers.onEvent(type, object as T);
      };
      const onDone = (err: unknown): void => {
        closed = true;
        this.abort = undefined;
        resolve(end ?? (err ? { kind: 'failed', err } : { kind: 'closed', events }));
      };
      // Until the response's headers arrive there is nothing to abort: stopping (or an ERROR
      // event) ends this watch at once, and the request is aborted when it answers.
      this.abort = () => {
        finish({ kind: 'closed', events });
        resolve(end ?? { kind: 'closed', events });
      };
      this.source.watch(from, onEvent, onDone).then(
        (abort) => {
          if (this.stopped || end) abort();
          else if (!closed) this.abort = abort;
        },
        (err: unknown) => resolve({ kind: 'failed', err }),
      );
    });
  }
}
