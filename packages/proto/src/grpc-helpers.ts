import * as grpc from '@grpc/grpc-js';

/** The shortest interval a Watch* stream accepts. */
export const MIN_STATS_INTERVAL_MS = 100;

/**
 * Serves a Watch* stream: refuses an interval under MIN_STATS_INTERVAL_MS with INVALID_ARGUMENT
 * naming interval_ms, writes one message at once and then one per interval until the client
 * cancels or the stream closes.
 */
export function streamEvery<T>(
  call: grpc.ServerWritableStream<unknown, T>,
  intervalMs: number,
  produce: () => T,
): void {
  if (intervalMs < MIN_STATS_INTERVAL_MS) {
    call.emit('error', {
      code: grpc.status.INVALID_ARGUMENT,
      details: `interval_ms must be at least ${MIN_STATS_INTERVAL_MS} (got ${intervalMs})`,
    });
    return;
  }
  call.write(produce());
  const timer = setInterval(() => call.write(produce()), intervalMs);
  const stop = (): void => clearInterval(timer);
  call.on('cancelled', stop);
  call.on('close', stop);
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
