import { type AclRuleSet, firewallService, RuleStore } from '@flowline/firewall';
import { HealthService, trafficGenV1 } from '@flowline/proto';
import * as grpc from '@grpc/grpc-js';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  LocalPki,
  certificatesLoaded,
  channelCredentials,
  nfId,
  serverCredentials,
} from '@flowline/grpc-auth';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FlowOutcome } from './fates';
import { loadPlan, type TrafficPlan } from './plan';
import { NfCallError, runTrafficStep, trafficGenSource, waitServing } from './traffic';

// Mutual TLS as in the cluster: the stand-in NFs hold an NF identity, the driver is the operator.
const pki = new LocalPki(mkdtempSync(join(tmpdir(), 'flowline-kind-pki-')));
const nfFiles = pki.nf('e2e', 'nf');
const nfTls = () => serverCredentials(nfFiles, { warn: () => undefined }, 'stand-in NF');
const asOperator = channelCredentials(pki.operator(), nfId('e2e', 'nf'));
afterAll(() => rmSync(pki.dir, { recursive: true, force: true }));

const plan = loadPlan(join(__dirname, '..', 'e2e-plan.json'));

/**
 * The firewall's own gRPC service (rule validation, store, counters) on a real server; its ACL
 * table records what it was given instead of programming a DPDK pipeline, and its counters are
 * what a test's traffic source says the dataplane denied.
 */
function firewallServer(): {
  server: grpc.Server;
  health: HealthService;
  applied: AclRuleSet[];
  denied: { byRule: Map<string, bigint>; byDefault: bigint };
  start(): Promise<string>;
} {
  const applied: AclRuleSet[] = [];
  const denied = { byRule: new Map<string, bigint>(), byDefault: 0n };
  const store = new RuleStore({ apply: async (set) => void applied.push(set) });
  const reg = firewallService(store, {
    counters: () => ({
      rules: [...denied.byRule].map(([id, packets]) => ({ id, packets })),
      defaultPermitted: 0n,
      defaultDenied: denied.byDefault,
      droppedByReason: {},
    }),
  });
  const server = new grpc.Server();
  server.addService(reg.definition, reg.implementation);
  const health = new HealthService();
  health.addTo(server);
  return {
    server,
    health,
    applied,
    denied,
    start: async () => {
      await certificatesLoaded(nfFiles);
      return new Promise((resolve, reject) =>
        server.bindAsync('127.0.0.1:0', nfTls(), (err, port) =>
          err ? reject(err) : resolve(`127.0.0.1:${port}`),
        ),
      );
    },
  };
}

describe('the traffic step', () => {
  const fw = firewallServer();
  let address = '';
  beforeAll(async () => {
    address = await fw.start();
  });
  afterAll(() => fw.server.forceShutdown());

  const noRoutes: TrafficPlan = { ...plan, routes: [] };
  /** A sink that delivers what the plan permits; denied packets are counted by the firewall. */
  const source = (lose = 0) => ({
    run: async (p: TrafficPlan): Promise<FlowOutcome[]> =>
      p.flows.map((f) => {
        if (f.expect === 'dropped') {
          const id = f.dstPort === 5023 ? 'deny-telnet-range' : undefined;
          if (id) fw.denied.byRule.set(id, (fw.denied.byRule.get(id) ?? 0n) + BigInt(f.count));
          else fw.denied.byDefault += BigInt(f.count);
          return { name: f.name, sent: f.count, received: 0 };
        }
        return { name: f.name, sent: f.count, received: f.count - lose };
      }),
  });

  /** The step with every NF at the one test server. */
  const step = (p: TrafficPlan, lose = 0) =>
    runTrafficStep({
      plan: p,
      trafficGen: address,
      firewall: address,
      router: address,
      connectTimeoutMs: 5000,
      credentials: () => asOperator,
      source: source(lose),
    });

  it('gives the firewall the plan rules and passes when every packet meets its fate', async () => {
    expect(await step(noRoutes)).toBe(true);
    const last = fw.applied[fw.applied.length - 1]!;
    expect(last.defaultAction).toBe('deny');
    expect(last.rules.map((r) => r.id)).toEqual(plan.firewall.rules.map((r) => r.id));
  });

  it('fails when a permitted packet is lost, measuring denials as counter deltas', async () => {
    // Counters already hold the previous run's denials: only the increase counts.
    expect(await step(noRoutes, 1)).toBe(false);
  });

  it('names the server and method of a failed call (a router without its service)', async () => {
    await expect(step(plan)).rejects.toThrow(
      new RegExp(`AddRoute on ${address} failed: 12 UNIMPLEMENTED`),
    );
  });

  it('waits for SERVING and names the server that never gets there', async () => {
    await expect(waitServing(address, asOperator, 5000)).resolves.toBeUndefined();
    fw.health.setStatus('', 'NOT_SERVING');
    try {
      const err = await waitServing(address, asOperator, 1500).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(NfCallError);
      expect((err as Error).message).toMatch(
        new RegExp(
          `grpc.health.v1.Health/Check on ${address} failed: not SERVING after 1500 ms: NOT_SERVING`,
        ),
      );
    } finally {
      fw.health.setStatus('', 'SERVING');
    }
  });

  it('drives flowline.trafficgen.v1: count-limited flows out of net1, counted on net2, read after they finish', async () => {
    const { TrafficGenerator } = trafficGenV1.loadTrafficGenV1();
    const server = new grpc.Server();
    const starts: trafficGenV1.StartRequest__Output[] = [];
    let polls = 0;
    const results = (done: boolean) => ({
      runId: 1,
      state: 'RUNNING',
      txDone: done,
      flows: starts[0]!.flows.map((f, i) => ({
        flow: i,
        name: f.name,
        txPackets: String(f.count),
        rxPackets: String(plan.flows[i]!.expect === 'delivered' ? f.count : 0),
      })),
    });
    server.addService(TrafficGenerator.service, {
      Start: (
        call: grpc.ServerUnaryCall<trafficGenV1.StartRequest__Output, unknown>,
        cb: grpc.sendUnaryData<unknown>,
      ) => {
        starts.push(call.request);
        cb(null, { runId: 1, flowCount: call.request.flows.length });
      },
      GetResults: (_: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, results(++polls > 2)),
      Stop: (_: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, results(true)),
      WatchResults: (call: grpc.ServerWritableStream<unknown, unknown>) => call.end(),
    });
    await certificatesLoaded(nfFiles);
    const port = await new Promise<number>((res, rej) =>
      server.bindAsync('127.0.0.1:0', nfTls(), (e, p) => (e ? rej(e) : res(p))),
    );
    try {
      const outcomes = await trafficGenSource(`127.0.0.1:${port}`, asOperator, {
        dstMac: '02:00:00:00:00:aa',
        drainMs: 10,
      }).run(plan);
      expect(starts).toHaveLength(1);
      expect(starts[0]!.rxPorts).toEqual(['net2']);
      expect(
        starts[0]!.flows.map((f) => [f.name, f.txPort, f.dstMac, Number(f.count), f.dstPort]),
      ).toEqual(plan.flows.map((f) => [f.name, 'net1', '02:00:00:00:00:aa', f.count, f.dstPort]));
      expect(polls).toBeGreaterThanOrEqual(3);
      expect(outcomes).toEqual(
        plan.flows.map((f) => ({
          name: f.name,
          sent: f.count,
          received: f.expect === 'delivered' ? f.count : 0,
        })),
      );
    } finally {
      server.forceShutdown();
    }
  });
});

describe('flowline-kind-traffic (the built CLI)', () => {
  const cli = join(__dirname, '..', 'dist', 'traffic.js');

  it('names the missing flags and exits 64', () => {
    const r = spawnSync(process.execPath, [cli, '--plan', 'e2e-plan.json'], { encoding: 'utf8' });
    expect(r.status).toBe(64);
    expect(r.stderr).toMatch(/--plan, --traffic-gen, --firewall and --router are required/);
  });

  it('refuses a plan that does not validate, naming file and field', () => {
    const r = spawnSync(
      process.execPath,
      [
        cli,
        '--plan',
        join(__dirname, '..', 'package.json'),
        '--traffic-gen',
        'a:1',
        '--firewall',
        'a:1',
        '--router',
        'a:1',
      ],
      { encoding: 'utf8' },
    );
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/package\.json: firewall: must be an object/);
  });
});
