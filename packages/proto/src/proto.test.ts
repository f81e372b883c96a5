import * as grpc from '@grpc/grpc-js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  certificatesLoaded,
  channelCredentials,
  controllerId,
  issueCertificate,
  nfId,
  serverCredentials,
} from '@flowline/grpc-auth';
import {
  HEALTH_MAX_SERVICE_NAME,
  HEALTH_MAX_WATCHES,
  HealthService,
  ProtoNotFoundError,
  loadHealthV1,
  loadNetworkFunctionV1,
  loadProto,
} from './index';
import type { nfV1 } from './index';

describe('proto loader', () => {
  it('refuses a proto that does not exist, naming it', () => {
    expect(() => loadProto('flowline/missing/v1/missing.proto')).toThrow(ProtoNotFoundError);
    expect(() => loadProto('flowline/missing/v1/missing.proto')).toThrow(/missing\.proto/);
  });

  it('returns the same constructors on every load', () => {
    expect(loadNetworkFunctionV1().NetworkFunction).toBe(loadNetworkFunctionV1().NetworkFunction);
  });
});

describe('typed client and server over a unix socket', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flowline-proto-'));
  const address = `unix://${join(dir, 'nf.sock')}`;
  const server = new grpc.Server();
  const health = new HealthService({ '': 'SERVING', 'flowline.nf.v1.NetworkFunction': 'SERVING' });
  const nf = loadNetworkFunctionV1();
  const hv1 = loadHealthV1();
  let nfClient: nfV1.NetworkFunctionClient;
  let healthClient: InstanceType<typeof hv1.Health>;

  beforeAll(async () => {
    const handlers: nfV1.NetworkFunctionHandlers = {
      GetInfo: (_call, cb) =>
        cb(null, {
          name: 'fw-0',
          kind: 'firewall',
          ports: [{ name: 'net1', portId: 0, driver: 'net_virtio_user', linkUp: true, mtu: 1500 }],
          startedUnixNanos: '1700000000000000000',
        }),
      WatchStats: (call) => {
        if (call.request.intervalMs < 100) {
          call.emit('error', {
            code: grpc.status.INVALID_ARGUMENT,
            details: 'interval_ms must be at least 100',
          });
          return;
        }
        for (let i = 1; i <= 3; i++) {
          call.write({
            unixNanos: String(i),
            ports: [{ name: 'net1', rxPackets: String(i * 1000) }],
          });
        }
        call.end();
      },
    };
    server.addService(nf.NetworkFunction.service, handlers);
    health.addTo(server);
    await new Promise<void>((resolve, reject) =>
      server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err) =>
        err ? reject(err) : resolve(),
      ),
    );
    nfClient = new nf.NetworkFunction(address, grpc.credentials.createInsecure());
    healthClient = new hv1.Health(address, grpc.credentials.createInsecure());
  });

  afterAll(async () => {
    nfClient.close();
    healthClient.close();
    await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('GetInfo round-trips with 64-bit fields as strings and defaults filled', async () => {
    const info = await new Promise<nfV1.NetworkFunctionInfo__Output>((resolve, reject) =>
      nfClient.GetInfo({}, (err, res) => (err || !res ? reject(err) : resolve(res))),
    );
    expect(info.name).toBe('fw-0');
    expect(info.startedUnixNanos).toBe('1700000000000000000');
    expect(info.ports[0]).toMatchObject({
      name: 'net1',
      driver: 'net_virtio_user',
      linkUp: true,
      mac: '',
    });
    expect(info.workerLcores).toEqual([]);
  });

  it('WatchStats streams snapshots in order', async () => {
    const seen: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const stream = nfClient.WatchStats({ intervalMs: 100 });
      stream.on('data', (s: nfV1.StatsSnapshot__Output) => seen.push(s.ports[0]?.rxPackets ?? ''));
      stream.on('end', resolve);
      stream.on('error', reject);
    });
    expect(seen).toEqual(['1000', '2000', '3000']);
  });

  it('WatchStats carries the server status and message for a bad request', async () => {
    const err = await new Promise<grpc.ServiceError>((resolve) => {
      const stream = nfClient.WatchStats({ intervalMs: 5 });
      stream.on('data', () => undefined);
      stream.on('error', resolve);
    });
    expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err.details).toMatch(/interval_ms/);
  });

  it('health Check answers known services and NOT_FOUND for unknown ones', async () => {
    const check = (service: string) =>
      new Promise<{ status?: string; code?: number }>((resolve) =>
        healthClient.Check({ service }, (err, res) =>
          resolve(err ? { code: err.code } : { status: res?.status }),
        ),
      );
    expect(await check('')).toEqual({ status: 'SERVING' });
    expect(await check('flowline.nf.v1.NetworkFunction')).toEqual({ status: 'SERVING' });
    expect(await check('nope')).toEqual({ code: grpc.status.NOT_FOUND });
  });

  it('health Watch sends the current status and then each change', async () => {
    const statuses: string[] = [];
    const stream = healthClient.Watch({ service: '' });
    stream.on('error', () => undefined); // the CANCELLED status after cancel() below
    const done = new Promise<void>((resolve) => {
      stream.on('data', (r: { status: string }) => {
        statuses.push(r.status);
        if (statuses.length === 1) health.setStatus('', 'NOT_SERVING');
        if (statuses.length === 2) resolve();
      });
    });
    await done;
    stream.cancel();
    expect(statuses).toEqual(['SERVING', 'NOT_SERVING']);
  });
});

const quiet = { warn: () => undefined };

describe('HealthService bounds what any caller can make it hold', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flowline-health-'));
  const address = `unix://${join(dir, 'health.sock')}`;
  const server = new grpc.Server();
  const health = new HealthService();
  let client: InstanceType<ReturnType<typeof loadHealthV1>['Health']>;
  // The same service on a second listener, as nf-runtime serves it: on its mutual-TLS API port
  // (the first) and on the plaintext probe port (listenAlone, which warns).
  let other: { server: grpc.Server; address: string };
  let otherClient: InstanceType<ReturnType<typeof loadHealthV1>['Health']>;

  beforeAll(async () => {
    const pki = join(dir, 'pki');
    const nf = nfId('default', 'fw');
    const serverTls = issueCertificate(pki, 'fw', nf);
    health.addTo(server);
    await certificatesLoaded(serverTls);
    await new Promise<void>((resolve, reject) =>
      server.bindAsync(address, serverCredentials(serverTls, quiet, 'api'), (err) =>
        err ? reject(err) : resolve(),
      ),
    );
    const controllerTls = issueCertificate(pki, 'controller', controllerId());
    client = new (loadHealthV1().Health)(address, channelCredentials(controllerTls, nf));
    other = await health.listenAlone('127.0.0.1:0', quiet);
    otherClient = new (loadHealthV1().Health)(
      other.address,
      channelCredentials({ insecure: true }, nf, quiet), // the probe port is plaintext
    );
  });

  afterAll(async () => {
    client.close();
    otherClient.close();
    other.server.forceShutdown();
    await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  });

  /** Opens a Watch and resolves with its first message, or its error. */
  function watch(
    service: string,
    on = client,
  ): {
    stream: grpc.ClientReadableStream<{ status: string }>;
    first: Promise<{ status?: string; code?: number; details?: string }>;
  } {
    const stream = on.Watch({ service });
    const first = new Promise<{ status?: string; code?: number; details?: string }>((resolve) => {
      stream.once('data', (r: { status: string }) => resolve({ status: r.status }));
      stream.on('error', (e: grpc.ServiceError) => resolve({ code: e.code, details: e.details }));
    });
    return { stream, first };
  }

  async function until(what: string, ok: () => boolean): Promise<void> {
    for (let i = 0; i < 200 && !ok(); i++) await new Promise((r) => setTimeout(r, 10));
    if (!ok()) throw new Error(`timed out waiting for ${what}`);
  }

  it('a name watched and then let go is forgotten (kept, any peer could fill memory with names)', async () => {
    const names = ['a', 'b', 'c'].map((c) => `unknown.${c.repeat(200)}`);
    const watches = names.map((n) => watch(n));
    for (const w of watches) expect(await w.first).toEqual({ status: 'SERVICE_UNKNOWN' });
    expect(health.watchLoad()).toEqual({ names: 3, streams: 3 });
    for (const w of watches) w.stream.cancel();
    await until('the cancelled watches to be forgotten', () => health.watchLoad().streams === 0);
    expect(health.watchLoad()).toEqual({ names: 0, streams: 0 });
  });

  it('a name too long is refused naming the field, by Check and by Watch', async () => {
    const long = 'x'.repeat(HEALTH_MAX_SERVICE_NAME + 1);
    const checked = await new Promise<grpc.ServiceError | null>((resolve) =>
      client.Check({ service: long }, (err) => resolve(err)),
    );
    expect(checked?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(checked?.details).toMatch(/^service: /);
    const w = watch(long);
    expect(await w.first).toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      details: expect.stringMatching(/^service: /),
    });
    expect(health.watchLoad()).toEqual({ names: 0, streams: 0 });
    // the longest name allowed is still answered
    const ok = watch('y'.repeat(HEALTH_MAX_SERVICE_NAME));
    expect(await ok.first).toEqual({ status: 'SERVICE_UNKNOWN' });
    ok.stream.cancel();
    await until('that watch to be forgotten', () => health.watchLoad().streams === 0);
  });

  it(`at most ${HEALTH_MAX_WATCHES} Watch streams are open on a listener; one more is RESOURCE_EXHAUSTED, another listener's still answer, a freed place is taken again`, async () => {
    const open = Array.from({ length: HEALTH_MAX_WATCHES }, (_, i) => watch(`svc-${i % 7}`));
    await Promise.all(open.map((w) => w.first));
    expect(health.watchLoad()).toEqual({ names: 7, streams: HEALTH_MAX_WATCHES });
    const refused = watch('');
    expect(await refused.first).toMatchObject({ code: grpc.status.RESOURCE_EXHAUSTED });
    // the other listener's callers keep their places
    const elsewhere = watch('', otherClient);
    expect(await elsewhere.first).toEqual({ status: 'SERVING' });
    elsewhere.stream.cancel();
    await until(
      'that watch to be forgotten',
      () => health.watchLoad().streams === HEALTH_MAX_WATCHES,
    );
    open[0]!.stream.cancel();
    await until('a place to free', () => health.watchLoad().streams === HEALTH_MAX_WATCHES - 1);
    const again = watch('');
    expect(await again.first).toEqual({ status: 'SERVING' });
    for (const w of [...open.slice(1), again]) w.stream.cancel();
    await until('every watch to be forgotten', () => health.watchLoad().streams === 0);
    expect(health.watchLoad()).toEqual({ names: 0, streams: 0 });
  });
});

describe('HealthService.listenAlone', () => {
  it('serves health in plaintext on its own listener and always says so', async () => {
    const warned: { msg: string; fields?: Record<string, unknown> }[] = [];
    const { server, address } = await new HealthService().listenAlone('127.0.0.1:0', {
      warn: (msg, fields) => warned.push({ msg, ...(fields ? { fields } : {}) }),
    });
    try {
      expect(address).toMatch(/^127\.0\.0\.1:[1-9]\d*$/);
      expect(warned).toEqual([{ msg: expect.stringMatching(/without TLS/), fields: { address } }]);
      const health = new (loadHealthV1().Health)(address, grpc.credentials.createInsecure());
      const status = await new Promise<string>((resolve, reject) =>
        health.Check({ service: '' }, (e, r) => (e ? reject(e) : resolve(r!.status))),
      );
      health.close();
      expect(status).toBe('SERVING');
    } finally {
      server.forceShutdown();
    }
  });
});
