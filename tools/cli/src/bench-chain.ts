// `flowline bench chain`: the demo's chain (gen/net1 → fw → rtr → gen/net2 through OVS-DPDK)
// on a node of its own, measured: the CPU of the idle chain per process, an RFC 2544 NDR/PDR
// search with the traffic generator (tools/bench/src/chain: MLRsearch-style, short trials
// first, final trials of --trial-seconds), latency p50/p90/p99 at 10/50/90 % of the PDR, and
// per-hop counters and drops by reason (the NFs' stages and the switch's interfaces). Loss is
// counted exactly per flow: count-limited flows, and the counts read once the chain drained.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type ChainBenchResult,
  type ChainCounters,
  type ChainTarget,
  type ProcessRef,
  type SearchOptions,
  type TrialOutcome,
  chainBenchJson,
  chainBenchSvg,
  renderChainBench,
  runChainBench,
  searchNdrPdr,
} from '@flowline/bench';
import { nodePaths, nodeStatus, readState } from '@flowline/node';
import type { trafficGenV1 } from '@flowline/proto';
import { grpcMessage, unary } from './clients';
import { type DemoNode, ownsDemoNode, startDemoNode, tearDownDemoNode } from './demo';
import { StatsCollector } from './stats';

type Fn<Req, Res> = Parameters<typeof unary<Req, Res>>[0];
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const num = (v: unknown): number => Number(v ?? 0);

/** The flows of a benchmark: UDP to port 80 (the chain's allow-web), one source port each. */
export function benchFlows(node: DemoNode, flows: number): trafficGenV1.Flow[] {
  return Array.from({ length: flows }, (_, i) => ({
    name: `web-${i}`,
    txPort: 'net1',
    protocol: 'UDP' as const,
    srcIp: '10.1.0.10',
    dstIp: '10.2.0.10',
    srcPort: 20_000 + i,
    dstPort: 80,
    dstMac: node.rtrMac,
  }));
}

export interface ChainTrialOptions {
  flows?: number;
  /** Longest wait for the chain to drain after the generator sent its last packet. */
  drainMs?: number;
}

/**
 * One trial: count-limited flows at `offeredPps` in all for `durationS`; waits until the
 * generator has sent everything, then until the sink's count stops moving, and counts per flow:
 * lost = sent − distinct arrivals.
 */
export async function chainTrial(
  node: DemoNode,
  offeredPps: number,
  durationS: number,
  opts: ChainTrialOptions = {},
): Promise<TrialOutcome> {
  const flows = benchFlows(node, opts.flows ?? 4);
  const count = Math.max(1, Math.round((offeredPps * durationS) / flows.length));
  const gen = node.gen;
  await unary(gen.Start.bind(gen) as Fn<trafficGenV1.StartRequest, unknown>, {
    flows: flows.map((f) => ({ ...f, count })),
    totalRatePps: offeredPps,
    rxPorts: ['net2'],
  });
  const t0 = process.hrtime.bigint();
  const deadline = Date.now() + durationS * 4000 + 10_000;
  let txSeconds = 0;
  for (;;) {
    const r = await node.results();
    if (r.txDone) {
      txSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
      break;
    }
    if (Date.now() > deadline) {
      await node.stopTraffic();
      throw new Error(`the generator did not send ${count} packets per flow within the trial`);
    }
    await sleep(Math.min(50, durationS * 100));
  }
  // Drained when the received count has not moved for 3 readings 50 ms apart.
  let last = -1;
  let still = 0;
  const drainEnd = Date.now() + (opts.drainMs ?? 2000);
  let r = await node.results();
  while (still < 3 && Date.now() < drainEnd) {
    await sleep(50);
    r = await node.results();
    const rx = num(r.totals?.rxPackets);
    still = rx === last ? still + 1 : 0;
    last = rx;
  }
  r = await node.stopTraffic();
  const perFlow = r.flows.map((f) => {
    const sent = num(f.txPackets);
    const received = num(f.rxPackets) - num(f.duplicates);
    return { name: f.name, sent, received, lost: Math.max(0, sent - received) };
  });
  const lat = r.totals?.latency;
  return {
    sent: perFlow.reduce((a, f) => a + f.sent, 0),
    lost: perFlow.reduce((a, f) => a + f.lost, 0),
    achievedPps: txSeconds > 0 ? perFlow.reduce((a, f) => a + f.sent, 0) / txSeconds : 0,
    extra: {
      flows: perFlow,
      txSeconds,
      ...(lat
        ? {
            latencyUs: {
              p50: num(lat.p50Ns) / 1000,
              p90: num(lat.p90Ns) / 1000,
              p99: num(lat.p99Ns) / 1000,
              max: num(lat.maxNs) / 1000,
            },
          }
        : {}),
    },
  };
}

/** Every process of the node with its pid: the daemons, OVS, and each pod's NF. */
export function nodeProcesses(stateDir: string): ProcessRef[] {
  const state = readState(nodePaths(stateDir).stateFile);
  if (!state) return [];
  const out: ProcessRef[] = [];
  if (state.agent) out.push({ name: 'node agent', pid: state.agent.pid });
  if (state.controller) out.push({ name: 'chain-controller', pid: state.controller.pid });
  if (state.devicePlugin) out.push({ name: 'device-plugin', pid: state.devicePlugin.pid });
  if (state.cniDaemon) out.push({ name: 'cni daemon', pid: state.cniDaemon.pid });
  if (state.ovs)
    for (const daemon of ['ovs-vswitchd', 'ovsdb-server']) {
      try {
        const pid = Number(readFileSync(join(state.ovs.runDir, `${daemon}.pid`), 'utf8').trim());
        if (pid > 0) out.push({ name: daemon, pid });
      } catch {
        // not running
      }
    }
  for (const pod of Object.values(state.pods))
    if (pod.process) out.push({ name: `pod ${pod.key}`, pid: pod.process.pid });
  return out;
}

/**
 * Drop and error counters of the switch's interfaces (OVSDB statistics, refreshed every 5 s),
 * each named by the pod and interface the CNI plugin recorded in its external_ids.
 */
export function switchDrops(dbSocket: string): Record<string, number> {
  const out: Record<string, number> = {};
  let text: string;
  try {
    text = execFileSync(
      'ovs-vsctl',
      [
        `--db=unix:${dbSocket}`,
        '--format=json',
        '--columns=name,external_ids,statistics',
        'list',
        'Interface',
      ],
      { encoding: 'utf8', timeout: 5000 },
    );
  } catch {
    return out;
  }
  type OvsMap = ['map', [string, string | number][]];
  const doc = JSON.parse(text) as { data: [string, OvsMap, OvsMap][] };
  for (const [name, [, ids], [, stats]] of doc.data) {
    const id = Object.fromEntries(ids);
    const who =
      id['k8s-pod-name'] !== undefined
        ? `${String(id['k8s-pod-namespace'])}/${String(id['k8s-pod-name'])}/${String(id['cni-ifname'])}`
        : name;
    for (const [k, v] of stats)
      if (/drop|error|fail/.test(k) && Number(v) > 0) out[`switch port ${who}: ${k}`] = Number(v);
  }
  return out;
}

/** The chain as a ChainTarget for tools/bench's runChainBench. */
export function demoChainTarget(node: DemoNode, opts: ChainTrialOptions = {}): ChainTarget {
  return {
    name: 'demo (gen → fw → rtr → gen through OVS-DPDK)',
    trial: (pps, s) => chainTrial(node, pps, s, opts),
    processes: () => nodeProcesses(node.stateDir),
    async counters(): Promise<ChainCounters> {
      const status = nodeStatus(node.stateDir);
      const collector = new StatsCollector(
        status.pods.map((p) => ({ name: p.key, grpcAddress: p.grpcAddress })),
        node.controllerAddress,
        node.creds,
        500,
      );
      try {
        await sleep(1200);
        const view = await collector.read();
        const drops: Record<string, number> = { ...view.drops };
        const fw = await node.firewallCounters();
        if (num(fw.defaultDenied)) drops['default/fw: default deny'] = num(fw.defaultDenied);
        if (status.ovs) {
          await sleep(5500); // OVSDB's statistics lag the datapath by up to 5 s
          Object.assign(drops, switchDrops(status.ovs.dbSocket));
        }
        const hops = view.hops.map((h) => ({
          hop: h.hop,
          packets: h.packets,
          dropped: Object.entries(drops)
            .filter(([k]) => k.startsWith(`${h.hop}:`))
            .reduce((a, [, v]) => a + v, 0),
        }));
        return { hops, drops };
      } finally {
        collector.close();
      }
    },
  };
}

export interface BenchChainOptions {
  stateDir: string;
  /** Final trial duration (≥ 5 s for a real search). */
  trialSeconds: number;
  /** Durations of the earlier, narrowing phases. */
  shortSeconds: number[];
  minPps: number;
  maxPps: number;
  resolution: number;
  maxTrials: number;
  /** Final-phase trials' worth of goal duration per load (majority decides); default 1. */
  trialsPerLoad?: number;
  idleSeconds: number;
  /** Seconds of the stall probe after the idle window (0: none). */
  stallSeconds?: number;
  flows: number;
  outDir?: string;
  /** The node's config (default the demo's examples/demo/node.yaml). */
  nodeConfig?: string;
  json: boolean;
  write?: (t: string) => void;
}

export async function runBenchChain(
  opts: BenchChainOptions,
): Promise<{ result: ChainBenchResult; files: string[] }> {
  const write = opts.write ?? ((t: string) => process.stdout.write(t));
  const say = (t: string): void => {
    if (!opts.json) write(`[bench chain] ${t}\n`);
  };
  let node: DemoNode | undefined;
  let failure: Error | undefined;
  let ownsNode = true;
  try {
    node = await startDemoNode(opts.stateDir, say, opts.nodeConfig);
    // Let the pods' start-up work (gRPC, first stats) settle before the idle window.
    await sleep(2000);
    const search: SearchOptions = {
      minPps: opts.minPps,
      maxPps: opts.maxPps,
      durationsS: [...opts.shortSeconds, opts.trialSeconds],
      relativeResolution: opts.resolution,
      maxTrials: opts.maxTrials,
      ...(opts.trialsPerLoad ? { trialsPerLoad: opts.trialsPerLoad } : {}),
    };
    const result = await runChainBench(demoChainTarget(node, { flows: opts.flows }), {
      search,
      idleSeconds: opts.idleSeconds,
      stallSeconds: opts.stallSeconds ?? 0,
      log: say,
    });
    const outDir = opts.outDir ?? join(tmpdir(), `flowline-bench-chain-${Date.now()}`);
    mkdirSync(outDir, { recursive: true });
    const files = [join(outDir, 'chain-bench.json'), join(outDir, 'chain-bench.svg')];
    writeFileSync(files[0]!, `${JSON.stringify(chainBenchJson(result), null, 2)}\n`);
    writeFileSync(files[1]!, chainBenchSvg(result));
    if (opts.json) write(`${JSON.stringify({ ...chainBenchJson(result), files }, null, 2)}\n`);
    else write(`\n${renderChainBench(result)}\n\nwrote ${files.join(' and ')}\n`);
    return { result, files };
  } catch (err) {
    ownsNode = ownsDemoNode(err);
    failure = new Error(`bench chain failed: ${grpcMessage(err)}`);
    throw failure;
  } finally {
    node?.close();
    if (ownsNode) await tearDownDemoNode(opts.stateDir, say, failure);
  }
}

/**
 * A short search on a running demo node (for the demo's offered load): 1 s trials, 10 %
 * resolution, at most 10 trials. Returns the PDR found (0 if even the minimum lost).
 */
export async function quickPdr(
  node: DemoNode,
  log: (t: string) => void,
): Promise<{ pdrPps: number; ndrPps: number }> {
  const r = await searchNdrPdr((pps, s) => chainTrial(node, pps, s), {
    minPps: 20_000,
    maxPps: 2_000_000,
    durationsS: [1],
    relativeResolution: 0.1,
    maxTrials: 10,
    onTrial: (t) =>
      log(
        `  ${(t.offeredPps / 1e6).toFixed(3)} Mpps × ${t.durationS} s: lost ${t.lost} of ${t.sent}`,
      ),
  });
  return { pdrPps: r.pdr.lowerPps, ndrPps: r.ndr.lowerPps };
}
