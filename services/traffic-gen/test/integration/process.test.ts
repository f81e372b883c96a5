/**
 * The real traffic-gen process (node dist/main.js, built by `nx build`) on a net_ring vdev port
 * given by --port, driven over its unix-socket gRPC API: Start, GetResults until a count-limited
 * run is complete (exact counts), a bad field refused with INVALID_ARGUMENT naming it while the
 * run stays, Stop, contract 6 metrics (docs/architecture.md#metrics) on its Prometheus port, and
 * SIGTERM exiting 0 with no hugepage file left.
 */
import * as grpc from '@grpc/grpc-js';
import type { trafficGenV1 } from '@flowline/proto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  MAIN,
  type NfProcess,
  call,
  leftovers,
  resultsWhen,
  startTrafficGen,
} from '../support/nf-process';

const root = process.getuid?.() === 0 && existsSync('/dev/hugepages');
const prefix = `fltest-tgp-${process.pid}`;

describe.skipIf(!root || !existsSync(MAIN))(
  'traffic-gen process over gRPC (root, hugepages)',
  () => {
    const dir = mkdtempSync(join(tmpdir(), 'fltest-tgp-'));
    let nf: NfProcess;
    let client: trafficGenV1.TrafficGeneratorClient;

    beforeAll(async () => {
      nf = await startTrafficGen({
        name: 'tg-proc',
        dir,
        filePrefix: prefix,
        ports: ['name=net1,devargs=net_ring_tgp'],
      });
      client = nf.client;
    });

    afterAll(async () => {
      await nf?.kill();
      rmSync(dir, { recursive: true, force: true });
    });

    const flows: trafficGenV1.Flow[] = [
      {
        name: 'v4-udp',
        txPort: 'net1',
        srcIp: '10.0.0.1',
        dstIp: '10.0.0.2',
        srcPort: 1000,
        dstPort: 2000,
        frameSize: 128,
        ratePps: 20000,
        count: '4000',
      },
      {
        name: 'v6-tcp-imix',
        protocol: 'TCP',
        srcIp: 'fd00::1',
        dstIp: 'fd00::2',
        srcPort: 3000,
        dstPort: 443,
        imix: true,
        ratePps: 10000,
        count: '2400',
      },
    ];

    it('Start runs count-limited flows; GetResults reports exact counts and latency', async () => {
      const started = await call(client.Start.bind(client), { flows, rxPorts: ['net1'] });
      expect(started).toEqual({ runId: 1, flowCount: 2 });
      const r = await resultsWhen(client, (x) => x.txDone && x.totals!.rxPackets === '6400');
      expect(r).toMatchObject({ runId: 1, state: 'RUNNING', txDone: true });
      expect(r.flows.map((f) => [f.name, f.txPackets, f.rxPackets, f.lost, f.duplicates])).toEqual([
        ['v4-udp', '4000', '4000', '0', '0'],
        ['v6-tcp-imix', '2400', '2400', '0', '0'],
      ]);
      // 128-byte frames; IMIX for IPv6/TCP: 94 (64 raised to the minimum), 594, 1518 in 7:4:1
      expect(r.flows[0]!.rxBytes).toBe(String(4000 * 128));
      expect(r.flows[1]!.rxBytes).toBe(String(200 * (7 * 94 + 4 * 594 + 1518)));
      for (const f of r.flows) {
        const l = f.latency!;
        expect(l.samples).toBe(f.rxPackets);
        expect(l.p50Ns).toBeGreaterThan(0);
        expect(l.p50Ns).toBeLessThanOrEqual(l.p99Ns);
        expect(l.p99Ns).toBeLessThanOrEqual(l.maxNs);
      }
      expect(r.totals).toMatchObject({ txPackets: '6400', lost: '0', lossRatio: 0 });
    });

    it('a bad field is INVALID_ARGUMENT naming it, and the running run stays', async () => {
      const err = await call(client.Start.bind(client), {
        flows: [flows[0]!, { ...flows[1]!, ratePps: -1 }],
      }).catch((e: grpc.ServiceError) => e);
      expect(err).toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
      expect((err as grpc.ServiceError).details).toMatch(/^flows\[1\]\.rate_pps: /);
      const err2 = await call(client.Start.bind(client), {
        flows: [{ ...flows[0]!, txPort: 'net7' }],
      }).catch((e: grpc.ServiceError) => e);
      expect((err2 as grpc.ServiceError).details).toMatch(/^flows\[0\]\.tx_port: no port "net7"/);
      const r = await call(client.GetResults.bind(client), {});
      expect(r).toMatchObject({ runId: 1, state: 'RUNNING' });
      expect(r.totals!.rxPackets).toBe('6400');
    });

    it('Stop stops the run and keeps its results', async () => {
      const r = await call(client.Stop.bind(client), {});
      expect(r).toMatchObject({ runId: 1, state: 'STOPPED', txDone: true });
      expect(r.totals!.rxPackets).toBe('6400');
      const again = await call(client.GetResults.bind(client), {});
      expect(again.state).toBe('STOPPED');
      expect(again.elapsedMs).toBe(r.elapsedMs);
    });

    it('a new Start replaces the run; counters start again and the stage totals keep growing', async () => {
      const one = { ...flows[0]!, count: '1000', ratePps: 50000 };
      expect(await call(client.Start.bind(client), { flows: [one] })).toEqual({
        runId: 2,
        flowCount: 1,
      });
      // replaced while it runs: the new run starts from zero
      expect(
        await call(client.Start.bind(client), { flows: [one, { ...one, name: 'second' }] }),
      ).toEqual({ runId: 3, flowCount: 2 });
      const r = await resultsWhen(client, (x) => x.txDone && x.totals!.rxPackets === '2000');
      expect(r.flows.map((f) => [f.name, f.txPackets, f.rxPackets, f.lost])).toEqual([
        ['v4-udp', '1000', '1000', '0'],
        ['second', '1000', '1000', '0'],
      ]);
      // WatchResults streams the same run until cancelled
      const watched = await new Promise<trafficGenV1.Results__Output[]>((resolve, reject) => {
        const got: trafficGenV1.Results__Output[] = [];
        const stream = client.WatchResults({ intervalMs: 100 });
        stream.on('data', (m: trafficGenV1.Results__Output) => {
          if (got.push(m) === 2) {
            stream.cancel();
            resolve(got);
          }
        });
        stream.on('error', (e: grpc.ServiceError) => {
          if (e.code !== grpc.status.CANCELLED) reject(e);
        });
      });
      expect(watched.map((m) => [m.runId, m.state, m.totals!.rxPackets])).toEqual([
        [3, 'RUNNING', '2000'],
        [3, 'RUNNING', '2000'],
      ]);
      expect((await call(client.Stop.bind(client), {})).runId).toBe(3);
    });

    it('serves contract 6 metrics (docs/architecture.md#metrics): port counters, stage counters and per-flow results', async () => {
      const text = await (await fetch(nf.metricsUrl)).text();
      const value = (re: RegExp) => Number(re.exec(text)?.[1]);
      const port = (dir: 'tx' | 'rx') =>
        value(
          new RegExp(
            `^flowline_port_${dir}_packets_total\\{[^}]*nf="tg-proc"[^}]*port="net1"[^}]*\\} (\\d+)`,
            'm',
          ),
        );
      // three runs: 6400, the replaced one (part of its 1000), 2000; the ring loops all back
      expect(port('tx')).toBeGreaterThanOrEqual(8400);
      expect(port('tx')).toBeLessThanOrEqual(9400);
      expect(port('rx')).toBe(port('tx'));
      // the generator stage counts, over runs, what the port sent
      expect(value(/^flowline_stage_packets_out_total\{[^}]*stage="generator"[^}]*\} (\d+)/m)).toBe(
        port('tx'),
      );
      expect(value(/^flowline_trafficgen_flow_rx_packets\{[^}]*flow="second"[^}]*\} (\d+)/m)).toBe(
        1000,
      );
    });

    it('SIGTERM stops gracefully: exit 0, no hugepage file or runtime dir left', async () => {
      nf.child.kill('SIGTERM');
      expect(await nf.exited).toBe(0);
      expect(nf.logs.some((l) => l.msg === 'stopped')).toBe(true);
      expect(leftovers(prefix)).toEqual([]);
    });
  },
);
