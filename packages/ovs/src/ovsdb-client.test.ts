import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSecureContext, TLSSocket } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { JsonStreamSplitter } from './json-stream';
import { OvsdbClient } from './ovsdb-client';
import {
  OvsConnectTimeoutError,
  OvsdbConnectionError,
  OvsdbProtocolError,
  OvsdbRpcError,
  OvsdbTimeoutError,
  OvsdbTransactionError,
} from './errors';
import { decodeMap, decodeSet, map, set, uuid } from './atoms';
import type { OvsTls } from './remote';
import { TestPki } from '../test/support/pki';
import { Signal } from '../test/support/signal';

/**
 * openOvsSocket as it is, with a hook run once a socket has connected and before the client
 * resumes: the moment a close() can come between the two.
 */
const opened = vi.hoisted(() => ({ hook: undefined as (() => void) | undefined }));
vi.mock('./remote', async (importOriginal) => {
  const actual = await importOriginal<typeof import('./remote')>();
  return {
    ...actual,
    openOvsSocket: async (...args: Parameters<typeof actual.openOvsSocket>) => {
      const socket = await actual.openOvsSocket(...args);
      opened.hook?.();
      return socket;
    },
  };
});
afterEach(() => {
  opened.hook = undefined;
});

/** A scripted OVSDB server on a unix socket: `handle` answers each request. */
class FakeServer {
  server: Server;
  sockets: Socket[] = [];
  received: Record<string, unknown>[] = [];
  /** Notified on every message received. */
  readonly arrived = new Signal();
  constructor(
    readonly path: string,
    private handle: (msg: Record<string, unknown>, sock: Socket) => void,
  ) {
    this.server = createServer((sock) => {
      this.sockets.push(sock);
      const splitter = new JsonStreamSplitter();
      sock.setEncoding('utf8');
      sock.on('data', (d: string) => {
        for (const m of splitter.push(d)) {
          this.received.push(m as Record<string, unknown>);
          this.handle(m as Record<string, unknown>, sock);
          this.arrived.notify();
        }
      });
      sock.on('error', () => undefined);
    });
  }
  listen(): Promise<void> {
    return new Promise((r) => this.server.listen(this.path, r));
  }
  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((r) => this.server.close(r));
  }
}

const dirs: string[] = [];
const servers: FakeServer[] = [];
const clients: OvsdbClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const s of servers.splice(0)) await s.close().catch(() => undefined);
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function setup(
  handle: (msg: Record<string, unknown>, sock: Socket) => void,
): Promise<FakeServer> {
  const dir = mkdtempSync(join(tmpdir(), 'ovsdb-test-'));
  dirs.push(dir);
  const s = new FakeServer(join(dir, 'db.sock'), handle);
  servers.push(s);
  await s.listen();
  return s;
}
const reply = (sock: Socket, id: unknown, result: unknown, error: unknown = null): void => {
  sock.write(JSON.stringify({ id, result, error }));
};

describe('JsonStreamSplitter', () => {
  it('splits back-to-back messages and joins split ones, with brackets inside strings', () => {
    const s = new JsonStreamSplitter();
    expect(s.push('{"a":"}{[","b":[1,2]}{"c"')).toEqual([{ a: '}{[', b: [1, 2] }]);
    expect(s.push(':"x\\"}"}  {"d":1}')).toEqual([{ c: 'x"}' }, { d: 1 }]);
  });
  it('rejects garbage at top level', () => {
    expect(() => new JsonStreamSplitter().push('hello')).toThrow(/non-object/);
  });
});

describe('atoms', () => {
  it('encodes and decodes sets, maps and uuids', () => {
    expect(map({ a: 'b', n: 1 })).toEqual([
      'map',
      [
        ['a', 'b'],
        ['n', '1'],
      ],
    ]);
    expect(decodeMap(['map', [['k', 'v']]])).toEqual({ k: 'v' });
    expect(decodeSet(['set', [uuid('u1'), uuid('u2')]])).toEqual(['u1', 'u2']);
    expect(decodeSet(uuid('u1'))).toEqual(['u1']);
    expect(set(['x'])).toEqual(['set', ['x']]);
  });
});

describe('OvsdbClient', () => {
  it('transacts, answers the server echo, and maps a failed operation to OvsdbTransactionError', async () => {
    const s = await setup((m, sock) => {
      if (m.method === 'transact') {
        const ops = (m.params as unknown[]).slice(1);
        // First ask the client for an echo, then answer.
        sock.write(JSON.stringify({ id: 'srv-echo', method: 'echo', params: ['ping'] }));
        if (ops.length === 2)
          reply(sock, m.id, [{ count: 1 }, { error: 'constraint violation', details: 'no' }]);
        else reply(sock, m.id, [{ uuid: ['uuid', 'abc'] }]);
      }
    });
    const c = await OvsdbClient.connect({ socketPath: s.path, reconnect: false });
    clients.push(c);
    const [r] = await c.transact('Open_vSwitch', [{ op: 'insert', table: 'Bridge', row: {} }]);
    expect(r?.uuid).toEqual(['uuid', 'abc']);
    const err = await c
      .transact('Open_vSwitch', [
        { op: 'mutate', table: 'A' },
        { op: 'insert', table: 'B' },
      ])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OvsdbTransactionError);
    expect((err as OvsdbTransactionError).index).toBe(1);
    expect((err as OvsdbTransactionError).error).toBe('constraint violation');
    // the client answers the server's echo with the server's id and params
    await s.arrived.until(
      () => s.received.some((m) => m.id === 'srv-echo'),
      "the client's answer to the server's echo",
    );
    expect(s.received.filter((m) => m.id === 'srv-echo')).toEqual([
      { id: 'srv-echo', result: ['ping'], error: null },
    ]);
  });

  it('echo round-trips on the wire, rpc errors are typed, and a silent server times out', async () => {
    // how the fake answers echo: as a server should, with another request's id, or other params
    let answer: 'echo' | 'wrong-id' | 'other-params' = 'echo';
    const s = await setup((m, sock) => {
      if (m.method === 'echo') {
        if (answer === 'echo') reply(sock, m.id, m.params);
        if (answer === 'wrong-id') reply(sock, Number(m.id) + 1000, m.params);
        if (answer === 'other-params') reply(sock, m.id, ['not what was sent']);
      }
      if (m.method === 'get_schema') reply(sock, m.id, null, { error: 'unknown database' });
    });
    const c = await OvsdbClient.connect({
      socketPath: s.path,
      reconnect: false,
      requestTimeoutMs: 200,
    });
    clients.push(c);
    const ms = await c.echo();
    const sent = s.received.filter((m) => m.method === 'echo');
    expect(sent).toHaveLength(1); // one request went over the socket ...
    expect(sent[0]!.params).toEqual([expect.stringMatching(/^flowline-\d+$/)]);
    expect(typeof sent[0]!.id).toBe('number');
    expect(Number.isFinite(ms) && ms >= 0).toBe(true); // ... and its answer timed the round trip
    // a reply to another id is not this echo's answer; other params are a protocol error
    answer = 'wrong-id';
    await expect(c.echo()).rejects.toBeInstanceOf(OvsdbTimeoutError);
    answer = 'other-params';
    await expect(c.echo()).rejects.toBeInstanceOf(OvsdbProtocolError);
    await expect(c.getSchema('nope')).rejects.toBeInstanceOf(OvsdbRpcError);
    await expect(c.listDbs()).rejects.toBeInstanceOf(OvsdbTimeoutError);
  });

  it('delivers monitor updates and reconnects with backoff, re-creating the monitor', async () => {
    const s = await setup((m, sock) => {
      if (m.method === 'monitor') reply(sock, m.id, { Bridge: { u1: { new: { name: 'br0' } } } });
      if (m.method === 'monitor_cancel') reply(sock, m.id, {});
    });
    const c = await OvsdbClient.connect({
      socketPath: s.path,
      backoff: { initialMs: 20, maxMs: 100 },
    });
    clients.push(c);
    const seen: { updates: unknown; resync: boolean }[] = [];
    const updated = new Signal();
    const mon = await c.monitor(
      'Open_vSwitch',
      { Bridge: { columns: ['name'] } },
      (updates, resync) => {
        seen.push({ updates, resync });
        updated.notify();
      },
    );
    expect(mon.initial).toEqual({ Bridge: { u1: { new: { name: 'br0' } } } });
    s.sockets[0]!.write(
      JSON.stringify({
        id: null,
        method: 'update',
        params: [mon.id, { Bridge: { u2: { new: { name: 'br1' } } } }],
      }),
    );
    await updated.until(() => seen.length > 0, 'the update notification');
    expect(seen).toEqual([
      { updates: { Bridge: { u2: { new: { name: 'br1' } } } }, resync: false },
    ]);

    const reconnected = new Promise((r) => c.once('reconnect', r));
    const disconnected = new Promise((r) => c.once('disconnect', r));
    s.sockets[0]!.destroy();
    expect(await disconnected).toBeInstanceOf(OvsdbConnectionError);
    await reconnected;
    expect(s.sockets.length).toBe(2);
    expect(seen[1]).toEqual({
      updates: { Bridge: { u1: { new: { name: 'br0' } } } },
      resync: true,
    });
    await mon.cancel();
    expect(s.received.filter((m) => m.method === 'monitor_cancel')).toHaveLength(1);
  });

  it('close() as a reconnect connects: the socket is closed, not kept', async () => {
    const s = await setup(() => undefined);
    const closed = new Signal();
    s.server.on('connection', (sock: Socket) => {
      sock.on('close', () => closed.notify());
      closed.notify();
    });
    const c = await OvsdbClient.connect({ socketPath: s.path, backoff: { initialMs: 10 } });
    clients.push(c);
    opened.hook = () => c.close();
    s.sockets[0]!.destroy();
    await closed.until(() => s.sockets.length === 2, 'the reconnect', 2000);
    await closed.until(
      () => s.sockets[1]!.destroyed,
      "the reconnect's connection closed by the closed client",
      1000,
    );
    expect(c.connected).toBe(false);
  });

  it('fails connecting to a missing socket with a message that says what to check', async () => {
    const err = await OvsdbClient.connect({
      socketPath: '/nonexistent/db.sock',
      connectTimeoutMs: 100,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OvsdbConnectionError);
    expect(String((err as Error).message)).toMatch(/--remote=punix/);
  });
});

describe('OvsdbClient over ssl:', () => {
  let pkiDir = '';
  let client: OvsTls;
  let server: OvsTls;
  beforeAll(() => {
    pkiDir = mkdtempSync(join(tmpdir(), 'ovsdb-pki-'));
    const pki = new TestPki(pkiDir);
    client = pki.issue('flowline-controller');
    server = pki.issue('ovs-switch.node-a', { san: true });
  });
  afterAll(() => rmSync(pkiDir, { recursive: true, force: true }));

  const cleanups: (() => Promise<unknown> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  /** Listens on 127.0.0.1: the raw TCP connections it accepts, and whether each has closed. */
  async function listen(
    srv: Server,
  ): Promise<{ port: number; accepted: Socket[]; closed: Signal }> {
    const accepted: Socket[] = [];
    const closed = new Signal();
    srv.on('connection', (s: Socket) => {
      accepted.push(s);
      s.on('error', () => undefined);
      s.on('close', () => closed.notify());
      closed.notify();
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    cleanups.push(async () => {
      for (const s of accepted) s.destroy();
      await new Promise((r) => srv.close(r));
    });
    return { port: (srv.address() as AddressInfo).port, accepted, closed };
  }

  it('gives up at connectTimeoutMs on a peer that accepts TCP but never completes TLS', async () => {
    // Reads (and drops) what comes, so that it sees the connection end; never answers.
    const { port, accepted, closed } = await listen(createServer((s) => s.resume()));
    const remote = `ssl:127.0.0.1:${port}`;
    const start = Date.now();
    const connecting = OvsdbClient.connect({
      remote,
      tls: client,
      connectTimeoutMs: 200,
      reconnect: false,
    }).then(
      (c) => {
        c.close();
        return new Error('connected to a peer that never spoke TLS');
      },
      (e: unknown) => e,
    );
    const err = await Promise.race([
      connecting,
      new Promise((r) => setTimeout(() => r('still connecting after 2 s'), 2000)),
    ]);
    expect(Date.now() - start).toBeLessThan(1000);
    expect(err).toBeInstanceOf(OvsdbConnectionError);
    expect((err as Error).message).toMatch(
      new RegExp(
        `^cannot connect to ovsdb-server at ${remote}: the TLS handshake with ${remote} did not complete within \\d+ ms`,
      ),
    );
    const cause = (err as Error).cause;
    expect(cause).toBeInstanceOf(OvsConnectTimeoutError);
    expect((cause as OvsConnectTimeoutError).context).toMatchObject({
      remote,
      phase: 'tls-handshake',
    });
    // The abandoned attempt's connection is closed, not left to the peer.
    expect(accepted.length).toBeGreaterThan(0);
    await closed.until(() => accepted.every((s) => s.destroyed), 'the attempts closed', 1000);
  });

  it('close() during a reconnect that hangs in the TLS handshake ends it at once', async () => {
    const secureContext = createSecureContext({
      key: readFileSync(server.privateKey),
      cert: readFileSync(server.certificate),
      ca: readFileSync(server.caCert),
    });
    // The first connection gets TLS; later ones are accepted and read, never answered.
    const connected: { client?: OvsdbClient } = {};
    let connections = 0;
    const { port, accepted, closed } = await listen(
      createServer((raw) => {
        if (++connections === 1) {
          new TLSSocket(raw, { isServer: true, secureContext }).on('error', () => undefined);
          return;
        }
        raw.resume();
        // The client is in the handshake now, its attempt bounded by connectTimeoutMs (5 s).
        connected.client?.close();
      }),
    );
    const c = await OvsdbClient.connect({
      remote: `ssl:127.0.0.1:${port}`,
      tls: client,
      backoff: { initialMs: 10 },
      connectTimeoutMs: 5000,
    });
    connected.client = c;
    cleanups.push(() => c.close());
    accepted[0]!.destroy();
    await closed.until(() => accepted.length === 2, 'the reconnect', 2000);
    await closed.until(
      () => accepted[1]!.destroyed,
      "the reconnect's connection closed by close(), before its attempt's timeout",
      1000,
    );
    expect(c.connected).toBe(false);
    await new Promise((r) => setTimeout(r, 100));
    expect(accepted).toHaveLength(2); // and it did not try again
  });
});
