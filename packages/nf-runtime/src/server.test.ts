import * as grpc from '@grpc/grpc-js';
import { loadHealthV1, loadNetworkFunctionV1, type nfV1 } from '@flowline/proto';
import { type Telemetry, setupTelemetry } from '@flowline/telemetry';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CountingDataplane } from '../test/fixtures/counting-dataplane';
import { NfServer, registerDataplaneMetrics } from './index';

describe('NfServer', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flowline-nfsrv-'));
  const dataplane = new CountingDataplane();
  let telemetry: Telemetry;
  let server: NfServer;
  let client: nfV1.NetworkFunctionClient;
  let address: string;

  beforeAll(async () => {
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
    });
    address = await server.listen(`unix://${join(dir, 'nf.sock')}`);
    const nf = loadNetworkFunctionV1();
    client = new nf.NetworkFunction(address, grpc.credentials.createInsecure());
  });
  afterAll(async () => {
    client.close();
    await server.stop(500);
    await telemetry.shutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  it('is NOT_SERVING until the runtime says so, then SERVING', async () => {
    const health = new (loadHealthV1().Health)(address, grpc.credentials.createInsecure());
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

  it('exposes contract 6 metrics from the dataplane on /metrics', async () => {
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
});
