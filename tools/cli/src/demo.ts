// `flowline demo`: the product's main job on one node. A node comes up (OVS-DPDK, device plugin
// over emulated NICs, chain controller); pods gen (traffic-gen: net1 sends, net2 is the sink),
// fw (firewall) and rtr (router) start from Kubernetes Pod YAML; a chain gen/net1 → fw → rtr →
// gen/net2 is created through the gRPC ChainService; traffic runs under the live stats table;
// mid-run a firewall rule denies one flow; a summary follows, and everything is torn down.
import { join, resolve } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { applyManifests, nodeDown, nodeStatus, nodeUp } from '@flowline/node';
import { type chainV1, firewallV1, trafficGenV1 } from '@flowline/proto';
import { chainClient, grpcMessage, nfInfo, unary } from './clients';
import { StatsCollector, renderStats } from './stats';
import { renderTable } from './table';

export const DEMO_DIR = resolve(__dirname, '..', 'examples', 'demo');

export interface DemoOptions {
  stateDir: string;
  seconds: number;
  json: boolean;
  /** Total offered load; modest so that 4 pollers (gen, fw, rtr, OVS PMD) fit 2 cores. */
  ratePps?: number;
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
  sent: number;
  received: number;
  flows: DemoFlowSummary[];
  dropped: Record<string, number>;
  hops: { hop: string; packets: number; mpps: number }[];
  ruleChange: { atSecond: number; flow: string; before: number; after: number };
  latencyUs: { p50: number; p99: number; max: number };
}

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
    { nf: 'default/fw', ingressInterface: 'net1', egressInterface: 'net2' },
    { nf: 'default/rtr', ingressInterface: 'net1', egressInterface: 'net2' },
  ],
  egressPort: 'default/gen/net2',
  failurePolicy: 'FAIL_CLOSED',
};

async function waitServing(address: string, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const info = await nfInfo(address, 2000);
      if (info.ports.every((p) => p.linkUp)) return;
    } catch {
      // not serving yet
    }
    if (Date.now() > deadline)
      throw new Error(`${what} did not serve with every link up within ${timeoutMs / 1000} s`);
    await sleep(250);
  }
}

export async function runDemo(opts: DemoOptions): Promise<DemoSummary> {
  const write = opts.write ?? ((t: string) => process.stdout.write(t));
  const say = (t: string): void => {
    if (!opts.json) write(`[demo] ${t}\n`);
  };
  const rate = opts.ratePps ?? 200_000;
  let collector: StatsCollector | undefined;
  const clients: grpc.Client[] = [];
  try {
    say('bringing up the node: OVS-DPDK, device plugin over emulated NICs, chain controller');
    await nodeUp({ stateDir: opts.stateDir, configFile: join(DEMO_DIR, 'node.yaml') });
    say('starting pods gen (traffic-gen), fw (firewall), rtr (router)');
    await applyManifests(
      opts.stateDir,
      ['gen.yaml', 'fw.yaml', 'rtr.yaml'].map((f) => join(DEMO_DIR, f)),
      { timeoutMs: 120_000 },
    );
    const status = nodeStatus(opts.stateDir);
    const address = (key: string): string => {
      const pod = status.pods.find((p) => p.key === key);
      if (!pod) throw new Error(`pod ${key} is not running`);
      return pod.grpcAddress;
    };
    for (const key of ['default/gen', 'default/fw', 'default/rtr'])
      await waitServing(address(key), key);

    say('creating the chain gen/net1 → fw → rtr → gen/net2 through flowline.chain.v1');
    const chains = chainClient(status.controller!.address);
    clients.push(chains);
    const chain = await unary(
      chains.CreateChain.bind(chains) as Fn<
        { name: string; spec: chainV1.ChainSpec },
        chainV1.Chain__Output
      >,
      { name: 'demo', spec: DEMO_CHAIN },
    );
    say(`chain demo: ${chain.status?.phase}`);

    const rtrInfo = await nfInfo(address('default/rtr'));
    const rtrMac = rtrInfo.ports.find((p) => p.name === 'net1')?.mac;
    if (!rtrMac) throw new Error('the router has no net1 port');
    const gen = new (trafficGenV1.loadTrafficGenV1().TrafficGenerator)(
      address('default/gen'),
      grpc.credentials.createInsecure(),
    );
    const fw = new (firewallV1.loadFirewallV1().Firewall)(
      address('default/fw'),
      grpc.credentials.createInsecure(),
    );
    clients.push(gen, fw);
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
      })),
      totalRatePps: rate,
      rxPorts: ['net2'],
    });
    say(
      `traffic: ${DEMO_FLOWS.map((f) => f.name).join(', ')} at ${rate} pps in all, for ${opts.seconds} s`,
    );

    collector = new StatsCollector(
      status.pods.map((p) => ({ name: p.key, grpcAddress: p.grpcAddress })),
      status.controller!.address,
    );
    const results = async (): Promise<trafficGenV1.Results__Output> =>
      unary(gen.GetResults.bind(gen) as Fn<object, trafficGenV1.Results__Output>, {});
    const received = async (flow: string): Promise<number> =>
      num((await results()).flows.find((f) => f.name === flow)?.rxPackets);
    const changeAt = Math.floor(opts.seconds / 2);
    let ruleChange = { atSecond: changeAt, flow: 'dns', before: 0, after: 0 };
    let dnsAtChange = 0;
    let hops: DemoSummary['hops'] = [];
    for (let s = 1; s <= opts.seconds; s++) {
      await sleep(1000);
      if (s === changeAt) {
        dnsAtChange = await received('dns');
        await unary(fw.AddRule.bind(fw) as Fn<{ rule: firewallV1.Rule }, unknown>, {
          rule: {
            id: 'deny-dns',
            priority: 900,
            action: 'DENY',
            protocol: 'udp',
            dstPorts: { first: 53, last: 53 },
            description: 'demo: deny dns mid-run',
          },
        });
        say(
          `second ${s}: firewall rule deny-dns added (udp dport 53) through flowline.firewall.v1`,
        );
        ruleChange = { ...ruleChange, before: dnsAtChange };
      }
      const view = await collector.read();
      hops = view.hops.map((h) => ({ hop: h.hop, packets: h.packets, mpps: h.mpps }));
      if (!opts.json) {
        const r = await results();
        const flowTable = renderTable(
          ['flow', 'sent', 'received', 'lost', 'p99 µs'],
          r.flows.map((f) => [
            f.name,
            num(f.txPackets),
            num(f.rxPackets),
            num(f.lost),
            f.latency ? (num(f.latency.p99Ns) / 1000).toFixed(1) : '-',
          ]),
        );
        write(
          `\x1b[2J\x1b[H[demo] second ${s}/${opts.seconds}${s >= changeAt ? '  (deny-dns in force)' : ''}\n\n${flowTable}\n\n${renderStats(view)}\n`,
        );
      }
    }
    const final = await unary(gen.Stop.bind(gen) as Fn<object, trafficGenV1.Results__Output>, {});
    await sleep(500);
    const dnsFinal = num(final.flows.find((f) => f.name === 'dns')?.rxPackets);
    ruleChange = { ...ruleChange, after: dnsFinal - dnsAtChange };
    const counters = await unary(
      fw.GetCounters.bind(fw) as Fn<object, firewallV1.Counters__Output>,
      {},
    );
    const view = await collector.read();
    const dropped: Record<string, number> = { ...view.drops };
    dropped['fw:default_denied'] = num(counters.defaultDenied);
    for (const r of counters.rules)
      if (r.id === 'deny-dns') dropped['fw:rule deny-dns'] = num(r.packets);
    const p50s = final.flows.map((f) => num(f.latency?.p50Ns)).filter((v) => v > 0);
    const p99s = final.flows.map((f) => num(f.latency?.p99Ns)).filter((v) => v > 0);
    const maxes = final.flows.map((f) => num(f.latency?.maxNs)).filter((v) => v > 0);
    const summary: DemoSummary = {
      seconds: opts.seconds,
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
      ruleChange,
      latencyUs: {
        p50: p50s.length ? Math.max(...p50s) / 1000 : 0,
        p99: p99s.length ? Math.max(...p99s) / 1000 : 0,
        max: maxes.length ? Math.max(...maxes) / 1000 : 0,
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
      write(
        `${renderTable(
          ['dropped by', 'packets'],
          Object.entries(summary.dropped).map(([k, v]) => [k, v]),
        )}\n\n`,
      );
      write(
        `${renderTable(
          ['hop', 'packets', 'Mpps (last second)'],
          summary.hops.map((h) => [h.hop, h.packets, h.mpps.toFixed(3)]),
        )}\n\n`,
      );
      write(
        `sent ${summary.sent}, received ${summary.received}; latency p50 ${summary.latencyUs.p50.toFixed(1)} µs, p99 ${summary.latencyUs.p99.toFixed(1)} µs\n`,
      );
      write(
        `rule change at second ${changeAt}: dns delivered ${ruleChange.before} before, ${ruleChange.after} after\n`,
      );
    }
    return summary;
  } catch (err) {
    throw new Error(`demo failed: ${grpcMessage(err)}`);
  } finally {
    collector?.close();
    for (const c of clients) c.close();
    say('tearing down');
    await nodeDown({ stateDir: opts.stateDir });
    say('done: no OVS port, netns, process, socket or hugepage file left');
  }
}
