import type { Socket } from 'node:net';
import { OpenFlowConnectionError, OpenFlowTimeoutError } from './errors';
import { formatOvsRemote, openOvsSocket, readTls, type OvsRemote, type OvsTls } from './remote';

/** OpenFlow message types this channel speaks (OpenFlow 1.0 to 1.5 share them). */
const HELLO = 0;
const ERROR = 1;
const ECHO_REQUEST = 2;
const ECHO_REPLY = 3;
/** The version offered in HELLO: OpenFlow 1.4, what the controller's ovs-ofctl calls use. */
const OFP14 = 0x05;

const header = (version: number, type: number, xid: number, body = Buffer.alloc(0)): Buffer => {
  const b = Buffer.alloc(8 + body.length);
  b.writeUInt8(version, 0);
  b.writeUInt8(type, 1);
  b.writeUInt16BE(b.length, 2);
  b.writeUInt32BE(xid, 4);
  body.copy(b, 8);
  return b;
};

/** A connection being made: its promise, how to abandon it, and how many echoes wait for it. */
interface Opening {
  promise: Promise<Socket>;
  abort: AbortController;
  waiters: number;
}

/**
 * A kept OpenFlow connection to a bridge's listener (a passive `ptcp:`/`pssl:` controller, or
 * the bridge's `.mgmt` socket) for one thing: echo round trips, which ovs-vswitchd answers
 * itself. OVSDB's echo is answered by ovsdb-server, which outlives a dead ovs-vswitchd; this
 * tells whether the switch that carries the packets is there. The connection is made at the
 * first echo (HELLO, version negotiated down to the switch's), kept, answered when the switch
 * sends its own echo requests, and made again at the next echo after it closes. Everything else
 * the switch sends (port status) is read and ignored. Its socket does not keep the process up.
 */
export class OpenFlowEcho {
  private socket: Socket | undefined;
  /**
   * The connection being made, shared by the echoes that wait for it; when the last of them
   * reaches its deadline it is abandoned (aborted: its socket destroyed), so that a switch that
   * accepts but never says HELLO (or never completes TLS) cannot leave it pending for good.
   */
  private opening: Opening | undefined;
  private version = OFP14;
  private xid = 0;
  private readonly pending = new Map<number, (err?: Error) => void>();
  private closed = false;

  constructor(
    private readonly remote: OvsRemote,
    private readonly tls?: OvsTls,
  ) {}

  /** One echo round trip within `timeoutMs` (connecting first if need be); rejects otherwise. */
  async echo(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new OpenFlowTimeoutError(
              `ovs-vswitchd at ${formatOvsRemote(this.remote)} did not answer an OpenFlow echo within ${timeoutMs} ms`,
              { remote: formatOvsRemote(this.remote) },
            ),
          ),
        timeoutMs,
      );
    });
    const xid = (this.xid = (this.xid + 1) >>> 0);
    let waitingFor: Opening | undefined;
    try {
      await Promise.race([
        (async () => {
          const socket = await this.connection((opening) => (waitingFor = opening));
          waitingFor = undefined;
          await new Promise<void>((resolve, reject) => {
            this.pending.set(xid, (err) => (err ? reject(err) : resolve()));
            socket.write(header(this.version, ECHO_REQUEST, xid));
          });
        })(),
        deadline,
      ]);
    } finally {
      clearTimeout(timer);
      this.pending.delete(xid);
      // Still waiting for the connection (the deadline passed): no longer.
      if (waitingFor && --waitingFor.waiters === 0 && this.opening === waitingFor) {
        this.opening = undefined;
        waitingFor.abort.abort(
          new OpenFlowTimeoutError(
            `no OpenFlow connection to ${formatOvsRemote(this.remote)} within ${timeoutMs} ms`,
            { remote: formatOvsRemote(this.remote), timeoutMs },
          ),
        );
      }
    }
  }

  /** Closes the connection; echoes in flight fail. */
  close(): void {
    this.closed = true;
    this.socket?.destroy();
    const opening = this.opening;
    this.opening = undefined;
    opening?.abort.abort(new OpenFlowConnectionError('the OpenFlow echo channel is closed'));
  }

  /** A socket error as this channel reports it: naming the remote, the cause kept. */
  private failure(err: Error): Error {
    if (err instanceof OpenFlowConnectionError) return err;
    return new OpenFlowConnectionError(
      `the OpenFlow connection to ${formatOvsRemote(this.remote)} failed: ${err.message}`,
      { remote: formatOvsRemote(this.remote) },
      { cause: err },
    );
  }

  /**
   * The kept connection, or the one being made (joined: `joined` is told which, for the
   * caller to leave it at its deadline).
   */
  private connection(joined: (opening: Opening) => void): Promise<Socket> {
    if (this.closed)
      return Promise.reject(new OpenFlowConnectionError('the OpenFlow echo channel is closed'));
    if (this.socket && !this.socket.destroyed) return Promise.resolve(this.socket);
    if (!this.opening) {
      const abort = new AbortController();
      const opening = {
        abort,
        waiters: 0,
        promise: this.open(abort.signal).finally(() => {
          if (this.opening === opening) this.opening = undefined;
        }),
      };
      this.opening = opening;
    }
    this.opening.waiters++;
    joined(this.opening);
    return this.opening.promise;
  }

  /**
   * Connects and exchanges HELLOs; resolves once the switch's HELLO set the version. `signal`
   * abandons it at any point before that (the socket destroyed).
   */
  private async open(signal: AbortSignal): Promise<Socket> {
    const files =
      this.remote.kind === 'ssl' && this.tls
        ? readTls(this.tls, formatOvsRemote(this.remote))
        : undefined;
    const socket = await openOvsSocket(this.remote, files, this.tls?.peerName, { signal }).catch(
      (err: Error) => {
        throw this.failure(err);
      },
    );
    socket.unref();
    if (this.closed || signal.aborted) {
      socket.destroy();
      throw this.failure(
        signal.aborted
          ? (signal.reason as Error)
          : new OpenFlowConnectionError('the OpenFlow echo channel is closed'),
      );
    }
    return new Promise<Socket>((resolve, reject) => {
      let buffered = Buffer.alloc(0);
      let hello = false;
      const fail = (err: Error): void => {
        signal.removeEventListener('abort', onAbort);
        for (const done of this.pending.values()) done(err);
        this.pending.clear();
        if (!hello) reject(err);
      };
      // Abandoned while waiting for the switch's HELLO.
      const onAbort = (): void => {
        if (!hello) socket.destroy(this.failure(signal.reason as Error));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      socket.on('data', (chunk: Buffer) => {
        buffered = Buffer.concat([buffered, chunk]);
        while (buffered.length >= 8) {
          const length = buffered.readUInt16BE(2);
          if (length < 8) {
            socket.destroy(new OpenFlowConnectionError(`OpenFlow message of length ${length}`));
            return;
          }
          if (buffered.length < length) break;
          const message = buffered.subarray(0, length);
          buffered = buffered.subarray(length);
          const [version, type, xid] = [message[0]!, message[1]!, message.readUInt32BE(4)];
          if (type === HELLO && !hello) {
            hello = true;
            signal.removeEventListener('abort', onAbort);
            this.version = Math.min(OFP14, version);
            this.socket = socket;
            resolve(socket);
          } else if (type === ECHO_REQUEST) {
            socket.write(header(this.version, ECHO_REPLY, xid, message.subarray(8)));
          } else if (type === ECHO_REPLY) {
            this.pending.get(xid)?.();
          } else if (type === ERROR) {
            socket.destroy(
              new OpenFlowConnectionError(
                `ovs-vswitchd at ${formatOvsRemote(this.remote)} answered with an OpenFlow error (type ${message.length >= 10 ? message.readUInt16BE(8) : '?'})`,
              ),
            );
            return;
          }
        }
      });
      socket.on('error', (err) => fail(this.failure(err)));
      socket.on('close', () => {
        if (this.socket === socket) this.socket = undefined;
        fail(
          new OpenFlowConnectionError(
            `the OpenFlow connection to ${formatOvsRemote(this.remote)} closed`,
          ),
        );
      });
      socket.write(header(OFP14, HELLO, 0));
    });
  }
}
