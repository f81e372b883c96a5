import * as grpc from '@grpc/grpc-js';
import { loadHealthV1, loadNetworkFunctionV1, type nfV1 } from '@flowline/proto';
import { type Telemetry, setupTelemetry } from '@flowline/telemetry';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PeerCertificate } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  channelCredentials,
  controllerId,
  decide,
  issueCertificate,
  nfId,
  type TlsFiles,
} from '@flowline/grpc-auth';
import { CountingDataplane } from '../test/fixtures/counting-dataplane';
import {
  type GrpcServiceRegistration,
  NfServer,
  nfAccessPolicy,
  registerDataplaneMetrics,
} from './index';

// A stand-in for an NF's own API: one configuration method, one read-only method.
const json = {
  serialize: (v: unknown) => Buffer.from(JSON.stringify(v)),
  deserialize: (b: Buffer) => JSON.parse(b.toString()) as unknown,
};
const unary = (name: string): grpc.MethodDefinition<unknown, unknown> => ({
  path: `/test.v1.Widget/${name}`,
  requestStream: false,
  responseStream: false,
  requestSerialize: json.serialize,
  requestDeserialize: json.deserialize,
  responseSerialize: json.serialize,
  responseDeserialize: json.deserialize,
});
const widgetDefinition = { SetWidget: unary('SetWidget'), ListWidgets: unary('ListWidgets') };
const WidgetClient = grpc.makeGenericClientConstructor(widgetDefinition, 'Widget');
let widgetSets = 0;
const widget: GrpcServiceRegistration = {
  name: 'test.v1.Widget',
  definition: widgetDefinition,
  implementation: {
    SetWidget: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => {
      widgetSets += 1;
      cb(null, {});
    },
    ListWidgets: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, { widgets: [] }),
  },
  readOnlyMethods: ['ListWidgets'],
};

describe('NfServer', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flowline-nfsrv-'));
  const dataplane = new CountingDataplane();
  let telemetry: Telemetry;
  let server: NfServer;
  let client: nfV1.NetworkFunctionClient;
  let address: string;
  let healthAddress: string;
  let certs: Record<'nf' | 'controller' | 'otherNf', TlsFiles>;
  const expectNf = nfId('default', 'fw-0');
  const as = (who: keyof typeof certs) => channelCredentials(certs[who], expectNf);

  beforeAll(async () => {
    certs = {
      nf: issueCertificate(join(dir, 'pki'), 'fw-0', expectNf),
      controller: issueCertificate(join(dir, 'pki'), 'controller', controllerId()),
      otherNf: issueCertificate(join(dir, 'pki'), 'spy', nfId('tenant-b', 'spy')),
    };
    telemetry = await setupTelemetry({
      component: 'nf-server-test',
      metricsPort: 0,
      metricsHost: '127.0.0.1',
    });
    registerDataplaneMetrics(telemetry, 'fw-0', dataplane);
    server = new NfServer({
      identity: { name: 'fw-0', kind: 'firewall', version: '1.2.3' },
      dataplane,
      telemetry,
      services: [widget],
      security: certs.nf,
      trustDomain: 'flowline',
    });
    address = await server.listen('127.0.0.1:0');
    healthAddress = await server.listenHealth('127.0.0.1:0');
    const nf = loadNetworkFunctionV1();
    client = new nf.NetworkFunction(address, as('controller'));
  });
  afterAll(async () => {
    client.close();
    await server.stop(500);
    await telemetry.shutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  it('is NOT_SERVING until the runtime says so, then SERVING (plaintext health listener)', async () => {
    const health = new (loadHealthV1().Health)(healthAddress, grpc.credentials.createInsecure());
    const check = () =>
      new Promise<string>((resolve, reject) =>
        health.Check({ service: 'flowline.nf.v1.NetworkFunction' }, (e, r) =>
          e ? reject(e) : resolve(r!.status),
        ),
      );
    expect(await check()).toBe('NOT_SERVING');
    server.setServing(true);
    expect(await check()).toBe('SERVING');
    health.close();
  });

  it('GetInfo reports identity, ports and worker lcores', async () => {
    const info = await new Promise<nfV1.NetworkFunctionInfo__Output>((resolve, reject) =>
      client.GetInfo({}, (e, r) => (e ? reject(e) : resolve(r!))),
    );
    expect(info).toMatchObject({
      name: 'fw-0',
      kind: 'firewall',
      version: '1.2.3',
      workerLcores: [1],
    });
    expect(info.ports[0]).toMatchObject({
      name: 'net1',
      driver: 'net_ring',
      linkUp: true,
      mac: '02:00:00:00:00:01',
    });
  });

  it('WatchStats refuses an interval under 100 ms, naming interval_ms', async () => {
    const err = await new Promise<grpc.ServiceError>((resolve) => {
      const s = client.WatchStats({ intervalMs: 10 });
      s.on('data', () => undefined);
      s.on('error', resolve);
    });
    expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err.details).toMatch(/interval_ms must be at least 100 \(got 10\)/);
  });

  it('WatchStats streams live counters until cancelled', async () => {
    dataplane.rx = 100n;
    const seen: string[] = [];
    await new Promise<void>((resolve) => {
      const s = client.WatchStats({ intervalMs: 100 });
      s.on('error', () => undefined);
      s.on('data', (snap: nfV1.StatsSnapshot__Output) => {
        seen.push(snap.ports[0]!.rxPackets);
        dataplane.rx += 50n;
        if (seen.length === 3) {
          s.cancel();
          resolve();
        }
      });
    });
    expect(seen).toEqual(['100', '150', '200']);
  });

  it('exposes contract 6 metrics (docs/architecture.md#metrics) from the dataplane on /metrics', async () => {
    dataplane.rx = 1000n;
    const body = await (await fetch(telemetry.metricsUrl!)).text();
    expect(body).toMatch(/flowline_port_rx_packets_total\{nf="fw-0",port="net1"\} 1000/);
    expect(body).toMatch(/flowline_port_tx_packets_total\{nf="fw-0",port="net1"\} 999/);
    expect(body).toMatch(
      /flowline_port_dropped_packets_total\{nf="fw-0",port="net1",reason="rx_missed"\} 3/,
    );
    expect(body).toMatch(
      /flowline_stage_dropped_packets_total\{nf="fw-0",stage="acl",reason="acl_deny"\} 1/,
    );
  });

  const widgetCall = (who: 'controller' | 'otherNf', method: 'SetWidget' | 'ListWidgets') =>
    new Promise<grpc.ServiceError | null>((resolve) => {
      const c = new WidgetClient(address, as(who)) as unknown as Record<
        string,
        (req: unknown, cb: (err: grpc.ServiceError | null) => void) => void
      >;
      c[method]!({}, (err) => {
        (c as unknown as grpc.Client).close();
        resolve(err);
      });
    });

  it("lets only the controller (or operator) configure, and any NF read, the NF's own API", async () => {
    const before = widgetSets;
    const denied = await widgetCall('otherNf', 'SetWidget');
    expect(denied?.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(denied?.details).toMatch(
      /^spiffe:\/\/flowline\/ns\/tenant-b\/nf\/spy may not call \/test\.v1\.Widget\/SetWidget/,
    );
    expect(widgetSets).toBe(before);
    expect(await widgetCall('otherNf', 'ListWidgets')).toBeNull();
    expect(await widgetCall('controller', 'SetWidget')).toBeNull();
    expect(widgetSets).toBe(before + 1);
  });

  it('serves flowline.nf.v1 to any authenticated peer and nothing to a peer without a certificate', async () => {
    const nf = loadNetworkFunctionV1();
    const info = (creds: grpc.ChannelCredentials) =>
      new Promise<grpc.ServiceError | null>((resolve) => {
        const c = new nf.NetworkFunction(address, creds);
        c.GetInfo({}, (e) => {
          c.close();
          resolve(e);
        });
      });
    expect(await info(as('otherNf'))).toBeNull();
    const noCert = grpc.credentials.createSsl(readFileSync(certs.nf.caFile), null, null, {
      checkServerIdentity: () => undefined,
    });
    expect((await info(noCert))?.code).toBe(grpc.status.UNAVAILABLE);
  });

  it('serves nothing but health on the plaintext health listener', async () => {
    const nf = loadNetworkFunctionV1();
    const c = new nf.NetworkFunction(healthAddress, grpc.credentials.createInsecure());
    const err = await new Promise<grpc.ServiceError | null>((resolve) =>
      c.GetInfo({}, (e) => resolve(e)),
    );
    c.close();
    expect(err?.code).toBe(grpc.status.UNIMPLEMENTED);
  });

  it("opens reading to its own trust domain's identities only", () => {
    const policy = nfAccessPolicy('flowline', [{ ...widget, readOnlyMethods: ['ListWidgets'] }]);
    const as = (id: string, path: string) =>
      decide(policy, path, { sslPeerCertificate: peerWith(id) }, false).ok;
    for (const path of [
      '/test.v1.Widget/ListWidgets',
      '/flowline.nf.v1.NetworkFunction/GetInfo',
      '/grpc.health.v1.Health/Watch',
    ]) {
      expect(as('spiffe://flowline/ns/a/nf/b', path)).toBe(true);
      expect(as('spiffe://other.example/ns/a/nf/b', path)).toBe(false);
    }
  });

  it('refuses a read-only method the service does not have', () => {
    expect(() =>
      nfAccessPolicy('flowline', [{ ...widget, readOnlyMethods: ['ListWidget'] }]),
    ).toThrow('readOnlyMethods: test.v1.Widget has no method ListWidget');
  });
});

/** A peer certificate proving `id` (its URI SAN), as Node reports one. */
function peerWith(id: string): PeerCertificate {
  return { subject: { CN: 'peer' }, subjectaltname: `URI:${id}` } as unknown as PeerCertificate;
}
