import { chmodSync, mkdirSync, unlinkSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { createLogger, type Logger } from '@flowline/telemetry';
import {
  encodeResponse,
  ProtocolError,
  RequestDecoder,
  type DaemonRequest,
} from './daemon-protocol';
import { invoke } from './invoke';

export const DEFAULT_DAEMON_SOCKET = '/run/flowline/cni.sock';

export interface CniDaemonOptions {
  socketPath: string;
  log?: Logger;
  /** How long stop() waits for invocations in flight before it closes their connections. */
  drainTimeoutMs?: number;
  /** How long a connection may take to send its whole request; default 10 s. */
  requestTimeoutMs?: number;
  /** Told of every invocation served (for metrics). */
  observe?: (served: ServedInvocation) => void;
}

export interface ServedInvocation {
  command: string;
  exitCode: number;
  /** The CNI error code of a failed invocation. */
  errorCode?: number;
  seconds: number;
  /** The request's size, the chunks it arrived in, and the bytes the decoder parsed to get it. */
  request: { bytes: number; chunks: number; parsedBytes: number };
}

export class CniDaemonError extends Error {
  override readonly name = 'CniDaemonError';
  constructor(
    message: string,
    readonly socketPath: string,
  ) {
    super(message);
  }
}

/** Whether something accepts connections on the unix socket at `path`. */
function listening(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createConnection(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}

/**
 * The resident CNI plugin: the native `flowline` executable forwards each exec-protocol
 * invocation here (daemon-protocol.ts), and it runs in this warm process through the same
 * invoke() the in-process fallback runs. The socket is the trust boundary: 0600 in a folder
 * only root can enter, since whoever may connect may add and remove OVS ports.
 */
export class CniDaemon {
  private readonly inFlight = new Set<Promise<void>>();
  private readonly sockets = new Set<Socket>();
  private stopped = false;

  private constructor(
    private readonly server: Server,
    readonly socketPath: string,
    private readonly log: Logger,
    private readonly drainTimeoutMs: number,
    private readonly requestTimeoutMs: number,
    private readonly observe: ((served: ServedInvocation) => void) | undefined,
  ) {}

  static async listen(options: CniDaemonOptions): Promise<CniDaemon> {
    const { socketPath } = options;
    const log = options.log ?? createLogger('cni-daemon');
    if (Buffer.byteLength(socketPath) > 107)
      throw new CniDaemonError(`socket path ${socketPath} is longer than 107 bytes`, socketPath);
    mkdirSync(dirname(socketPath), { recursive: true, mode: 0o700 });
    if (await listening(socketPath))
      throw new CniDaemonError(`another CNI daemon already listens on ${socketPath}`, socketPath);
    // A socket file left by a daemon that died: nothing answers on it.
    try {
      unlinkSync(socketPath);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const server = createServer({ allowHalfOpen: true });
    const daemon = new CniDaemon(
      server,
      socketPath,
      log,
      options.drainTimeoutMs ?? 30_000,
      options.requestTimeoutMs ?? 10_000,
      options.observe,
    );
    server.on('connection', (socket) => daemon.serve(socket));
    // Created 0600 (umask) rather than chmod'ed after: no window in which others may connect.
    const umask = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(socketPath, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      throw new CniDaemonError(
        `cannot listen on ${socketPath}: ${(err as Error).message}`,
        socketPath,
      );
    } finally {
      process.umask(umask);
    }
    chmodSync(socketPath, 0o600);
    log.info('listening', { socket: socketPath });
    return daemon;
  }

  private serve(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', (err) => this.log.warn('connection failed', { err: err.message }));
    // One decoder per connection, fed each chunk once: never the whole buffer again.
    const decoder = new RequestDecoder();
    let received = 0;
    let chunks = 0;
    let done = false;
    // A peer that never finishes its request must not hold a connection forever; once the
    // request is whole, the invocation takes as long as it takes (the runtime has its timeout).
    socket.setTimeout(this.requestTimeoutMs, () => {
      if (done) return;
      done = true;
      this.log.warn('request not received in time; closing', { bytes: received });
      socket.destroy();
    });
    const refuse = (msg: string, fields: Record<string, unknown>): void => {
      done = true;
      this.log.warn(msg, fields);
      socket.destroy();
    };
    const run = (request: DaemonRequest): void => {
      done = true;
      socket.setTimeout(0);
      const started = process.hrtime.bigint();
      const stats = { bytes: received, chunks, parsedBytes: decoder.parsedBytes };
      const running = invoke(request).then(
        ({ exitCode, stdout, errorCode }) => {
          socket.end(encodeResponse(exitCode, stdout));
          this.observe?.({
            command: request.env.CNI_COMMAND ?? '',
            exitCode,
            ...(errorCode !== undefined ? { errorCode } : {}),
            seconds: Number(process.hrtime.bigint() - started) / 1e9,
            request: stats,
          });
        },
        (err: unknown) => {
          // invoke() turns every failure into an error JSON; this is a bug, said as one.
          this.log.error('invocation threw', { err });
          socket.destroy();
        },
      );
      this.inFlight.add(running);
      void running.finally(() => this.inFlight.delete(running));
    };
    socket.on('data', (chunk: Buffer) => {
      if (done) return;
      received += chunk.length;
      chunks++;
      let request: DaemonRequest | undefined;
      try {
        request = decoder.push(chunk);
      } catch (err) {
        refuse('bad request', { err: (err as ProtocolError).message });
        return;
      }
      if (request) run(request);
    });
    socket.on('end', () => {
      if (!done) refuse('connection closed before a whole request arrived', { bytes: received });
    });
  }

  /** Stops accepting, lets invocations in flight finish (bounded), removes the socket file. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    const drained = Promise.all([...this.inFlight]);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.drainTimeoutMs);
    });
    if ((await Promise.race([drained, timedOut])) === 'timeout')
      this.log.warn('invocations still running at stop', { count: this.inFlight.size });
    clearTimeout(timer);
    for (const s of this.sockets) s.destroy();
    await closed;
    this.log.info('stopped', { socket: this.socketPath });
  }
}
