import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { createLogger, type Logger } from '@flowline/telemetry';
import type { Row } from './atoms';
import {
  OvsdbConnectionError,
  OvsdbProtocolError,
  OvsdbRpcError,
  OvsdbTimeoutError,
  OvsdbTransactionError,
} from './errors';
import { JsonStreamSplitter } from './json-stream';
import {
  formatOvsRemote,
  openOvsSocket,
  OvsRemoteError,
  parseOvsRemote,
  readTls,
  type OvsRemote,
  type OvsTls,
} from './remote';

/** One operation of a transact (RFC 7047 section 5.2). */
export type Operation = Record<string, unknown> & { op: string };

/** What `transact` returns per operation (insert: uuid; select: rows; update/mutate/delete: count). */
export interface OperationResult {
  uuid?: ['uuid', string];
  rows?: Row[];
  count?: number;
}

/** "monitor" update notification content: table → row uuid → { old?, new? }. */
export type TableUpdates = Record<string, Record<string, { old?: Row; new?: Row }>>;

export interface MonitorRequest {
  columns?: string[];
  select?: { initial?: boolean; insert?: boolean; delete?: boolean; modify?: boolean };
}

export interface Monitor {
  readonly id: string;
  /** The table contents when the monitor was set up (RFC 7047 section 4.1.5). */
  readonly initial: TableUpdates;
  cancel(): Promise<void>;
}

export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  factor: number;
}

export interface OvsdbClientOptions {
  /** Path of ovsdb-server's unix socket (its --remote=punix:PATH); or give `remote`. */
  socketPath?: string;
  /**
   * Where ovsdb-server listens, in OVS's syntax: unix:PATH, or tcp:HOST:PORT for a server with
   * --remote=ptcp:PORT (ovs-vsctl set-manager ptcp:PORT:IP), e.g. another node's OVS.
   */
  remote?: string;
  /** Key, certificate and CA (PEM files) for an ssl: remote. */
  tls?: OvsTls;
  /** Per request; default 10 s. */
  requestTimeoutMs?: number;
  /** Reconnect after the connection drops, re-establishing monitors; default true. */
  reconnect?: boolean;
  backoff?: Partial<BackoffOptions>;
  /**
   * Gives up connecting at first after this long; default 5 s. It bounds each attempt too (the
   * connect, and for ssl: the TLS handshake): one to an address that drops packets, or to a
   * peer that accepts but never completes TLS, fails at the deadline. Reconnecting after a
   * drop retries forever, each attempt bounded by this.
   */
  connectTimeoutMs?: number;
  logger?: Logger;
}

interface Pending {
  method: string;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

interface ActiveMonitor {
  db: string;
  requests: Record<string, MonitorRequest>;
  onUpdate: (updates: TableUpdates, resync: boolean) => void;
}

const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 100, maxMs: 5000, factor: 2 };

/**
 * An OVSDB client written from RFC 7047: JSON-RPC 1.0 over ovsdb-server's unix socket, with
 * transact, monitor / monitor_cancel and their update notifications, echo in both directions
 * (the server's echo requests are answered, `echo()` probes the server), and reconnection with
 * exponential backoff that re-creates active monitors.
 *
 * Events: 'update' (monitorId, updates), 'disconnect' (error), 'reconnect' (), 'error' (error,
 * only when there is a listener).
 */
export class OvsdbClient extends EventEmitter {
  private socket: Socket | undefined;
  private splitter = new JsonStreamSplitter();
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly monitors = new Map<string, ActiveMonitor>();
  private closed = false;
  /** Aborted by close(): cancels a connect attempt or backoff wait in flight. */
  private readonly closing = new AbortController();
  private reconnecting: Promise<void> | undefined;
  private readonly log: Logger;
  private readonly backoff: BackoffOptions;
  private readonly timeoutMs: number;
  private readonly target: OvsRemote;
  private tlsFiles: { key: Buffer; cert: Buffer; ca: Buffer } | undefined;
  /** The server as OVS writes it (unix:PATH or tcp:HOST:PORT), for messages. */
  readonly remote: string;

  private constructor(private readonly options: OvsdbClientOptions) {
    super();
    if (options.remote !== undefined && options.socketPath !== undefined)
      throw new OvsRemoteError('give OvsdbClient socketPath or remote, not both', {
        socketPath: options.socketPath,
        remote: options.remote,
      });
    if (options.remote === undefined && options.socketPath === undefined)
      throw new OvsRemoteError('OvsdbClient needs socketPath or remote');
    this.target =
      options.remote !== undefined
        ? parseOvsRemote(options.remote)
        : { kind: 'unix', path: options.socketPath! };
    this.remote = formatOvsRemote(this.target);
    if (this.target.kind === 'ssl' && !options.tls)
      throw new OvsRemoteError(
        `OVS remote ${this.remote} needs tls (private key, certificate and CA certificate)`,
        { remote: this.remote },
      );
    if (this.target.kind === 'ssl') this.tlsFiles = readTls(options.tls!, this.remote);
    this.log = options.logger ?? createLogger('ovsdb-client');
    this.backoff = { ...DEFAULT_BACKOFF, ...options.backoff };
    this.timeoutMs = options.requestTimeoutMs ?? 10_000;
  }

  /** Connects, retrying with backoff until `connectTimeoutMs`. */
  static async connect(options: OvsdbClientOptions): Promise<OvsdbClient> {
    const client = new OvsdbClient(options);
    await client.connectWithRetry(options.connectTimeoutMs ?? 5000);
    return client;
  }

  /** The unix socket's path; undefined for a TCP remote. */
  get socketPath(): string | undefined {
    return this.target.kind === 'unix' ? this.target.path : undefined;
  }

  get connected(): boolean {
    return this.socket !== undefined && !this.socket.destroyed && !this.socket.connecting;
  }

  private openSocket(timeoutMs: number): Promise<Socket> {
    return openOvsSocket(this.target, this.tlsFiles, this.options.tls?.peerName, {
      timeoutMs,
      signal: this.closing.signal,
    });
  }

  private attach(socket: Socket): void {
    this.socket = socket;
    this.splitter = new JsonStreamSplitter();
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      let messages: unknown[];
      try {
        messages = this.splitter.push(chunk);
      } catch (err) {
        this.log.error('protocol error, dropping the connection', { err });
        socket.destroy(err as Error);
        return;
      }
      for (const m of messages) this.dispatch(m);
    });
    socket.on('error', (err) => this.log.debug('socket error', { err: err.message }));
    socket.on('close', () => {
      if (this.socket !== socket) return;
      this.socket = undefined;
      const err = new OvsdbConnectionError(`connection to ovsdb-server at ${this.remote} closed`, {
        remote: this.remote,
      });
      this.failPending(err);
      if (this.closed) return;
      this.emit('disconnect', err);
      if (this.options.reconnect ?? true) {
        this.reconnecting = this.connectWithRetry(Infinity)
          .then(() => this.resubscribe())
          .then(() => {
            this.reconnecting = undefined;
            this.emit('reconnect');
          })
          .catch((e: unknown) => {
            this.reconnecting = undefined;
            if (!this.closed) this.log.error('reconnect failed', { err: e });
          });
      }
    });
  }

  private async connectWithRetry(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const attemptMs = this.options.connectTimeoutMs ?? 5000;
    let delay = this.backoff.initialMs;
    let lastError: unknown;
    const closedWhileConnecting = (): OvsdbConnectionError =>
      new OvsdbConnectionError(`client closed while connecting to ${this.remote}`, {
        remote: this.remote,
      });
    for (;;) {
      if (this.closed) throw closedWhileConnecting();
      let socket: Socket | undefined;
      try {
        // Each attempt within what is left of the deadline (and within connectTimeoutMs when
        // reconnecting, which has none), so that one hung connect cannot outlast it.
        socket = await this.openSocket(Math.max(1, Math.min(attemptMs, deadline - Date.now())));
      } catch (err) {
        lastError = err;
      }
      // close() may have come while it connected: then the socket is no one's.
      if (this.closed) {
        socket?.destroy();
        throw closedWhileConnecting();
      }
      if (socket) {
        this.attach(socket);
        return;
      }
      if (Date.now() + delay > deadline) break;
      await this.sleep(delay);
      delay = Math.min(this.backoff.maxMs, delay * this.backoff.factor);
    }
    throw new OvsdbConnectionError(
      `cannot connect to ovsdb-server at ${this.remote}: ${(lastError as Error)?.message}; ` +
        (this.target.kind === 'unix'
          ? 'is ovsdb-server running with --remote=punix:<that path>?'
          : `is ovsdb-server listening there (--remote=p${this.target.kind}:<port>:<ip>, or ovs-vsctl set-manager), the port reachable${this.target.kind === 'ssl' ? ', and are both certificates signed by the CA the other side trusts' : ''}?`),
      { remote: this.remote, timeoutMs },
      { cause: lastError },
    );
  }

  /** Waits `ms`, or less when close() comes first. */
  private sleep(ms: number): Promise<void> {
    const signal = this.closing.signal;
    if (signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  private async resubscribe(): Promise<void> {
    for (const [id, m] of this.monitors) {
      const initial = (await this.request('monitor', [m.db, id, m.requests])) as TableUpdates;
      m.onUpdate(initial ?? {}, true);
    }
  }

  private failPending(err: Error): void {
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      this.pending.delete(id);
      p.reject(err);
    }
  }

  private send(message: unknown): void {
    if (!this.socket || !this.connected)
      throw new OvsdbConnectionError(`not connected to ovsdb-server at ${this.remote}`, {
        remote: this.remote,
      });
    this.socket.write(JSON.stringify(message));
  }

  private dispatch(message: unknown): void {
    if (typeof message !== 'object' || message === null) return;
    const m = message as {
      id?: unknown;
      method?: string;
      params?: unknown[];
      result?: unknown;
      error?: unknown;
    };
    if (typeof m.method === 'string') {
      // A request or notification from the server.
      if (m.method === 'echo' && m.id !== null && m.id !== undefined) {
        this.send({ id: m.id, result: m.params ?? [], error: null });
      } else if (m.method === 'update' && Array.isArray(m.params)) {
        const [monitorId, updates] = m.params as [string, TableUpdates];
        const active = this.monitors.get(monitorId);
        active?.onUpdate(updates, false);
        this.emit('update', monitorId, updates);
      } else if (m.id !== null && m.id !== undefined) {
        this.send({ id: m.id, result: null, error: `unknown method ${m.method}` });
      }
      return;
    }
    if (typeof m.id !== 'number') return;
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    clearTimeout(p.timer);
    if (m.error !== null && m.error !== undefined) p.reject(new OvsdbRpcError(p.method, m.error));
    else p.resolve(m.result);
  }

  /** Sends one JSON-RPC request and resolves with its result. */
  async request(method: string, params: unknown[], timeoutMs = this.timeoutMs): Promise<unknown> {
    if (this.closed) throw new OvsdbConnectionError('OVSDB client is closed', { method });
    if (!this.connected && this.reconnecting) {
      await Promise.race([this.reconnecting, new Promise((r) => setTimeout(r, timeoutMs))]);
    }
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(
          new OvsdbTimeoutError(`OVSDB ${method} got no reply within ${timeoutMs} ms`, {
            method,
            remote: this.remote,
          }),
        );
      }, timeoutMs);
      this.pending.set(id, { method, resolve, reject, timer });
      try {
        this.send({ id, method, params });
      } catch (err) {
        clearTimeout(timer);
        this.pending.delete(id);
        reject(err as Error);
      }
    });
  }

  listDbs(): Promise<string[]> {
    return this.request('list_dbs', []) as Promise<string[]>;
  }

  getSchema(db: string): Promise<Record<string, unknown>> {
    return this.request('get_schema', [db]) as Promise<Record<string, unknown>>;
  }

  /**
   * Runs operations as one atomic transaction. Throws OvsdbTransactionError naming the failed
   * operation (or the commit, when the server appends an error past the last operation).
   */
  async transact(db: string, operations: readonly Operation[]): Promise<OperationResult[]> {
    const results = (await this.request('transact', [db, ...operations])) as (
      (OperationResult & { error?: string; details?: string }) | null
    )[];
    results.forEach((r, i) => {
      if (r && typeof r.error === 'string')
        throw new OvsdbTransactionError(i, r.error, r.details, operations[i] ?? 'commit');
    });
    return results.slice(0, operations.length).map((r) => r ?? {});
  }

  /** Sets up a monitor; `onUpdate` gets every later change (and a resync after reconnect). */
  async monitor(
    db: string,
    requests: Record<string, MonitorRequest>,
    onUpdate: (updates: TableUpdates, resync: boolean) => void,
  ): Promise<Monitor> {
    const id = `m${this.nextId++}`;
    const initial = ((await this.request('monitor', [db, id, requests])) ?? {}) as TableUpdates;
    this.monitors.set(id, { db, requests, onUpdate });
    return { id, initial, cancel: () => this.monitorCancel(id) };
  }

  async monitorCancel(id: string): Promise<void> {
    this.monitors.delete(id);
    if (this.connected) await this.request('monitor_cancel', [id]);
  }

  /** Round trip to the server; resolves with the time it took in ms. */
  async echo(): Promise<number> {
    const t0 = performance.now();
    const payload = [`flowline-${Date.now()}`];
    const got = await this.request('echo', payload);
    if (JSON.stringify(got) !== JSON.stringify(payload))
      throw new OvsdbProtocolError('OVSDB echo returned different params', { sent: payload, got });
    return performance.now() - t0;
  }

  /** Closes the connection; pending requests fail with OvsdbConnectionError. */
  close(): void {
    this.closed = true;
    this.closing.abort(new OvsdbConnectionError('OVSDB client closed', { remote: this.remote }));
    this.monitors.clear();
    const s = this.socket;
    this.socket = undefined;
    this.failPending(new OvsdbConnectionError('OVSDB client closed'));
    s?.destroy();
  }
}
