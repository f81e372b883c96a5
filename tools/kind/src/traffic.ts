#!/usr/bin/env node
import {
  firewallV1,
  loadHealthV1,
  loadNetworkFunctionV1,
  routerV1,
  trafficGenV1,
} from '@flowline/proto';
import { createLogger } from '@flowline/telemetry';
import * as grpc from '@grpc/grpc-js';
import { channelCredentials, nfId, transportSecurityFromEnv } from '@flowline/grpc-auth';
import { parseArgs } from 'node:util';
import { type FlowOutcome, judge } from './fates';
import { loadPlan, type TrafficPlan } from './plan';

const log = createLogger('kind-traffic');

const USAGE = `flowline-kind-traffic: the traffic step of tools/kind/e2e.sh

  --plan FILE                the traffic plan (tools/kind/e2e-plan.json)
  --traffic-gen HOST:PORT    traffic-gen's gRPC server (kubectl port-forward)
  --firewall HOST:PORT       the firewall's gRPC server
  --router HOST:PORT         the router's gRPC server
  --connect-timeout-ms N     how long to wait for each server to report SERVING (60000)
  --nf-namespace NS          the NFs' namespace (default), for the identities they must prove
  --traffic-gen-name, --firewall-name, --router-name   their releases (traffic-gen, firewall, router)

  Calls are mutual TLS as the operator: FLOWLINE_TLS_CA, FLOWLINE_TLS_CERT, FLOWLINE_TLS_KEY
  (FLOWLINE_INSECURE=1 for NFs deployed with tls.enabled=false; FLOWLINE_TRUST_DOMAIN if set).`;

/** A gRPC call that failed, naming the server and the method. */
export class NfCallError extends Error {
  constructor(
    readonly address: string,
    readonly method: string,
    cause: unknown,
  ) {
    super(`${method} on ${address} failed: ${(cause as Error).message}`, { cause });
    this.name = 'NfCallError';
  }
}

/** Sends the plan's flows and returns what the sink counted per flow. */
export interface TrafficSource {
  run(plan: TrafficPlan): Promise<FlowOutcome[]>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * The real generator: flowline.trafficgen.v1 Start with the plan's count-limited flows (net1
 * sends, net2 counts), then GetResults until every flow has sent all of it and a drain period
 * has passed, then Stop. `dstMac` is the router's net1 MAC when the chain needs it.
 */
export function trafficGenSource(
  address: string,
  creds: grpc.ChannelCredentials,
  opts: { dstMac?: string; drainMs?: number } = {},
): TrafficSource {
  return {
    async run(plan) {
      const gen = new (trafficGenV1.loadTrafficGenV1().TrafficGenerator)(address, creds);
      try {
        await call(address, 'Start', gen.start.bind(gen), {
          flows: plan.flows.map((f) => ({
            name: f.name,
            txPort: 'net1',
            protocol: f.protocol === 'tcp' ? ('TCP' as const) : ('UDP' as const),
            srcIp: f.srcIp,
            dstIp: f.dstIp,
            srcPort: f.srcPort,
            dstPort: f.dstPort,
            count: f.count,
            ratePps: f.ratePps,
            ...(opts.dstMac ? { dstMac: opts.dstMac } : {}),
          })),
          rxPorts: ['net2'],
        });
        const longest = Math.max(...plan.flows.map((f) => f.count / f.ratePps)) * 1000;
        const deadline = Date.now() + longest * 3 + 30_000;
        for (;;) {
          const r = await call(address, 'GetResults', gen.getResults.bind(gen), {});
          if (r.txDone) break;
          if (Date.now() > deadline)
            throw new NfCallError(
              address,
              'GetResults',
              new Error('the flows did not finish sending in time'),
            );
          await sleep(500);
        }
        await sleep(opts.drainMs ?? 2000);
        const results = await call(address, 'GetResults', gen.getResults.bind(gen), {});
        await call(address, 'Stop', gen.stop.bind(gen), {});
        return results.flows.map((f) => ({
          name: f.name,
          sent: Number(f.txPackets),
          received: Number(f.rxPackets),
        }));
      } finally {
        gen.close();
      }
    },
  };
}

/** The real generator, sending to the router's net1 MAC (a router takes frames addressed to it). */
async function generatorFor(
  trafficGen: string,
  router: string,
  creds: NfCredentials,
): Promise<TrafficSource> {
  const nf = new (loadNetworkFunctionV1().NetworkFunction)(router, creds('router'));
  try {
    const info = await call(router, 'GetInfo', nf.getInfo.bind(nf), {});
    const mac = info.ports.find((p) => p.name === 'net1')?.mac;
    return trafficGenSource(trafficGen, creds('trafficGen'), mac ? { dstMac: mac } : {});
  } finally {
    nf.close();
  }
}

function call<Req, Res>(
  address: string,
  method: string,
  fn: (req: Req, cb: (err: grpc.ServiceError | null, res?: Res) => void) => void,
  req: Req,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    fn(req, (err, res) => {
      if (err || res === undefined)
        reject(new NfCallError(address, method, err ?? new Error('no reply')));
      else resolve(res);
    });
  });
}

/** Polls grpc.health.v1 Check until the server reports SERVING (pods take time to boot). */
export async function waitServing(
  address: string,
  creds: grpc.ChannelCredentials,
  timeoutMs: number,
): Promise<void> {
  const Health = loadHealthV1().Health;
  const client = new Health(address, creds);
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  try {
    while (Date.now() < deadline) {
      try {
        const res = await call(address, 'grpc.health.v1.Health/Check', client.check.bind(client), {
          service: '',
        });
        if (res.status === 'SERVING') return;
        last = String(res.status);
      } catch (err) {
        last = (err as Error).message;
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  } finally {
    client.close();
  }
  throw new NfCallError(
    address,
    'grpc.health.v1.Health/Check',
    new Error(`not SERVING after ${timeoutMs} ms: ${last}`),
  );
}

/** Packets the firewall denied: its DENY rules' counters plus the default action's. */
export function deniedPackets(plan: TrafficPlan, counters: firewallV1.Counters__Output): number {
  const denyIds = new Set(plan.firewall.rules.filter((r) => r.action === 'DENY').map((r) => r.id));
  let n = Number(counters.defaultDenied);
  for (const r of counters.rules) if (denyIds.has(r.id)) n += Number(r.packets);
  return n;
}

export type NfCredentials = (nf: 'trafficGen' | 'firewall' | 'router') => grpc.ChannelCredentials;

export async function runTrafficStep(opts: {
  plan: TrafficPlan;
  trafficGen: string;
  firewall: string;
  router: string;
  connectTimeoutMs: number;
  /** How to reach each NF: mutual TLS as the operator, expecting that NF's identity. */
  credentials: NfCredentials;
  source?: TrafficSource;
}): Promise<boolean> {
  const { plan, credentials: creds } = opts;
  for (const [nf, address] of [
    ['trafficGen', opts.trafficGen],
    ['firewall', opts.firewall],
    ['router', opts.router],
  ] as const)
    await waitServing(address, creds(nf), opts.connectTimeoutMs);
  const fw = new (firewallV1.loadFirewallV1().Firewall)(opts.firewall, creds('firewall'));
  const rt = new (routerV1.loadRouterV1().Router)(opts.router, creds('router'));
  try {
    const version = await call(opts.firewall, 'ReplaceRules', fw.replaceRules.bind(fw), {
      ruleSet: { rules: plan.firewall.rules, defaultAction: plan.firewall.defaultAction },
    });
    log.info('firewall rules replaced', {
      generation: version.generation,
      rules: version.ruleCount,
    });
    for (const route of plan.routes) {
      await call(opts.router, 'AddRoute', rt.addRoute.bind(rt), {
        route: { prefix: route.prefix, interface: route.interface, nextHop: route.nextHop ?? '' },
      });
    }
    const before = deniedPackets(
      plan,
      await call(opts.firewall, 'GetCounters', fw.getCounters.bind(fw), {}),
    );
    const outcomes = await (
      opts.source ?? (await generatorFor(opts.trafficGen, opts.router, creds))
    ).run(plan);
    const after = deniedPackets(
      plan,
      await call(opts.firewall, 'GetCounters', fw.getCounters.bind(fw), {}),
    );
    const verdict = judge(plan, outcomes, after - before);
    for (const o of outcomes) log.info('flow', { ...o });
    if (verdict.ok) log.info('every packet met its fate', { ...verdict });
    else for (const p of verdict.problems) log.error(p);
    return verdict.ok;
  } finally {
    fw.close();
    rt.close();
  }
}

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      plan: { type: 'string' },
      'traffic-gen': { type: 'string' },
      firewall: { type: 'string' },
      router: { type: 'string' },
      'connect-timeout-ms': { type: 'string' },
      'nf-namespace': { type: 'string' },
      'traffic-gen-name': { type: 'string' },
      'firewall-name': { type: 'string' },
      'router-name': { type: 'string' },
      help: { type: 'boolean' },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const { plan, firewall, router } = values;
  const trafficGen = values['traffic-gen'];
  if (!plan || !trafficGen || !firewall || !router) {
    process.stderr.write(
      `--plan, --traffic-gen, --firewall and --router are required\n\n${USAGE}\n`,
    );
    return 64;
  }
  const timeout = Number(values['connect-timeout-ms'] ?? 60000);
  if (!Number.isInteger(timeout) || timeout <= 0) {
    process.stderr.write(
      `--connect-timeout-ms ${values['connect-timeout-ms']}: give milliseconds\n`,
    );
    return 64;
  }
  const loaded = loadPlan(plan); // a bad plan is named before anything else
  const security = transportSecurityFromEnv();
  if (!security) {
    process.stderr.write(
      "the NFs are mutual TLS: set FLOWLINE_TLS_CA, FLOWLINE_TLS_CERT and FLOWLINE_TLS_KEY to the operator certificate (the flowline release's <release>-operator-grpc-tls Secret), or FLOWLINE_INSECURE=1 for NFs deployed with tls.enabled=false\n",
    );
    return 64;
  }
  const namespace = values['nf-namespace'] ?? 'default';
  const names = {
    trafficGen: values['traffic-gen-name'] ?? 'traffic-gen',
    firewall: values['firewall-name'] ?? 'firewall',
    router: values['router-name'] ?? 'router',
  };
  const trustDomain = process.env.FLOWLINE_TRUST_DOMAIN || undefined;
  const ok = await runTrafficStep({
    plan: loaded,
    trafficGen,
    firewall,
    router,
    connectTimeoutMs: timeout,
    // Each NF must prove spiffe://<td>/ns/<namespace>/nf/<its release>.
    credentials: (nf) => channelCredentials(security, nfId(namespace, names[nf], trustDomain)),
  });
  return ok ? 0 : 1;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      log.error((err as Error).message, { error: (err as Error).name });
      process.exit(1);
    },
  );
}
