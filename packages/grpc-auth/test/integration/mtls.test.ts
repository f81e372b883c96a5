// Real gRPC over TLS on loopback: certificates from a real CA (openssl), a server with a policy,
// and clients with no certificate, a certificate from another CA, another identity's, and the
// right one; then the server's certificate replaced on disk while it runs.
import { pbkdf2 } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PeerCertificate } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  anyAuthenticated,
  authorizationInterceptor,
  callerIdentity,
  certificatesLoaded,
  channelCredentials,
  controllerId,
  issueCertificate,
  nfId,
  onlyIdentities,
  operatorId,
  serverCredentials,
  type TlsFiles,
} from '../../src/index';

const json = {
  serialize: (v: unknown) => Buffer.from(JSON.stringify(v)),
  deserialize: (b: Buffer) => JSON.parse(b.toString()) as unknown,
};
const method = (name: string): grpc.MethodDefinition<unknown, unknown> => ({
  path: `/test.Svc/${name}`,
  requestStream: false,
  responseStream: false,
  requestSerialize: json.serialize,
  requestDeserialize: json.deserialize,
  responseSerialize: json.serialize,
  responseDeserialize: json.deserialize,
});
const service: grpc.ServiceDefinition = {
  Config: method('Config'),
  Read: method('Read'),
  Secret: method('Secret'),
};
const Client = grpc.makeGenericClientConstructor(service, 'Svc');

const warnings: { msg: string; fields?: Record<string, unknown> }[] = [];
const log = {
  warn: (msg: string, fields?: Record<string, unknown>) => warnings.push({ msg, fields }),
};

let dir: string;
let rogueDir: string;
let files: Record<'server' | 'controller' | 'operator' | 'otherNf' | 'rogue', TlsFiles>;
let server: grpc.Server;
let address: string;
let configCalls = 0;

async function startServer(serverFiles: TlsFiles, refreshIntervalMs = 100): Promise<void> {
  server = new grpc.Server({
    interceptors: [
      authorizationInterceptor(
        {
          '/test.Svc/Config': onlyIdentities(controllerId(), operatorId()),
          '/test.Svc/Read': anyAuthenticated,
        },
        { insecure: false },
      ),
    ],
  });
  const handler =
    (name: string): grpc.handleUnaryCall<unknown, unknown> =>
    (call, cb) => {
      if (name === 'Config') configCalls += 1;
      cb(null, { method: name, caller: callerIdentity(call) });
    };
  server.addService(service, {
    Config: handler('Config'),
    Read: handler('Read'),
    Secret: handler('Secret'),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(
      '127.0.0.1:0',
      serverCredentials({ ...serverFiles, refreshIntervalMs }, log, 'test'),
      (err, p) => (err ? reject(err) : resolve(p)),
    ),
  );
  address = `127.0.0.1:${port}`;
}

type Reply = { method: string; caller?: string };
type UnaryFn = (
  req: unknown,
  md: grpc.Metadata,
  opts: grpc.CallOptions,
  cb: (err: grpc.ServiceError | null, value: Reply) => void,
) => void;

function call(
  creds: grpc.ChannelCredentials,
  name: string,
): Promise<{ ok: true; value: Reply } | { ok: false; err: grpc.ServiceError }> {
  const client = new Client(address, creds);
  return new Promise((resolve) => {
    const fn = (client as unknown as Record<string, UnaryFn>)[name]!;
    fn.call(client, {}, new grpc.Metadata(), { deadline: Date.now() + 5000 }, (err, value) => {
      client.close();
      resolve(err ? { ok: false, err } : { ok: true, value });
    });
  });
}

const asClient = (f: TlsFiles, expected = nfId('tenant-a', 'fw')) =>
  channelCredentials(f, expected);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'grpc-auth-'));
  rogueDir = mkdtempSync(join(tmpdir(), 'grpc-auth-rogue-'));
  files = {
    server: issueCertificate(dir, 'fw', nfId('tenant-a', 'fw')),
    controller: issueCertificate(dir, 'controller', controllerId()),
    operator: issueCertificate(dir, 'operator', operatorId()),
    otherNf: issueCertificate(dir, 'other', nfId('tenant-b', 'spy')),
    // Claims the controller's identity, signed by a CA the server does not trust.
    rogue: issueCertificate(rogueDir, 'controller', controllerId()),
  };
  await startServer(files.server);
}, 60_000);

afterAll(async () => {
  server?.forceShutdown();
  rmSync(dir, { recursive: true, force: true });
  rmSync(rogueDir, { recursive: true, force: true });
});

describe('mutual TLS with identities', () => {
  it('lets the controller and the operator configure, and tells the handler who called', async () => {
    for (const who of ['controller', 'operator'] as const) {
      const r = await call(asClient(files[who]), 'Config');
      expect(r).toEqual({
        ok: true,
        value: { method: 'Config', caller: who === 'controller' ? controllerId() : operatorId() },
      });
    }
  });

  it('refuses another identity with PERMISSION_DENIED naming it, and runs nothing', async () => {
    const before = configCalls;
    const r = await call(asClient(files.otherNf), 'Config');
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.err.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(r.err.details).toContain(
      'spiffe://flowline/ns/tenant-b/nf/spy may not call /test.Svc/Config',
    );
    expect(configCalls).toBe(before);
    // The same identity may read.
    expect((await call(asClient(files.otherNf), 'Read')).ok).toBe(true);
  });

  it('closes a method no policy opens, even to the controller', async () => {
    const r = await call(asClient(files.controller), 'Secret');
    expect(r.ok ? undefined : r.err.code).toBe(grpc.status.PERMISSION_DENIED);
  });

  it('fails the handshake without a client certificate or with one from another CA', async () => {
    const noCert = grpc.credentials.createSsl(readFileSync(files.server.caFile), null, null, {
      checkServerIdentity: () => undefined,
    });
    const before = configCalls;
    for (const creds of [
      noCert,
      channelCredentials({ ...files.rogue, caFile: files.server.caFile }, () => true),
    ]) {
      const r = await call(creds, 'Config');
      expect(r.ok ? undefined : r.err.code).toBe(grpc.status.UNAVAILABLE);
    }
    expect(configCalls).toBe(before);
  });

  it('refuses a server that proves another identity than the one expected', async () => {
    const r = await call(asClient(files.controller, nfId('tenant-a', 'router')), 'Read');
    expect(r.ok ? undefined : r.err.code).toBe(grpc.status.UNAVAILABLE);
    expect(r.ok ? '' : r.err.details).toMatch(/spiffe:\/\/flowline\/ns\/tenant-a\/nf\/fw/);
  });

  it('serves a replaced certificate without a restart', async () => {
    // The controller's trust, recording the certificate the server shows.
    const serialSeen = async (): Promise<string> => {
      let serial = '';
      const probe = grpc.credentials.createSsl(
        readFileSync(files.controller.caFile),
        readFileSync(files.controller.keyFile),
        readFileSync(files.controller.certFile),
        {
          checkServerIdentity: (_h: string, c: PeerCertificate) => {
            serial = c.serialNumber;
            return undefined;
          },
        },
      );
      const r = await call(probe, 'Read');
      if (!r.ok) throw r.err;
      return serial;
    };
    const first = await serialSeen();
    issueCertificate(dir, 'fw', nfId('tenant-a', 'fw'));
    const deadline = Date.now() + 10_000;
    let now = first;
    while (now === first && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      now = await serialSeen();
    }
    expect(now).not.toBe(first);
  });

  it('serves its first client while the thread pool is busy, once certificatesLoaded resolved before binding', async () => {
    // Files nobody has read yet (a new provider); the client's are in memory already.
    const fresh = issueCertificate(dir, 'fw-fresh', nfId('tenant-a', 'fw'));
    await certificatesLoaded(files.controller);
    // grpc-js reads certificate files on libuv's thread pool: keep every thread busy, as a node
    // under load does, so the read lands only after the listener would be up.
    const threads = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
    const busy = Array.from(
      { length: threads },
      () => new Promise((done) => pbkdf2('p', 's', 300_000, 32, 'sha256', done)),
    );
    await certificatesLoaded(fresh);
    const first = new grpc.Server();
    first.addService(service, {
      Read: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, { method: 'Read' }),
    });
    try {
      const port = await new Promise<number>((resolve, reject) =>
        first.bindAsync('127.0.0.1:0', serverCredentials(fresh, log, 'fresh'), (err, p) =>
          err ? reject(err) : resolve(p),
        ),
      );
      const client = new Client(`127.0.0.1:${port}`, asClient(files.controller));
      const reply = await new Promise<unknown>((resolve) =>
        (client as unknown as Record<string, UnaryFn>).Read!.call(
          client,
          {},
          new grpc.Metadata(),
          { deadline: Date.now() + 5000 },
          (err, value) => {
            client.close();
            resolve(err ? err.details : value);
          },
        ),
      );
      expect(reply).toEqual({ method: 'Read' });
    } finally {
      first.forceShutdown();
      await Promise.all(busy);
    }
  });

  it('certificatesLoaded names a file it cannot read', async () => {
    await expect(
      certificatesLoaded({ ...files.server, caFile: join(dir, 'missing-ca.pem') }),
    ).rejects.toThrow(/^caFile .*missing-ca\.pem cannot be read/);
  });

  it('warns when a listener is configured without TLS', () => {
    warnings.length = 0;
    serverCredentials({ insecure: true }, log, 'nf api 0.0.0.0:50051');
    expect(warnings).toEqual([
      {
        msg: 'gRPC listener without TLS: any peer that reaches it may call it',
        fields: { listener: 'nf api 0.0.0.0:50051', security: 'insecure (explicitly configured)' },
      },
    ]);
  });
});
