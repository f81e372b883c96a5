import * as grpc from '@grpc/grpc-js';
import { trafficGenV1 } from '@flowline/proto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunView } from './results';
import { type TrafficController, trafficGenService } from './service';
import type { StartPlan } from './validation';

/** Records the plans it is given, as the dataplane would run them; can refuse like DPDK. */
class RecordingController implements TrafficController {
  plans: StartPlan[] = [];
  refuse = false;
  state: RunView['state'] = 'IDLE';
  portNames() {
    return ['net1', 'net2'];
  }
  start(plan: StartPlan) {
    if (this.refuse) throw new Error('lcore 1 is busy');
    this.plans.push(plan);
    this.state = 'RUNNING';
    return { runId: this.plans.length, flowCount: plan.flows.length };
  }
  stop() {
    if (this.state === 'RUNNING') this.state = 'STOPPED';
  }
  run(): RunView {
    const n = this.plans.at(-1)?.flows.length ?? 0;
    return {
      runId: this.plans.length,
      state: this.state,
      elapsedMs: 500,
      names: this.plans.at(-1)?.flows.map((f) => f.name) ?? [],
      results: {
        running: this.state === 'RUNNING',
        txDone: false,
        flows: Array.from({ length: n }, (_, i) => ({
          flow: i,
          txPackets: 100,
          txBytes: 6400,
          txDone: false,
          rxPackets: 100,
          rxBytes: 6400,
          expected: 100,
          lost: 0,
          duplicates: 0,
          reordered: 0,
          late: 0,
          txSeconds: 0.5,
          rxSeconds: 0.5,
        })),
        rxUntagged: 0,
        rxForeign: 0,
        txBackpressure: 0,
        allocFailed: 0,
        sleeps: 0,
        tscHz: 1e9,
        elapsedSeconds: 0.5,
      },
    };
  }
}

type Unary<Req, Res> = (req: Req, cb: (e: grpc.ServiceError | null, r?: Res) => void) => unknown;
function call<Req, Res>(fn: Unary<Req, Res>, req: Req): Promise<Res> {
  return new Promise((resolve, reject) => fn(req, (e, r) => (e ? reject(e) : resolve(r!))));
}

describe('flowline.trafficgen.v1 over gRPC', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flowline-tg-'));
  const ctl = new RecordingController();
  const server = new grpc.Server();
  let client: trafficGenV1.TrafficGeneratorClient;

  beforeAll(async () => {
    const svc = trafficGenService(ctl);
    server.addService(svc.definition, svc.implementation);
    const address = `unix://${join(dir, 'tg.sock')}`;
    await new Promise<void>((res, rej) =>
      server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (e) =>
        e ? rej(e) : res(),
      ),
    );
    client = new (trafficGenV1.loadTrafficGenV1().TrafficGenerator)(
      address,
      grpc.credentials.createInsecure(),
    );
  });
  afterAll(async () => {
    client.close();
    await new Promise<void>((r) => server.tryShutdown(() => r()));
    rmSync(dir, { recursive: true, force: true });
  });

  const flow = (over: Partial<trafficGenV1.Flow> = {}): trafficGenV1.Flow => ({
    srcIp: '10.0.0.1',
    dstIp: '10.0.0.2',
    srcPort: 1,
    dstPort: 2,
    ...over,
  });

  it('Start validates and hands the plan to the dataplane; GetResults and Stop report it', async () => {
    const res = await call(client.Start.bind(client), {
      flows: [
        flow({ name: 'a', count: '1000', ratePps: 100 }),
        flow({ protocol: 'TCP', imix: true }),
      ],
      rxPorts: ['net2'],
    });
    expect(res).toEqual({ runId: 1, flowCount: 2 });
    expect(ctl.plans[0]!.flows.map((f) => [f.name, f.protocol, f.size, f.count])).toEqual([
      ['a', 'udp', 64, 1000],
      ['flow-1', 'tcp', 'imix', 0],
    ]);
    const r = await call(client.GetResults.bind(client), {});
    expect(r).toMatchObject({ runId: 1, state: 'RUNNING', elapsedMs: '500' });
    expect(r.flows.map((f) => [f.name, f.txPackets, f.txPps])).toEqual([
      ['a', '100', 200],
      ['flow-1', '100', 200],
    ]);
    expect(r.totals).toMatchObject({ txPackets: '200', lossRatio: 0 });
    const stopped = await call(client.Stop.bind(client), {});
    expect(stopped.state).toBe('STOPPED');
  });

  it('a bad field is INVALID_ARGUMENT naming it, and the dataplane is not touched', async () => {
    const before = ctl.plans.length;
    const err = await call(client.Start.bind(client), {
      flows: [flow(), flow(), flow({ ratePps: -3 })],
    }).catch((e: grpc.ServiceError) => e);
    expect(err).toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
    expect((err as grpc.ServiceError).details).toMatch(/^flows\[2\]\.rate_pps: /);
    const err2 = await call(client.Start.bind(client), {
      flows: [flow({ txPort: 'eth7' })],
    }).catch((e: grpc.ServiceError) => e);
    expect((err2 as grpc.ServiceError).details).toMatch(/^flows\[0\]\.tx_port: no port "eth7"/);
    expect(ctl.plans.length).toBe(before);
  });

  it('a start the dataplane refuses is INTERNAL and says the previous run is unchanged', async () => {
    ctl.refuse = true;
    const err = await call(client.Start.bind(client), { flows: [flow()] }).catch(
      (e: grpc.ServiceError) => e,
    );
    ctl.refuse = false;
    expect(err).toMatchObject({ code: grpc.status.INTERNAL });
    expect((err as grpc.ServiceError).details).toMatch(
      /previous run is unchanged: lcore 1 is busy/,
    );
  });

  it('WatchResults streams results and refuses an interval under 100 ms naming interval_ms', async () => {
    const got = await new Promise<trafficGenV1.Results__Output[]>((resolve, reject) => {
      const out: trafficGenV1.Results__Output[] = [];
      const stream = client.WatchResults({ intervalMs: 100 });
      stream.on('data', (m: trafficGenV1.Results__Output) => {
        out.push(m);
        if (out.length === 2) {
          stream.cancel();
          resolve(out);
        }
      });
      stream.on('error', (e: grpc.ServiceError) => {
        if (e.code !== grpc.status.CANCELLED) reject(e);
      });
    });
    expect(got).toHaveLength(2);
    expect(got[0]!.runId).toBe(1);
    const err = await new Promise<grpc.ServiceError>((resolve) => {
      const stream = client.WatchResults({ intervalMs: 10 });
      stream.on('error', resolve);
      stream.on('data', () => undefined);
    });
    expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err.details).toMatch(/interval_ms/);
  });
});
