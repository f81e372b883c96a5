import * as grpc from '@grpc/grpc-js';
import { certificatesLoaded } from '@flowline/grpc-auth';
import { chainV1, unaryCall } from '@flowline/proto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TestPki } from '../test/support/pki';
import { RawGrpcReader } from '../test/support/raw-grpc-reader';
import { until } from '../test/support/until';
import type { ChainSwitch } from './chain-switch';
import { ChainController } from './controller';
import type { NfDirectory } from './directory';
import { ChainKeyConflictError } from './errors';
import { MAX_HOPS } from './limits';
import { toStatus } from './service';
import { createChainServer } from './chain-server';
import { MemoryChainStore } from './store';
import type { WatchOutbox } from './watch-outbox';

/**
 * ChainService's limits and access on the wire: the controller's gRPC server (createChainServer,
 * mutual TLS with certificates from a test CA) on a unix socket over a controller with an
 * in-memory switch; the NFs nf-0..nf-19 each have ports <nf>-in and <nf>-out. The client is the
 * operator's unless a test says otherwise.
 */
const pkiDir = mkdtempSync(join(tmpdir(), 'flowline-svc-pki-'));
const pki = new TestPki(pkiDir);
const controllerTls = pki.controller();
const operatorTls = pki.operator();
afterAll(() => rmSync(pkiDir, { recursive: true, force: true }));

const NFS = Array.from({ length: 20 }, (_, i) => `nf-${i}`);
const directory: NfDirectory = {
  lookup: async (nf) =>
    NFS.includes(nf) ? { name: nf, interfaces: { in: `${nf}-in`, out: `${nf}-out` } } : undefined,
};
const hops = (n: number): chainV1.Hop[] =>
  NFS.slice(0, n).map((nf) => ({ nf, ingressInterface: 'in', egressInterface: 'out' }));
const specWith = (n: number, srcPrefix = '10.0.0.0/8'): chainV1.ChainSpec => ({
  classifier: { ingressPort: 'uplink', srcPrefix, protocol: 'udp' },
  hops: hops(n),
  egressPort: 'sink',
});

class TableSwitch implements ChainSwitch {
  table: string[] = [];
  async apply(flows: string[]) {
    this.table = flows;
  }
  async flowStats() {
    return [];
  }
  async portNames() {
    return new Set(['uplink', 'sink', ...NFS.flatMap((nf) => [`${nf}-in`, `${nf}-out`])]);
  }
}

describe('ChainService limits', () => {
  let work: string;
  let server: grpc.Server;
  let client: chainV1.ChainServiceClient;
  let controller: ChainController;
  let store: MemoryChainStore;
  let sw: TableSwitch;
  const outboxes: WatchOutbox[] = [];

  const start = async (maxChains: number, maxWatchStreams: number) => {
    sw = new TableSwitch();
    store = new MemoryChainStore();
    controller = new ChainController({ store, directory, switch: sw, maxChains });
    await controller.start();
    const made = createChainServer({
      controller,
      security: controllerTls,
      trustDomain: 'flowline',
      log: { warn: () => undefined },
      listener: 'test',
      service: { maxWatchStreams, onWatch: (o) => void (o && outboxes.push(o)) },
    });
    server = made.server;
    address = `unix://${join(work, 'cc.sock')}`;
    // As server.ts does: grpc-js drops the connections it accepts before it has read the
    // certificate files (on the busy thread pool of a CI run, this test's first call failed so).
    await certificatesLoaded(controllerTls);
    await new Promise<void>((res, rej) =>
      server.bindAsync(address, made.credentials, (e) => (e ? rej(e) : res())),
    );
    client = pki.chainClient(address, operatorTls);
  };
  let address = '';
  const create = (name: string, spec: chainV1.ChainSpec) =>
    unaryCall<{ name: string; spec: chainV1.ChainSpec }, chainV1.Chain__Output>(
      client.CreateChain.bind(client),
      {
        name,
        spec,
      },
    );
  const failure = (p: Promise<unknown>) =>
    p.then(
      () => undefined,
      (e: grpc.ServiceError) => e,
    );

  beforeEach(() => {
    work = mkdtempSync(join(tmpdir(), 'flowline-svc-'));
    outboxes.length = 0;
  });
  afterEach(() => {
    client?.close();
    server?.forceShutdown();
    controller?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it(`a chain of more than ${MAX_HOPS} hops is INVALID_ARGUMENT naming spec.hops`, async () => {
    await start(10, 4);
    expect(await create('long', specWith(MAX_HOPS)).then((c) => c.status?.phase)).toBe('ACTIVE');
    expect(await failure(create('longer', specWith(MAX_HOPS + 1)))).toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      details: `spec.hops: has ${MAX_HOPS + 1} hops; at most ${MAX_HOPS}`,
    });
  });

  it('CreateChain past the chain limit is RESOURCE_EXHAUSTED naming chains; nothing is made', async () => {
    await start(2, 4);
    await create('a', specWith(1, '10.0.0.0/8'));
    await create('b', specWith(1, '11.0.0.0/8'));
    const table = sw.table;
    const stored = await store.load();
    expect(await failure(create('c', specWith(1, '12.0.0.0/8')))).toMatchObject({
      code: grpc.status.RESOURCE_EXHAUSTED,
      details: expect.stringMatching(/^chains: the controller holds 2 chains, its limit/),
    });
    expect(controller.list().map((c) => c.name)).toEqual(['a', 'b']);
    expect(sw.table).toBe(table);
    expect(await store.load()).toEqual(stored);
    // Room again after a delete.
    await unaryCall(client.DeleteChain.bind(client), { name: 'a' });
    expect((await create('c', specWith(1, '12.0.0.0/8'))).name).toBe('c');
  });

  it('WatchChains streams past the limit are RESOURCE_EXHAUSTED naming watch_streams', async () => {
    await start(10, 2);
    await create('a', specWith(1));
    const open = () => {
      const stream = client.WatchChains({});
      const first = new Promise<unknown>((resolve) => {
        stream.once('data', resolve);
        stream.once('error', resolve);
      });
      return { stream, first };
    };
    const one = open();
    const two = open();
    expect(await one.first).toMatchObject({ type: 'ADDED' });
    expect(await two.first).toMatchObject({ type: 'ADDED' });
    const three = open();
    expect(await three.first).toMatchObject({
      code: grpc.status.RESOURCE_EXHAUSTED,
      details: expect.stringMatching(/^watch_streams: 2 WatchChains streams are open/),
    });
    // A cancelled stream frees its place.
    one.stream.on('error', () => undefined);
    one.stream.cancel();
    await until('a place', async () => {
      const next = open();
      next.stream.on('error', () => undefined);
      const got = await next.first;
      next.stream.cancel();
      return (got as { type?: string }).type === 'ADDED';
    });
    two.stream.cancel();
  });

  it('a reader that does not read is not buffered without bound: its changes are coalesced', async () => {
    const CHAINS = 10;
    const UPDATES = 100;
    await start(CHAINS, 4);
    for (let i = 0; i < CHAINS; i++) await create(`c${i}`, specWith(MAX_HOPS, `10.${i}.0.0/16`));
    const { WatchChains } = chainV1.loadChainV1().ChainService.service;
    const reader = new RawGrpcReader(
      join(work, 'cc.sock'),
      WatchChains.path,
      (bytes) => WatchChains.responseDeserialize(bytes) as chainV1.ChainEvent__Output,
      operatorTls,
    );
    try {
      await until('the stream open', () => outboxes.length === 1);
      const outbox = outboxes[0]!;
      for (let u = 1; u <= UPDATES; u++)
        for (let i = 0; i < CHAINS; i++)
          await unaryCall(client.UpdateChain.bind(client), {
            name: `c${i}`,
            spec: specWith(MAX_HOPS - (u % 2), `10.${i}.0.0/16`),
          });
      const produced = CHAINS * (UPDATES + 1);
      // Held for the reader: at most one entry per chain. Written: what the HTTP/2 window and
      // grpc-js's buffer took before write() said "full" (about 100 kB of ~1 kB events).
      expect(outbox.queued).toBeGreaterThan(0);
      expect(outbox.queued).toBeLessThanOrEqual(CHAINS);
      expect(outbox.written).toBeLessThan(200); // 90 here: 1,010 without the outbox
      expect(outbox.written + outbox.coalesced + outbox.queued).toBe(produced);
      // Reading again, it catches up with every chain's latest generation.
      reader.resume();
      const want = String(UPDATES + 1);
      await until('caught up', () => {
        const latest = new Map(reader.messages.map((e) => [e.chain?.name, e.chain?.generation]));
        return Array.from({ length: CHAINS }, (_, i) => latest.get(`c${i}`) === want).every(
          Boolean,
        );
      });
      expect(outbox.queued).toBe(0);
      expect(reader.messages.length).toBe(outbox.written);
      expect(outbox.written).toBeLessThan(produced / 4);
    } finally {
      reader.close();
    }
  });

  describe('access: mutual TLS, the operator only', () => {
    /** What a refused call must leave as it was: the flow table, the store, the chains. */
    const snapshot = async () => ({
      table: sw.table,
      stored: await store.load(),
      chains: controller.list().map((c) => [c.name, c.generation]),
    });
    const watchFirst = (c: chainV1.ChainServiceClient) =>
      new Promise<unknown>((resolve) => {
        const stream = c.WatchChains({});
        stream.once('data', resolve);
        stream.once('error', resolve);
      });

    it("the operator's certificate may create, read and delete", async () => {
      await start(10, 4);
      expect((await create('a', specWith(1))).status?.phase).toBe('ACTIVE');
      expect(await watchFirst(client)).toMatchObject({ type: 'ADDED' });
      await unaryCall(client.DeleteChain.bind(client), { name: 'a' });
      expect(controller.list()).toEqual([]);
    });

    it("an NF's certificate (another identity) gets PERMISSION_DENIED naming it, for every method; nothing changes", async () => {
      await start(10, 4);
      await create('a', specWith(1));
      const before = await snapshot();
      const fw = pki.chainClient(address, pki.nf('default', 'fw'));
      const denied = {
        code: grpc.status.PERMISSION_DENIED,
        details: expect.stringMatching(
          /^spiffe:\/\/flowline\/ns\/default\/nf\/fw may not call \/flowline\.chain\.v1\.ChainService\/\w+ \(allowed: spiffe:\/\/flowline\/flowline\/operator\)$/,
        ),
      };
      try {
        const spec = specWith(1, '11.0.0.0/8');
        expect(
          await failure(unaryCall(fw.CreateChain.bind(fw), { name: 'b', spec })),
        ).toMatchObject(denied);
        expect(
          await failure(unaryCall(fw.UpdateChain.bind(fw), { name: 'a', spec })),
        ).toMatchObject(denied);
        expect(await failure(unaryCall(fw.DeleteChain.bind(fw), { name: 'a' }))).toMatchObject(
          denied,
        );
        expect(await failure(unaryCall(fw.GetChain.bind(fw), { name: 'a' }))).toMatchObject(denied);
        expect(await failure(unaryCall(fw.ListChains.bind(fw), {}))).toMatchObject(denied);
        expect(await watchFirst(fw)).toMatchObject(denied);
        // The controller's own identity is no operator either.
        const self = pki.chainClient(address, controllerTls);
        expect(await failure(unaryCall(self.DeleteChain.bind(self), { name: 'a' }))).toMatchObject({
          code: grpc.status.PERMISSION_DENIED,
          details: expect.stringMatching(/^spiffe:\/\/flowline\/flowline\/controller may not call/),
        });
        self.close();
      } finally {
        fw.close();
      }
      expect(await snapshot()).toEqual(before);
    });

    it('a client without a certificate, or with one from another CA, fails the handshake; nothing changes', async () => {
      await start(10, 4);
      await create('a', specWith(1));
      const before = await snapshot();
      for (const c of [pki.chainClient(address), pki.chainClient(address, pki.selfSigned())]) {
        try {
          const err = await failure(
            unaryCall(c.CreateChain.bind(c), { name: 'b', spec: specWith(1, '11.0.0.0/8') }, 3000),
          );
          // No call reaches the server: the TLS handshake is refused (UNAVAILABLE).
          expect(err).toMatchObject({ code: grpc.status.UNAVAILABLE });
          expect(
            await failure(unaryCall(c.DeleteChain.bind(c), { name: 'a' }, 3000)),
          ).toMatchObject({ code: grpc.status.UNAVAILABLE });
        } finally {
          c.close();
        }
      }
      expect(await snapshot()).toEqual(before);
    });
  });
});

describe('toStatus', () => {
  it("a name sharing another chain's flow key is ALREADY_EXISTS naming name", () => {
    const st = toStatus(new ChainKeyConflictError('chain-mvja', 'chain-5pfs', 0x68b04e4f));
    expect(st.code).toBe(grpc.status.ALREADY_EXISTS);
    expect(st.details).toMatch(/^name: chain "chain-mvja" would share its flow key 0x68b04e4f/);
  });
});
