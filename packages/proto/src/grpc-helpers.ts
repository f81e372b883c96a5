import * as grpc from '@grpc/grpc-js';

/** The shortest interval a Watch* stream accepts. */
export const MIN_STATS_INTERVAL_MS = 100;

/** How many Watch* streams one process serves at once, unless a server sets its own limit. */
export const MAX_WATCH_STREAMS = 32;

/** A cap on concurrent Watch* streams; one per server (or the process-wide default). */
export class WatchStreamLimit {
  private open = 0;
  constructor(readonly max: number = MAX_WATCH_STREAMS) {}
  get active(): number {
    return this.open;
  }
  tryAcquire(): boolean {
    if (this.open >= this.max) return false;
    this.open += 1;
    return true;
  }
  release(): void {
    this.open = Math.max(0, this.open - 1);
  }
}

const processWatchLimit = new WatchStreamLimit();

export interface StreamEveryOptions {
  /** The cap this stream counts against (default: the process-wide one of MAX_WATCH_STREAMS). */
  limit?: WatchStreamLimit;
  /** Called for each sample not produced because the reader had not taken the last one. */
  onSkip?: () => void;
}

/**
 * Serves a Watch* stream: refuses an interval under MIN_STATS_INTERVAL_MS with INVALID_ARGUMENT
 * naming interval_ms and a stream past the limit with RESOURCE_EXHAUSTED naming watch_streams;
 * writes one message at once and then one per interval until the client cancels or the stream
 * closes. Each message is a whole snapshot, so a slow reader loses nothing by missing one: while
 * grpc-js's buffer is full (write() returned false) ticks are skipped, and on 'drain' the reader
 * gets one fresh snapshot. What a stream holds is bounded by one message whatever its reader does.
 */
export function streamEvery<T>(
  call: grpc.ServerWritableStream<unknown, T>,
  intervalMs: number,
  produce: () => T,
  options: StreamEveryOptions = {},
): void {
  if (intervalMs < MIN_STATS_INTERVAL_MS) {
    call.emit('error', {
      code: grpc.status.INVALID_ARGUMENT,
      details: `interval_ms must be at least ${MIN_STATS_INTERVAL_MS} (got ${intervalMs})`,
    });
    return;
  }
  const limit = options.limit ?? processWatchLimit;
  if (!limit.tryAcquire()) {
    call.emit('error', {
      code: grpc.status.RESOURCE_EXHAUSTED,
      details: `watch_streams: ${limit.max} watch streams are open on this server, its limit; close one and retry`,
    });
    return;
  }
  let waitingForDrain = false;
  let ended = false;
  const send = (): void => {
    if (ended) return;
    if (waitingForDrain) {
      options.onSkip?.();
      return;
    }
    waitingForDrain = !call.write(produce());
  };
  const onDrain = (): void => {
    waitingForDrain = false;
    send();
  };
  call.on('drain', onDrain);
  send();
  const timer = setInterval(send, intervalMs);
  const stop = (): void => {
    if (ended) return;
    ended = true;
    clearInterval(timer);
    call.off('drain', onDrain);
    limit.release();
  };
  call.on('cancelled', stop);
  call.on('close', stop);
  call.on('finish', stop);
  call.on('error', stop);
}

/**
 * Answers a unary call from a promise: its value, or the status `toStatus` maps its error to.
 * NF APIs use it so that validation errors become INVALID_ARGUMENT naming the field, and so on.
 */
export function replyFrom<T>(
  work: () => Promise<T> | T,
  callback: grpc.sendUnaryData<T>,
  toStatus: (err: unknown) => Partial<grpc.StatusObject>,
): void {
  // Through a resolved promise, so that a synchronous throw in `work` becomes a status too.
  Promise.resolve()
    .then(work)
    .then(
      (value) => callback(null, value),
      (err: unknown) => callback(toStatus(err) as grpc.ServiceError),
    );
}

/** A client's unary method as grpc-js generates it (request, metadata, options, callback). */
export type UnaryMethod<Req, Res> = (
  req: Req,
  meta: grpc.Metadata,
  opts: grpc.CallOptions,
  cb: (err: grpc.ServiceError | null, res?: Res) => void,
) => unknown;

/** Calls a bound unary client method as a promise, with a deadline `timeoutMs` from now. */
export function unaryCall<Req, Res>(
  fn: UnaryMethod<Req, Res>,
  req: Req,
  timeoutMs = 10_000,
): Promise<Res> {
  return new Promise((resolve, reject) =>
    fn(req, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) =>
      err ? reject(err) : resolve(res as Res),
    ),
  );
}
