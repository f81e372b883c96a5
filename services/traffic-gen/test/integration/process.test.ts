/**
 * The real traffic-gen process (node dist/main.js, built by `nx build`) on a net_ring vdev port
 * given by --port, driven over its unix-socket gRPC API: Start, GetResults until a count-limited
 * run is complete (exact counts), a bad field refused with INVALID_ARGUMENT naming it while the
 * run stays, Stop, contract-6 metrics on its Prometheus port, and SIGTERM exiting 0 with no
 * hugepage file left.
 */
import * as grpc from '@grpc/grpc-js';
import { trafficGenV1 } from '@flowline/proto';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = process.getuid?.() === 0 && existsSync('/dev/hugepages');
const main = join(__dirname, '..', '..', 'dist', 'main.js');
const prefix = `fltest-tgp-${process.pid}`;

type Unary<Req, Res> = (req: Req, cb: (e: grpc.ServiceError | null, r?: Res) => void) => unknown;
function call<Req, Res>(fn: Unary<Req, Res>, req: Req): Promise<Res> {
  return new Promise((resolve, reject) => fn(req, (e, r) => (e ? reject(e) : resolve(r!))));
}

function leftovers(): string[] {
  const out: string[] = [];
  if (existsSync('/dev/hugepages'))
    out.push(...readdirSync('/dev/hugepages').filter((f) => f.startsWith(prefix)));
  if (existsSync('/var/run/dpdk'))
    out.push(...readdirSync('/var/run/dpdk').filter((f) => f.startsWith(prefix)));
  return out;
}

describe.skipIf(!root || !existsSync(main))(
  'traffic-gen process over gRPC (root, hugepages)',
  () => {
    const dir = mkdtempSync(join(tmpdir(), 'fltest-tgp-'));
    const grpcAddress = `unix://${join(dir, 'grpc.sock')}`;
    let child: ChildProcess;
    let exited: Promise<number | null>;
    const logs: Record<string, unknown>[] = [];
    let client: trafficGenV1.TrafficGeneratorClient;
    let metricsUrl = '';

    beforeAll(async () => {
      child = spawn(
        process.execPath,
        [
          main,
          '--name',
          'tg-proc',
          '--grpc-address',
          grpcAddress,
          '--metrics-port',
          '0',
          '--lcores',
          '0,1',
          '--memory-mb',
          '128',
          '--file-prefix',
          prefix,
          '--port',
          'name=net1,devargs=net_ring_tgp',
        ],
        {
          stdio: ['ignore', 'ignore', 'pipe'],
          env: { ...process.env, FLOWLINE_LOG_LEVEL: 'info' },
        },
      );
      exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
      let buf = '';
      child.stderr!.on('data', (d: Buffer) => {
        buf += d.toString();
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          try {
            logs.push(JSON.parse(line) as Record<string, unknown>);
          } catch {
            logs.push({ msg: line }); // DPDK's own lines
          }
        }
      });
      const serving = await new Promise<Record<string, unknown>>((resolve, reject) => {
        const t = setInterval(() => {
          const s = logs.find((l) => l.msg === 'serving');
          if (s) {
            clearInterval(t);
            resolve(s);
          }
        }, 20);
        void exited.then((code) => {
          clearInterval(t);
          reject(new Error(`traffic-gen exited ${code}: ${JSON.stringify(logs.slice(-5))}`));
        });
      });
      metricsUrl = String(serving.metricsUrl);
      client = new (trafficGenV1.loadTrafficGenV1().TrafficGenerator)(
        grpcAddress,
        grpc.credentials.createInsecure(),
      );
    });

    afterAll(async () => {
      client?.close();
      if (child && child.exitCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
      for (const f of leftovers()) rmSync(join('/dev/hugepages', f), { force: true });
      rmSync(`/var/run/dpdk/${prefix}-${child?.pid}`, { recursive: true, force: true });
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
      let r: trafficGenV1.Results__Output | undefined;
      const end = Date.now() + 20_000;
      while (Date.now() < end) {
        r = await call(client.GetResults.bind(client), {});
        if (r.txDone && r.totals!.rxPackets === '6400') break;
        await new Promise((res) => setTimeout(res, 50));
      }
      expect(r).toMatchObject({ runId: 1, state: 'RUNNING', txDone: true });
      expect(r!.flows.map((f) => [f.name, f.txPackets, f.rxPackets, f.lost, f.duplicates])).toEqual(
        [
          ['v4-udp', '4000', '4000', '0', '0'],
          ['v6-tcp-imix', '2400', '2400', '0', '0'],
        ],
      );
      // 128-byte frames; IMIX for IPv6/TCP: 94 (64 raised to the minimum), 594, 1518 in 7:4:1
      expect(r!.flows[0]!.rxBytes).toBe(String(4000 * 128));
      expect(r!.flows[1]!.rxBytes).toBe(String(200 * (7 * 94 + 4 * 594 + 1518)));
      for (const f of r!.flows) {
        const l = f.latency!;
        expect(l.samples).toBe(f.rxPackets);
        expect(l.p50Ns).toBeGreaterThan(0);
        expect(l.p50Ns).toBeLessThanOrEqual(l.p99Ns);
        expect(l.p99Ns).toBeLessThanOrEqual(l.maxNs);
      }
      expect(r!.totals).toMatchObject({ txPackets: '6400', lost: '0', lossRatio: 0 });
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

    it('serves contract-6 metrics: port counters, stage counters and per-flow results', async () => {
      const text = await (await fetch(metricsUrl)).text();
      const value = (re: RegExp) => Number(re.exec(text)?.[1]);
      expect(
        value(/^flowline_port_tx_packets_total\{[^}]*nf="tg-proc"[^}]*port="net1"[^}]*\} (\d+)/m),
      ).toBe(6400);
      expect(
        value(/^flowline_port_rx_packets_total\{[^}]*nf="tg-proc"[^}]*port="net1"[^}]*\} (\d+)/m),
      ).toBe(6400);
      expect(value(/^flowline_stage_packets_out_total\{[^}]*stage="generator"[^}]*\} (\d+)/m)).toBe(
        6400,
      );
      expect(
        value(/^flowline_trafficgen_flow_rx_packets\{[^}]*flow="v6-tcp-imix"[^}]*\} (\d+)/m),
      ).toBe(2400);
    });

    it('SIGTERM stops gracefully: exit 0, no hugepage file or runtime dir left', async () => {
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(logs.some((l) => l.msg === 'stopped')).toBe(true);
      expect(leftovers()).toEqual([]);
    });
  },
);
