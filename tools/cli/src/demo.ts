// `flowline demo`: the product's main job on one node. A node comes up (OVS-DPDK, device plugin
// over emulated NICs, chain controller); pods gen (traffic-gen: net1 sends, net2 is the sink),
// fw (firewall) and rtr (router) start from Kubernetes Pod YAML; a chain gen/net1 → fw → rtr →
// gen/net2 is created through the gRPC ChainService; traffic runs under the live stats table;
// mid-run a firewall rule denies one flow; a summary follows, and everything is torn down.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { NodeAlreadyUpError, applyManifests, nodeDown, nodeStatus, nodeUp } from '@flowline/node';
import { type chainV1, firewallV1, trafficGenV1 } from '@flowline/proto';
import { quickPdr } from './bench-chain';
import {
  OperatorCredentials,
  chainClient,
  grpcMessage,
  nfInfo,
  unary,
  waitServing,
} from './clients';
import { StatsCollector, renderStats } from './stats';
import { renderTable } from './table';

/** The demo's node config and pods; FLOWLINE_DEMO_DIR names another set (same file names). */
export const DEMO_DIR =
  process.env.FLOWLINE_DEMO_DIR ?? resolve(__dirname, '..', 'examples', 'demo');

type Fn<Req, Res> = Parameters<typeof unary<Req, Res>>[0];
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const num = (v: unknown): number => Number(v ?? 0);

/** The demo's flows: web and dns pass the firewall; telnet does not; dns is denied mid-run. */
export const DEMO_FLOWS = [
  { name: 'web', dstPort: 80 },
  { name: 'dns', dstPort: 53 },
  { name: 'telnet', dstPort: 23 },
] as const;

export const DEMO_CHAIN: chainV1.ChainSpec = {
  classifier: { ingressPort: 'default/gen/net1' },
  hops: [
    {
      nf: 'default/fw',
      ingressInterface: 'net1',
      egressInterface: 'net2',
      // The chain's own rule: the controller gives it to the firewall through firewall.v1.
      config: {
        firewallRules: [
          {
            id: 'chain-allow-web',
            priority: 100,
            action: 'PERMIT',
            protocol: 'udp',
            dstPorts: { first: 80, last: 80 },
            description: 'web through the demo chain',
          },
        ],
      },
    },
    { nf: 'default/rtr', ingressInterface: 'net1', egressInterface: 'net2' },
  ],
  egressPort: 'default/gen/net2',
  failurePolicy: 'FAIL_CLOSED',
};

/** Fills ${NAME} placeholders of a demo file; a placeholder without a value is an error. */
export function renderTemplate(
  text: string,
  values: Record<string, string>,
  source: string,
): string {
  return text.replace(/\$\{([A-Z0-9_]+)\}/g, (_, name: string) => {
    const v = values[name];
    if (v === undefined) throw new Error(`${source}: no value for \${${name}}`);
    return v;
  });
}

/** Writes demo files with their placeholders filled into `dir`; returns their paths. */
function renderDemoFiles(dir: string, names: string[], values: Record<string, string>): string[] {
  mkdirSync(dir, { recursive: true });
  return names.map((name) => {
    const out = join(dir, name);
    writeFileSync(out, renderTemplate(readFileSync(join(DEMO_DIR, name), 'utf8'), values, name));
    return out;
  });
}

export type TrafficGenClient = InstanceType<
  ReturnType<typeof trafficGenV1.loadTrafficGenV1>['TrafficGenerator']
>;
export type FirewallClient = InstanceType<ReturnType<typeof firewallV1.loadFirewallV1>['Firewall']>;

/** A running demo node: its pods' clients and the chain, for the demo and the e2e tests. */
export interface DemoNode {
  stateDir: string;
  address(key: string): string;
  /** The operator's credentials on this node (what the CLI presents). */
  creds: OperatorCredentials;
  controllerAddress: string;
  chains: chainV1.ChainServiceClient;
  gen: TrafficGenClient;
  fw: FirewallClient;
  rtrMac: string;
  startTraffic(ratePps: number, countPerFlow: number): Promise<void>;
  results(): Promise<trafficGenV1.Results__Output>;
  stopTraffic(): Promise<trafficGenV1.Results__Output>;
  addFirewallRule(rule: firewallV1.Rule): Promise<void>;
  firewallCounters(): Promise<firewallV1.Counters__Output>;
  chain(): Promise<chainV1.Chain__Output>;
  close(): void;
}

/** Brings the node up, starts gen, fw and rtr, and creates the chain through the gRPC API. */
/**
 * Whether a run that failed with err brought a node up that it must take down: not when `up`
 * found a node agent already running in the state dir (the operator's, or another run's).
 */
export function ownsDemoNode(err: unknown): boolean {
  return !(err instanceof NodeAlreadyUpError);
}

/**
 * Takes the demo node down. When the run already failed (failure), a teardown failure is added
 * to that error's message, not thrown over it: the first error is the one to read.
 */
export async function tearDownDemoNode(
  stateDir: string,
  say: (t: string) => void,
  failure?: Error,
): Promise<void> {
  say('tearing down');
  try {
    await nodeDown({ stateDir });
  } catch (err) {
    if (!failure) throw err;
    failure.message += `; tearing down failed too: ${err instanceof Error ? err.message : String(err)}`;
    return;
  }
  say('done: no OVS port, netns, process, socket or hugepage file left');
}

export async function startDemoNode(
  stateDir: string,
  say: (t: string) => void,
  nodeConfig = join(DEMO_DIR, 'node.yaml'),
): Promise<DemoNode> {
  say('bringing up the node: OVS-DPDK, device plugin over emulated NICs, chain controller');
  await nodeUp({ stateDir, configFile: nodeConfig });
  const creds = OperatorCredentials.resolve(stateDir);
  const rendered = join(stateDir, 'demo');
  const values: Record<string, string> = { DEMO_CONFIG_DIR: rendered };
  const address = (key: string): string => {
    const pod = nodeStatus(stateDir).pods.find((p) => p.key === key);
    if (!pod) throw new Error(`pod ${key} is not running`);
    return pod.grpcAddress;
  };
  say('starting pod gen (traffic-gen: net1 sends, net2 is the sink)');
  renderDemoFiles(rendered, ['gen-config.yaml', 'fw-config.yaml'], values);
  await applyManifests(stateDir, renderDemoFiles(rendered, ['gen.yaml'], values), {
    timeoutMs: 120_000,
  });
  await waitServing(address('default/gen'), 'default/gen', creds);
  const genInfo = await nfInfo(address('default/gen'), 'default/gen', creds);
  const genNet2 = genInfo.ports.find((p) => p.name === 'net2')?.mac;
  if (!genNet2) throw new Error('gen has no net2 port');
  values.GEN_NET2_MAC = genNet2;
  say('starting pods fw (firewall) and rtr (router)');
  renderDemoFiles(rendered, ['rtr-config.yaml'], values);
  await applyManifests(stateDir, renderDemoFiles(rendered, ['fw.yaml', 'rtr.yaml'], values), {
    timeoutMs: 120_000,
  });
  for (const key of ['default/fw', 'default/rtr']) await waitServing(address(key), key, creds);
  const controllerAddress = nodeStatus(stateDir).controller!.address;

  say('creating the chain gen/net1 → fw → rtr → gen/net2 through flowline.chain.v1');
  const chains = chainClient(controllerAddress, creds);
  const created = await unary(
    chains.CreateChain.bind(chains) as Fn<
      { name: string; spec: chainV1.ChainSpec },
      chainV1.Chain__Output
    >,
    { name: 'demo', spec: DEMO_CHAIN },
  );
  say(`chain demo: ${created.status?.phase} (${created.status?.message ?? ''})`);
  const rtrMac = (await nfInfo(address('default/rtr'), 'default/rtr', creds)).ports.find(
    (p) => p.name === 'net1',
  )?.mac;
  if (!rtrMac) throw new Error('the router has no net1 port');
  const gen = new (trafficGenV1.loadTrafficGenV1().TrafficGenerator)(
    address('default/gen'),
    creds.toNf('default/gen'),
  );
  const fw = new (firewallV1.loadFirewallV1().Firewall)(
    address('default/fw'),
    creds.toNf('default/fw'),
  );
  return {
    stateDir,
    address,
    creds,
    controllerAddress,
    chains,
    gen,
    fw,
    rtrMac,
    async startTraffic(ratePps, countPerFlow) {
      await unary(gen.Start.bind(gen) as Fn<trafficGenV1.StartRequest, unknown>, {
        flows: DEMO_FLOWS.map((f, i) => ({
          name: f.name,
          txPort: 'net1',
          protocol: 'UDP' as const,
          srcIp: '10.1.0.10',
          dstIp: '10.2.0.10',
          srcPort: 10_000 + i,
          dstPort: f.dstPort,
          dstMac: rtrMac,
          count: countPerFlow,
        })),
        totalRatePps: ratePps,
        rxPorts: ['net2'],
      });
    },
    results: () => unary(gen.GetResults.bind(gen) as Fn<object, trafficGenV1.Results__Output>, {}),
    stopTraffic: () => unary(gen.Stop.bind(gen) as Fn<object, trafficGenV1.Results__Output>, {}),
    async addFirewallRule(rule) {
      await unary(fw.AddRule.bind(fw) as Fn<{ rule: firewallV1.Rule }, unknown>, { rule });
    },
    firewallCounters: () =>
      unary(fw.GetCounters.bind(fw) as Fn<object, firewallV1.Counters__Output>, {}),
    chain: () =>
      unary(chains.GetChain.bind(chains) as Fn<{ name: string }, chainV1.Chain__Output>, {
        name: 'demo',
      }),
    close() {
      gen.close();
      fw.close();
      chains.close();
    },
  };
}

export const DENY_DNS: firewallV1.Rule = {
  id: 'deny-dns',
  priority: 900,
  action: 'DENY',
  protocol: 'udp',
  dstPorts: { first: 53, last: 53 },
  description: 'demo: deny dns mid-run',
};

export interface DemoOptions {
  stateDir: string;
  seconds: number;
  json: boolean;
  /** Total offered load; modest so that 4 pollers (gen, fw, rtr, OVS PMD) fit 2 cores. */
  ratePps?: number;
  /**
   * Derive the load from this machine: a short NDR/PDR search on the chain before the demo
   * (1 s trials), then half the PDR found is offered (the default rate if the search found
   * none).
   */
  autoRate?: boolean;
  write?: (text: string) => void;
}

export interface DemoFlowSummary {
  name: string;
  sent: number;
  received: number;
  lost: number;
  p50Us?: number;
  p99Us?: number;
}

export interface DemoSummary {
  seconds: number;
  /** The load offered, in packets/s over all flows, and where it came from. */
  offeredPps: number;
  rateFrom: 'default' | 'flag' | 'search';
  /** With rateFrom 'search': what the short search found. */
  measured?: { pdrPps: number; ndrPps: number };
  /** Packets received at the sink over the seconds the generator sent, in Mpps. */
  deliveredMpps: number;
  sent: number;
  received: number;
  flows: DemoFlowSummary[];
  dropped: Record<string, number>;
  /** Per hop: packets during the run and their rate averaged over the run (not one second). */
  hops: { hop: string; packets: number; mpps: number }[];
  ruleChange: { atSecond: number; flow: string; deliveredBefore: number; deliveredAfter: number };
  latencyUs: { p50: number; p99: number; max: number };
}

export async function runDemo(opts: DemoOptions): Promise<DemoSummary> {
  const write = opts.write ?? ((t: string) => process.stdout.write(t));
  const say = (t: string): void => {
    if (!opts.json) write(`[demo] ${t}\n`);
  };
  let rate = opts.ratePps ?? 60_000;
  let rateFrom: DemoSummary['rateFrom'] = opts.ratePps ? 'flag' : 'default';
  let measured: DemoSummary['measured'];
  let collector: StatsCollector | undefined;
  let node: DemoNode | undefined;
  let failure: Error | undefined;
  let ownsNode = true;
  try {
    node = await startDemoNode(opts.stateDir, say);
    if (opts.autoRate) {
      say('measuring this machine: a short NDR/PDR search on the chain (1 s trials)');
      measured = await quickPdr(node, say);
      if (measured.pdrPps > 0) {
        rate = Math.round(measured.pdrPps / 2);
        rateFrom = 'search';
        say(
          `PDR ≈ ${(measured.pdrPps / 1e6).toFixed(3)} Mpps, NDR ≈ ${(measured.ndrPps / 1e6).toFixed(3)} Mpps (short trials): offering half the PDR`,
        );
      } else {
        // Even the lowest load lost packets (a host busy with other work): keep the default.
        say(`the search found no loss-free load; offering the default ${rate} pps`);
      }
    }
    // Count-limited flows, so that every packet sent is accounted for once the chain drains.
    await node.startTraffic(rate, Math.floor((rate / DEMO_FLOWS.length) * opts.seconds));
    say(
      `traffic: ${DEMO_FLOWS.map((f) => f.name).join(', ')} at ${rate} pps in all, for ${opts.seconds} s`,
    );
    const status = nodeStatus(opts.stateDir);
    collector = new StatsCollector(
      status.pods.map((p) => ({ name: p.key, grpcAddress: p.grpcAddress })),
      node.controllerAddress,
      node.creds,
    );
    const received = async (flow: string): Promise<number> =>
      num((await node!.results()).flows.find((f) => f.name === flow)?.rxPackets);
    const hopsAtStart = new Map((await collector.read()).hops.map((h) => [h.hop, h.packets]));
    const startedAt = Date.now();
    const changeAt = Math.floor(opts.seconds / 2);
    let dnsAtChange = 0;
    let dnsSettled = 0;
    let hops: DemoSummary['hops'] = [];
    for (let s = 1; s <= opts.seconds; s++) {
      await sleep(1000);
      if (s === changeAt) {
        dnsAtChange = await received('dns');
        await node.addFirewallRule(DENY_DNS);
        say(
          `second ${s}: firewall rule deny-dns (udp dport 53) added through flowline.firewall.v1`,
        );
      }
      // Packets already past the firewall when the rule landed still arrive; a second later
      // nothing of dns may.
      if (s === changeAt + 1) dnsSettled = await received('dns');
      const view = await collector.read();
      const secs = (Date.now() - startedAt) / 1000;
      hops = view.hops.map((h) => {
        const packets = h.packets - (hopsAtStart.get(h.hop) ?? 0);
        return { hop: h.hop, packets, mpps: packets / secs / 1e6 };
      });
      if (!opts.json) {
        const r = await node.results();
        const flowTable = renderTable(
          ['flow', 'sent', 'received', 'p99 µs'],
          r.flows.map((f) => [
            f.name,
            num(f.txPackets),
            num(f.rxPackets),
            f.latency ? (num(f.latency.p99Ns) / 1000).toFixed(1) : '-',
          ]),
        );
        write(
          `\x1b[2J\x1b[H[demo] second ${s}/${opts.seconds}${s >= changeAt ? '  (deny-dns in force)' : ''}\n\n${flowTable}\n\n${renderStats(view)}\n`,
        );
      }
    }
    // Let the last packets leave the generator and cross the chain before counting.
    for (let i = 0; i < 100 && !(await node.results()).txDone; i++) await sleep(100);
    await sleep(1000);
    const final = await node.results();
    await node.stopTraffic();
    const counters = await node.firewallCounters();
    const view = await collector.read();
    const dropped: Record<string, number> = { ...view.drops };
    dropped['fw: default deny'] = num(counters.defaultDenied);
    for (const r of counters.rules)
      if (r.id === 'deny-dns') dropped['fw: rule deny-dns'] = num(r.packets);
    const lat = (pick: (l: trafficGenV1.Latency__Output) => unknown): number[] =>
      final.flows.map((f) => (f.latency ? num(pick(f.latency)) : 0)).filter((v) => v > 0);
    const summary: DemoSummary = {
      seconds: opts.seconds,
      offeredPps: rate,
      rateFrom,
      ...(measured ? { measured } : {}),
      deliveredMpps: num(final.totals?.rxPackets) / opts.seconds / 1e6,
      sent: num(final.totals?.txPackets),
      received: num(final.totals?.rxPackets),
      flows: final.flows.map((f) => ({
        name: f.name,
        sent: num(f.txPackets),
        received: num(f.rxPackets),
        lost: num(f.lost),
        ...(f.latency
          ? { p50Us: num(f.latency.p50Ns) / 1000, p99Us: num(f.latency.p99Ns) / 1000 }
          : {}),
      })),
      dropped,
      hops,
      ruleChange: {
        atSecond: changeAt,
        flow: 'dns',
        deliveredBefore: dnsAtChange,
        deliveredAfter: num(final.flows.find((f) => f.name === 'dns')?.rxPackets) - dnsSettled,
      },
      latencyUs: {
        p50: Math.max(0, ...lat((l) => l.p50Ns)) / 1000,
        p99: Math.max(0, ...lat((l) => l.p99Ns)) / 1000,
        max: Math.max(0, ...lat((l) => l.maxNs)) / 1000,
      },
    };
    if (!opts.json) {
      write('\n[demo] summary\n');
      write(
        `${renderTable(
          ['flow', 'sent', 'received', 'not delivered', 'p50 µs', 'p99 µs'],
          summary.flows.map((f) => [
            f.name,
            f.sent,
            f.received,
            f.sent - f.received,
            f.p50Us?.toFixed(1) ?? '-',
            f.p99Us?.toFixed(1) ?? '-',
          ]),
        )}\n\n`,
      );
      write(`${renderTable(['dropped by', 'packets'], Object.entries(summary.dropped))}\n\n`);
      write(
        `${renderTable(
          ['hop', 'packets', 'Mpps (run average)'],
          summary.hops.map((h) => [h.hop, h.packets, h.mpps.toFixed(3)]),
        )}\n\n`,
      );
      write(
        `offered ${(rate / 1e6).toFixed(3)} Mpps (${rateFrom === 'search' ? 'half the PDR the short search measured' : rateFrom === 'flag' ? '--rate' : 'default; --rate auto derives it from this machine'}), delivered ${summary.deliveredMpps.toFixed(3)} Mpps\n`,
      );
      write(
        `sent ${summary.sent}, received ${summary.received}; latency p50 ${summary.latencyUs.p50.toFixed(1)} µs, p99 ${summary.latencyUs.p99.toFixed(1)} µs, max ${summary.latencyUs.max.toFixed(1)} µs\n`,
      );
      write(
        `rule change at second ${changeAt}: dns delivered ${summary.ruleChange.deliveredBefore} before it, ${summary.ruleChange.deliveredAfter} from a second after it\n`,
      );
    }
    return summary;
  } catch (err) {
    ownsNode = ownsDemoNode(err);
    failure = new Error(`demo failed: ${grpcMessage(err)}`);
    throw failure;
  } finally {
    collector?.close();
    node?.close();
    if (ownsNode) await tearDownDemoNode(opts.stateDir, say, failure);
  }
}
