/**
 * `npm run bench:dpdk`: the NF-bound benchmark. Every case is one process polling on core 1
 * with a source that costs less than the NF (net_pcap replaying a generated trace forever,
 * `infinite_rx=1`, inside the NF's own rx call) and a sink that costs nothing (net_null
 * `no-rx=1`), so the NF under test is the bottleneck. Peers in the same run, on the same trace
 * and core: dpdk-testpmd io forward (the floor), OVS-DPDK with the same ACL as OpenFlow
 * (stateless, and stateful with ct()). Rounds interleave every case of a phase (the host moves
 * vCPUs: figures swing within a run); medians and medians of per-round ratios are reported.
 *
 *   phase A (64k-flow traces): testpmd io, Flowline l2fwd, burn control, ACL 1k / 10k,
 *     conntrack + ACL, pure-JS forwarder, LPM IPv6; OVS ACL 1k / 10k and ct() + ACL 1k
 *   phase B (1M-flow traces, OVS stopped): testpmd io, conntrack + ACL, LPM with ~1M IPv4 routes
 *   then: rte_acl build time and memory (1k / 10k / 100k rules), and the vhost-user topology
 *   (src/dpdk-bench.ts --nf-port vhost) unless --no-vhost.
 *
 * Afterwards each Flowline case's counters are checked against what the trace must produce
 * (per-rule hits, per-route hits, conntrack flows, nothing lost); OVS's per-rule flow counters
 * too. Output: a table, one JSON line, and an SVG chart (results/ by default).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';

import { positiveInt, windowFlag } from '../args';
import type { VirtioRing } from '../dpdk/nf';
import { cpuInfo } from '../machine';
import { must } from '../must';
import { median, withExtraCycles } from '../stats';
import {
  checkHits,
  expectedCtAclHits,
  expectedHits,
  judgeOvsRatio,
  ovsSteadiness,
  type HitCheck,
  type Window,
} from './checks';
import type { NfCase, NfPlan } from './flowline-nf';
import { FlowlineNf, KernelPeer, OvsPeer, TestpmdIo } from './peers';
import { abComparison, lcoreRoundTrip, renderReport, type CaseResult, type Report } from './report';
import {
  BROAD_RULES,
  aclFlows,
  benchRoutes4,
  benchRoutes6,
  benchRules,
  ip4,
  nftAcl,
  openflowAcl,
  toAclRules,
  type BenchRule,
} from './rules';
import { mergeSessionChecks, sessionOfRound } from './sessions';
import { writePcap, type Flows } from './trace';

interface Options {
  rounds: number;
  warmupMs: number;
  windowMs: number;
  burst: number;
  flows: number;
  bigFlows: number;
  routes: number;
  burnCycles: number;
  ovs: boolean;
  kernel: boolean;
  phaseB: boolean;
  vhost: boolean;
  /** the vhost-user part's virtqueues (dpdk-bench.ts --ring; its default when unset) */
  vhostRing?: VirtioRing;
  aclBuild: number[];
  out: string;
  /** extra EAL arguments for the Flowline NF */
  eal?: string[];
  /** only these cases (and the testpmd floors) */
  cases?: Set<string>;
  /** another build of the addon: every Flowline case runs with it too, in the same rounds */
  abAddon?: string;
  /** phase A's rounds are split over this many runs of fresh Flowline and testpmd io processes
   * (default: one a round) */
  sessions: number;
}

function parseArgs(argv: string[]): Options {
  const o: Options = {
    rounds: 5,
    warmupMs: 300,
    windowMs: 1000,
    burst: 32,
    flows: 65_536,
    bigFlows: 1_048_576,
    routes: 1_000_000,
    burnCycles: 100,
    ovs: true,
    kernel: true,
    phaseB: true,
    vhost: true,
    aclBuild: [1000, 10_000, 100_000],
    out: path.join(__dirname, '..', '..', 'results'),
    sessions: 0, // one a round unless --sessions says
  };
  for (let i = 0; i < argv.length; i++) {
    const [k, v] = [argv[i] ?? '', argv[i + 1]];
    const num = (): number => positiveInt(k, argv[++i]);
    if (windowFlag(o, k, v)) i++;
    else if (k === '--flows') o.flows = num();
    else if (k === '--big-flows') o.bigFlows = num();
    else if (k === '--routes') o.routes = num();
    else if (k === '--burn-cycles') o.burnCycles = num();
    else if (k === '--no-ovs') o.ovs = false;
    else if (k === '--no-kernel') o.kernel = false;
    else if (k === '--no-phase-b') o.phaseB = false;
    else if (k === '--no-vhost') o.vhost = false;
    else if (k === '--sessions') o.sessions = num();
    else if (k === '--vhost-ring') {
      if (v !== 'packed' && v !== 'split') throw new Error('--vhost-ring: packed or split');
      o.vhostRing = v;
      i++;
    } else if (k === '--eal') {
      o.eal = (v ?? '').split(' ').filter(Boolean);
      i++;
    } else if (k === '--cases') {
      o.cases = new Set((v ?? '').split(',').filter(Boolean));
      i++;
    } else if (k === '--acl-build') {
      o.aclBuild = (v ?? '').split(',').filter(Boolean).map(Number);
      i++;
    } else if (k === '--out') {
      o.out = v ?? o.out;
      i++;
    } else if (k === '--ab-addon') {
      if (!v || !existsSync(v)) throw new Error(`--ab-addon: no addon file ${v ?? ''}`);
      o.abAddon = path.resolve(v);
      i++;
    } else
      throw new Error(
        `unknown option ${k} (--rounds --warmup-ms --window-ms --burst --flows --big-flows ` +
          `--routes --burn-cycles --no-ovs --no-kernel --no-phase-b --no-vhost --vhost-ring packed|split --acl-build 1000,10000 --out DIR --ab-addon FILE --sessions N)`,
      );
  }
  // Each round in fresh processes by default: a process's speed is a draw for its life, and a
  // restart costs a few seconds. More sessions than rounds would leave some without a round.
  o.sessions = Math.min(o.sessions || o.rounds, o.rounds);
  return o;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const log = (s: string): void => void process.stderr.write(`${s}\n`);
const NF_ENTRY = existsSync(path.join(__dirname, 'flowline-nf.ts'))
  ? ['--import', 'tsx', path.join(__dirname, 'flowline-nf.ts')]
  : [path.join(__dirname, 'flowline-nf.js')];

/** One measured window of a case. */
interface Sample {
  mpps: number;
  /** Flowline only: busy TSC cycles per packet, whole and by part */
  busy?: number;
  rx?: number;
  parse?: number;
  tx?: number;
  stages?: number[];
  /** OVS only: upcalls during its window */
  upcalls?: number;
}

interface CaseDef {
  id: string;
  label: string;
  phase: 'A' | 'B';
  peer: 'flowline' | 'testpmd' | 'ovs' | 'kernel';
  /** the trace it replays */
  trace: string;
  /** the floor it is compared with (a testpmd case), and the OVS case (Flowline vs OVS) */
  floor?: string;
  ovs?: string;
  /** the Linux kernel case it is compared with */
  kernel?: string;
  /** targets: ratio to the floor, ratio to OVS, Mpps */
  target?: { floor?: number; ovs?: number; mpps?: number };
  nf?: NfCase;
  /** OVS: the table-0 actions for the trace port */
  ovsActions?: string;
  /** the warm-up before this case's windows, when it needs longer than the run's (--warmup-ms) */
  warmupMs?: number;
  /** the Linux kernel: the nftables ruleset (none: plain forwarding) */
  nft?: string;
  /** Flowline: runs in the second NF process, the one with --ab-addon's build */
  addonB?: boolean;
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const t0 = Date.now();
  const dir = mkdtempSync('/tmp/flowline-nfbound-');
  const tag = `flnb${process.pid}`;
  const cleanups: (() => Promise<void>)[] = [];
  let interrupted = false;
  const onSignal = (): void => {
    interrupted = true;
    vhostChild?.kill('SIGTERM');
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    // ---- tables and traces ----
    log(`generating tables and traces in ${dir}`);
    const acl1k = benchRules(1000);
    const acl10k = benchRules(10_000);
    const traces = new Map<string, { file: string; flows: Flows }>();
    const trace = (id: string, flows: Flows): void => {
      const file = path.join(dir, `${id}.pcap`);
      writePcap(file, flows);
      traces.set(id, { file, flows });
    };
    const traceOf = (id: string): { file: string; flows: Flows } =>
      must(traces.get(id), `trace ${id}`);
    trace('acl1k', aclFlows(acl1k, o.flows));
    trace('acl10k', aclFlows(acl10k, o.flows, 0xf11));
    const r6 = benchRoutes6(o.flows, 0);
    trace('lpm6', r6.flows);
    const json = (name: string, v: unknown): string => {
      const f = path.join(dir, name);
      writeFileSync(f, JSON.stringify(v));
      return f;
    };
    const acl1kFile = json('acl1k.json', toAclRules(acl1k));
    const acl10kFile = json('acl10k.json', toAclRules(acl10k));
    const lpm6File = json('lpm6.json', r6.table);
    let r4: ReturnType<typeof benchRoutes4> | undefined;
    let lpm4File = '';
    if (o.phaseB) {
      trace('ct1m', aclFlows(acl1k, o.bigFlows, 0xf12));
      r4 = benchRoutes4(o.routes, 0);
      trace('lpm4', r4.flows);
      lpm4File = json('lpm4.json', r4.table);
    }
    log(`  done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    const fmt = (n: number): string => n.toLocaleString('en-US');
    const cases: CaseDef[] = [
      {
        id: 'testpmd',
        label: 'testpmd io (64k trace)',
        phase: 'A',
        peer: 'testpmd',
        trace: 'acl1k',
      },
      {
        id: 'l2fwd',
        label: 'Flowline l2fwd',
        phase: 'A',
        peer: 'flowline',
        trace: 'acl1k',
        floor: 'testpmd',
        target: { floor: 0.95 },
        nf: { id: 'l2fwd', kind: 'l2fwd', trace: 'acl1k' },
      },
      {
        // the control's base: the same pipeline as 'burn' with a stage that burns nothing (a
        // plain l2fwd takes a shorter path, so it is no base for the control)
        id: 'burn0',
        label: 'Flowline l2fwd + burn 0 cycles (control base)',
        phase: 'A',
        peer: 'flowline',
        trace: 'acl1k',
        floor: 'testpmd',
        nf: { id: 'burn0', kind: 'burn', trace: 'acl1k', cycles: 0 },
      },
      {
        id: 'burn',
        label: `Flowline l2fwd + burn ${o.burnCycles} cycles (control)`,
        phase: 'A',
        peer: 'flowline',
        trace: 'acl1k',
        floor: 'testpmd',
        nf: { id: 'burn', kind: 'burn', trace: 'acl1k', cycles: o.burnCycles },
      },
      {
        id: 'acl1k',
        label: 'Flowline ACL 1,000 rules',
        phase: 'A',
        peer: 'flowline',
        trace: 'acl1k',
        floor: 'testpmd',
        ovs: 'ovs-acl1k',
        kernel: 'kernel-acl1k',
        target: { ovs: 5 },
        nf: { id: 'acl1k', kind: 'acl', trace: 'acl1k', rulesFile: acl1kFile },
      },
      {
        id: 'acl10k',
        label: 'Flowline ACL 10,000 rules',
        phase: 'A',
        peer: 'flowline',
        trace: 'acl10k',
        floor: 'testpmd',
        ovs: 'ovs-acl10k',
        target: { ovs: 4 },
        nf: { id: 'acl10k', kind: 'acl', trace: 'acl10k', rulesFile: acl10kFile },
      },
      {
        id: 'ct64k',
        label: `Flowline conntrack + ACL 1k, ${fmt(o.flows)} flows`,
        phase: 'A',
        peer: 'flowline',
        trace: 'acl1k',
        floor: 'testpmd',
        ovs: 'ovs-ct',
        kernel: 'kernel-ct',
        target: { ovs: 8, mpps: 15 },
        nf: { id: 'ct64k', kind: 'ct', trace: 'acl1k', rulesFile: acl1kFile, capacity: 262_144 },
      },
      {
        id: 'js',
        label: 'pure-JS forwarder (parse, MACs, TTL)',
        phase: 'A',
        peer: 'flowline',
        trace: 'acl1k',
        floor: 'testpmd',
        target: { floor: 0.25 },
        nf: { id: 'js', kind: 'js', trace: 'acl1k' },
      },
      {
        id: 'lpm6',
        label: `Flowline LPM IPv6, ${fmt(r6.table.routes.length)} routes`,
        phase: 'A',
        peer: 'flowline',
        trace: 'lpm6',
        floor: 'testpmd',
        nf: { id: 'lpm6', kind: 'lpm', trace: 'lpm6', tableFile: lpm6File },
      },
    ];
    if (o.ovs)
      cases.push(
        {
          id: 'ovs-acl1k',
          label: 'OVS-DPDK ACL 1,000 rules (OpenFlow)',
          phase: 'A',
          peer: 'ovs',
          trace: 'acl1k',
          floor: 'testpmd',
          ovsActions: 'resubmit(,1)',
        },
        {
          id: 'ovs-acl10k',
          label: 'OVS-DPDK ACL 10,000 rules (OpenFlow)',
          phase: 'A',
          peer: 'ovs',
          trace: 'acl10k',
          floor: 'testpmd',
          ovsActions: 'resubmit(,2)',
        },
        {
          id: 'ovs-ct',
          label: 'OVS-DPDK ct() + ACL 1,000 rules',
          phase: 'A',
          peer: 'ovs',
          trace: 'acl1k',
          floor: 'testpmd',
          ovsActions: 'ct(table=3)',
          // OVS's userspace conntrack forgets a flow that has sent only SYNs 30 s after its last
          // packet (its default tcp_syn_sent timeout), and a round takes longer than that: with
          // the common 300 ms warm-up each window opened half the trace's flows again and ran at
          // 0.16-0.83 of the warm-up's rate. Several laps of the trace first, even at OVS's rate
          // of opening flows, so that its windows measure its steady state, as Flowline's do.
          warmupMs: 3000,
        },
      );
    if (o.kernel)
      cases.push(
        {
          id: 'kernel-fwd',
          label: 'Linux kernel IPv4 forward, no rules (af_packet source)',
          phase: 'A',
          peer: 'kernel',
          trace: 'acl1k',
          floor: 'testpmd',
        },
        {
          id: 'kernel-acl1k',
          label: 'Linux kernel nftables ACL 1,000 rules (verdict map)',
          phase: 'A',
          peer: 'kernel',
          trace: 'acl1k',
          floor: 'testpmd',
          nft: nftAcl(acl1k, { stateful: false }),
        },
        {
          id: 'kernel-ct',
          label: 'Linux kernel conntrack + nftables ACL 1,000 rules',
          phase: 'A',
          peer: 'kernel',
          trace: 'acl1k',
          floor: 'testpmd',
          nft: nftAcl(acl1k, { stateful: true }),
        },
      );
    if (o.phaseB && r4)
      cases.push(
        {
          id: 'testpmd-1m',
          label: 'testpmd io (1M trace)',
          phase: 'B',
          peer: 'testpmd',
          trace: 'ct1m',
        },
        {
          id: 'ct1m',
          label: `Flowline conntrack + ACL 1k, ${fmt(o.bigFlows)} flows`,
          phase: 'B',
          peer: 'flowline',
          trace: 'ct1m',
          floor: 'testpmd-1m',
          target: { mpps: 8 },
          nf: { id: 'ct1m', kind: 'ct', trace: 'ct1m', rulesFile: acl1kFile, capacity: 1 << 22 },
        },
        {
          id: 'lpm4',
          label: `Flowline LPM IPv4, ${fmt(r4.table.routes.length)} routes, 1 flow each`,
          phase: 'B',
          peer: 'flowline',
          trace: 'lpm4',
          floor: 'testpmd-1m',
          nf: { id: 'lpm4', kind: 'lpm', trace: 'lpm4', tableFile: lpm4File },
        },
      );

    if (o.cases) {
      const keep = o.cases;
      const all = cases.splice(0);
      cases.push(...all.filter((c) => keep.has(c.id) || c.peer === 'testpmd'));
    }
    // --ab-addon: each Flowline case again with the other build, a case of its own in the same
    // rounds (a second NF process: one addon per process), so that two builds are compared on
    // the same machine phase rather than across runs
    if (o.abAddon)
      for (const [c, nf] of cases.flatMap((x) =>
        x.peer === 'flowline' && x.nf ? [[x, x.nf] as const] : [],
      )) {
        const id = `${c.id}-b`;
        cases.push({
          ...c,
          id,
          label: `${c.label} [B: ${path.basename(path.dirname(o.abAddon))}/${path.basename(o.abAddon)}]`,
          nf: { ...nf, id },
          addonB: true,
        });
      }
    const samples = new Map<string, Sample[]>(cases.map((c) => [c.id, []]));
    const windows = new Map<string, Window[]>(cases.map((c) => [c.id, []]));
    const checks: Record<string, Record<string, unknown>> = {};
    let tscHz = 0;
    // each Flowline NF process's measure of a cache line's round trip between its two lcores
    const roundTrips: number[] = [];
    const phaseErrors: string[] = [];
    const ovsInfo: Record<string, Record<string, unknown>> = {};
    let aclBuild: { rules: number; buildMs: number; heapBytes: number }[] = [];

    for (const phase of ['A', 'B'] as const) {
      const pc = cases.filter((c) => c.phase === phase);
      if (pc.every((c) => c.peer === 'testpmd') || interrupted) continue;
      try {
        log(`phase ${phase}: starting ${pc.map((c) => c.id).join(', ')}`);
        const usedTraces = [...new Set(pc.filter((c) => c.nf).map((c) => c.trace))];
        const plan: NfPlan = {
          prefix: `${tag}-nf${phase}`,
          burst: o.burst,
          traces: usedTraces.map((id) => ({
            id,
            file: traceOf(id).file,
            length: traceOf(id).flows.length,
          })),
          cases: pc.flatMap((c) => (c.nf && !c.addonB ? [c.nf] : [])),
          ...(o.eal ? { eal: o.eal } : {}),
        };
        // Phase A's rounds run in sessions, each with a fresh Flowline NF (and B build) and testpmd
        // io: a process's speed is a draw for its life (in one full run the Flowline process made
        // l2fwd at 0.76-0.88x io in every round), and with one process that draw stood for every
        // case.
        // Phase B builds a 1M-route table and a 1M-flow trace per process: one session.
        const sessions = phase === 'A' ? o.sessions : 1;
        const tpCase = must(
          pc.find((c) => c.peer === 'testpmd'),
          `testpmd io case of phase ${phase}`,
        );
        // the current session's processes
        const cur: { nf?: FlowlineNf; nfB?: FlowlineNf; tp?: TestpmdIo } = {};
        const openSession = async (k: number): Promise<void> => {
          const suffix = sessions > 1 ? `s${k}` : '';
          const planA = { ...plan, prefix: `${plan.prefix}${suffix}` };
          cur.nf = await FlowlineNf.start(
            NF_ENTRY,
            json(`plan-${phase}${suffix}.json`, planA),
            600_000,
          );
          if (o.abAddon && pc.some((c) => c.addonB)) {
            const planB: NfPlan = {
              ...plan,
              prefix: `${tag}-nf${phase}b${suffix}`,
              cases: pc.filter((c) => c.addonB).map((c) => must(c.nf, `NF of case ${c.id}`)),
            };
            cur.nfB = await FlowlineNf.start(
              NF_ENTRY,
              json(`plan-${phase}b${suffix}.json`, planB),
              600_000,
              { FLOWLINE_DPDK_ADDON: o.abAddon },
            );
          }
          tscHz = cur.nf.tscHz || tscHz;
          if (cur.nf.lcoreRoundTripCycles !== undefined)
            roundTrips.push(cur.nf.lcoreRoundTripCycles);
          cur.tp = await TestpmdIo.start({
            prefix: `${tag}-tp${phase}${suffix}`,
            pcap: traceOf(tpCase.trace).file,
            length: traceOf(tpCase.trace).flows.length,
            burst: o.burst,
          });
        };
        const windowsOf = (c: CaseDef): Window[] =>
          must(windows.get(c.id), `windows of case ${c.id}`);
        // the session's Flowline counters, checked against its own windows, then its processes
        // stopped (cleanups stop whichever are current when a phase fails)
        const sessionChecks = new Map<string, Record<string, unknown>[]>();
        const closeSession = async (stop: boolean): Promise<void> => {
          for (const c of pc.filter((x) => x.peer === 'flowline')) {
            const rep = (await nfOf(c).command('report', c.id)).report as Record<string, unknown>;
            const list = sessionChecks.get(c.id) ?? [];
            list.push(
              checkFlowline(
                must(c.nf, `NF of case ${c.id}`),
                rep,
                windowsOf(c),
                traceOf(c.trace).flows,
                { acl1k, acl10k },
              ),
            );
            sessionChecks.set(c.id, list);
            windows.set(c.id, []);
          }
          if (!stop) return;
          await stopCurrent();
          delete cur.nf;
          delete cur.nfB;
          delete cur.tp;
        };
        // the current processes, each stopped even when another's stop fails (stop is
        // idempotent: the cleanup may stop what closeSession did)
        const stopCurrent = async (): Promise<void> => {
          const r = await Promise.allSettled([cur.nf?.stop(), cur.nfB?.stop(), cur.tp?.stop()]);
          const failed = r.find((x): x is PromiseRejectedResult => x.status === 'rejected');
          if (failed) throw failed.reason;
        };
        cleanups.push(stopCurrent);
        await openSession(0);
        const running = <T>(x: T | undefined, what: string): T => {
          if (x === undefined) throw new Error(`${what} is not running`);
          return x;
        };
        const nfOf = (c: CaseDef): FlowlineNf =>
          running(c.addonB ? cur.nfB : cur.nf, c.addonB ? 'the B build NF' : 'the Flowline NF');
        // one OVS-DPDK per trace (each stopped with SIGSTOP while others are measured)
        const ovsOf = new Map<string, OvsPeer>();
        for (const name of [...new Set(pc.filter((c) => c.peer === 'ovs').map((c) => c.trace))]) {
          log(`  starting OVS-DPDK for the ${name} trace`);
          const ovs = await OvsPeer.start({
            runDir: path.join(dir, `ovs-${name}`),
            prefix: `${tag}-ovs${name}`,
            trace: { name, file: traceOf(name).file },
            // OVS asks for 262,144 mbufs (MTU 1500) and halves that until it fits: 131,072 of
            // them hold the trace (the net_pcap replay keeps it in the pool) with room to spare
            socketMemMb: 512,
          });
          cleanups.push(() => ovs.stop());
          const out = `output:${must(ovs.ofport.get('out'), `out port of OVS ${name}`)}`;
          const ofs = [
            'table=0,priority=0 actions=drop',
            ...(name === 'acl1k'
              ? [
                  ...openflowAcl(acl1k, { table: 1, permit: out, deny: 'drop', default: 'drop' }),
                  // a flow the ACL opened skips it: replies and established flows (+est), and the
                  // later packets of a committed flow that has seen no reply yet (OVS keeps a
                  // one-way UDP flow +new, as Linux does), marked at commit
                  `table=3,priority=65000,ct_state=+trk+est,ip actions=${out}`,
                  `table=3,priority=64999,ct_state=+trk,ct_mark=0x1,ip actions=${out}`,
                  ...openflowAcl(acl1k, {
                    table: 3,
                    match: 'ct_state=+trk+new,',
                    permit: `ct(commit,exec(set_field:0x1->ct_mark)),${out}`,
                    deny: 'drop',
                    default: 'drop',
                  }),
                ]
              : openflowAcl(acl10k, { table: 2, permit: out, deny: 'drop', default: 'drop' })),
          ];
          log(`  installing ${ofs.length} OpenFlow flows`);
          await ovs.flows(ofs);
          ovs.pause();
          ovsOf.set(name, ovs);
        }
        // the Linux kernel: a namespace per case, each fed by its own testpmd
        const kernelOf = new Map<string, KernelPeer>();
        for (const c of pc.filter((x) => x.peer === 'kernel')) {
          log(`  starting the Linux kernel peer ${c.id}`);
          const k = await KernelPeer.start({
            name: c.id.replace('kernel-', '').slice(0, 6),
            prefix: `${tag}-k${c.id}`,
            pcap: traceOf(c.trace).file,
            length: traceOf(c.trace).flows.length,
            burst: o.burst,
            ...(c.nft ? { nft: c.nft } : {}),
          });
          cleanups.push(() => k.stop());
          kernelOf.set(c.id, k);
        }
        const kernelFor = (c: CaseDef): KernelPeer =>
          must(kernelOf.get(c.id), `kernel peer of case ${c.id}`);
        const ovsFor = (c: CaseDef): OvsPeer => must(ovsOf.get(c.trace), `OVS of trace ${c.trace}`);
        const actionsFor = (c: CaseDef): string =>
          must(c.ovsActions, `OpenFlow actions of case ${c.id}`);
        if (phase === 'A' && o.aclBuild.length) {
          for (const n of o.aclBuild) {
            log(`  rte_acl build: ${fmt(n)} rules`);
            const r = await running(cur.nf, 'the Flowline NF').command(
              'aclbuild',
              String(n),
              600_000,
            );
            aclBuild.push({ rules: n, buildMs: Number(r.buildMs), heapBytes: Number(r.heapBytes) });
          }
        }

        const measure = async (c: CaseDef): Promise<Sample> => {
          if (c.peer === 'flowline') {
            const { a, b, window: w } = await nfOf(c).measure(c.id, o.warmupMs, o.windowMs);
            windowsOf(c).push(w);
            const pkts = b.rx - a.rx;
            const sampled = b.sampled - a.sampled;
            const per = (x: number, y: number): number => (sampled > 0 ? (y - x) / sampled : 0);
            return {
              mpps: (b.portRx - a.portRx) / (b.t - a.t),
              ...(pkts > 0
                ? {
                    busy: (b.busy - a.busy) / pkts,
                    rx: per(a.rxCycles, b.rxCycles),
                    parse: per(a.parse, b.parse),
                    tx: per(a.tx, b.tx),
                    stages: b.stages.map((s, i) =>
                      per(must(a.stages[i], `stage ${i} cycles of case ${c.id}`), s),
                    ),
                  }
                : {}),
            };
          }
          if (c.peer === 'testpmd')
            return { mpps: await running(cur.tp, 'testpmd io').measure(o.warmupMs, o.windowMs) };
          if (c.peer === 'kernel') {
            const k = kernelFor(c);
            await k.startFwd();
            await sleep(o.warmupMs);
            const a = await k.sample();
            await sleep(o.windowMs);
            const b = await k.sample();
            await k.stopFwd();
            return { mpps: (b.rx - a.rx) / (b.t - a.t) };
          }
          const ovs = ovsFor(c);
          ovs.resume();
          try {
            await ovs.select(c.trace, actionsFor(c));
            await sleep(Math.max(o.warmupMs, c.warmupMs ?? 0));
            const { mpps, upcalls } = await ovs.window(c.trace, o.windowMs);
            return { mpps, upcalls };
          } finally {
            ovs.pause();
          }
        };

        // OVS installs a megaflow per new flow mask on the slow path (upcalls): run each OVS case
        // until its rate settles before the rounds, so that rounds measure the steady state
        for (const c of pc.filter((x) => x.peer === 'ovs')) {
          const ovs = ovsFor(c);
          ovs.resume();
          await ovs.select(c.trace, actionsFor(c));
          // warm until a whole second passes without an upcall (every megaflow is in place and
          // OVS's dynamic flow limit has grown to hold them), at most 90 s
          const end = Date.now() + 90_000;
          let w = await ovs.window(c.trace, 1000);
          while (w.upcalls !== 0 && Date.now() <= end) w = await ovs.window(c.trace, 1000);
          log(
            `  ${c.id} warmed up: ${w.mpps.toFixed(2)} Mpps, ${w.upcalls} upcalls in the last second`,
          );
          const sub = /avg. subtable lookups per megaflow hit: ([\d.]+)/.exec(w.pmdStats)?.[1];
          ovsInfo[c.id] = {
            subtableLookupsPerMegaflowHit: Number(sub ?? NaN),
            upcallsLastSecondOfWarmup: w.upcalls,
            warmupMpps: w.mpps,
          };
          ovs.pause();
        }

        for (const ovs of ovsOf.values()) {
          ovs.resume();
          await ovs.revalidateEveryMs(3_600_000);
          await sleep(100);
          ovs.pause();
        }

        for (let r = 0; r < o.rounds && !interrupted; r++) {
          const k = sessionOfRound(r, o.rounds, sessions);
          if (r > 0 && k !== sessionOfRound(r - 1, o.rounds, sessions)) {
            log(`  session ${k + 1}/${sessions}: fresh Flowline and testpmd io processes`);
            await closeSession(true);
            await openSession(k);
          }
          // rotate the order each round so that a drifting machine favours no case
          const shift = r % pc.length;
          const order = [...pc.slice(shift), ...pc.slice(0, shift)];
          const line: string[] = [];
          for (const c of order) {
            const s = await measure(c);
            must(samples.get(c.id), `samples of case ${c.id}`).push(s);
            line.push(`${c.id} ${s.mpps.toFixed(2)}`);
          }
          log(`  round ${r + 1}/${o.rounds}: ${line.join(' | ')}`);
        }

        // ---- what the counters must say ----
        // OVS credits OpenFlow rules from its megaflows on revalidation (every 500 ms)
        for (const ovs of ovsOf.values()) {
          ovs.resume();
          await ovs.revalidateEveryMs(500);
        }
        if (ovsOf.size) await sleep(3000);
        await closeSession(false);
        for (const c of pc) {
          if (c.peer === 'flowline') {
            checks[c.id] = mergeSessionChecks(sessionChecks.get(c.id) ?? []);
          } else if (c.peer === 'kernel') {
            const k = kernelFor(c);
            const totals = await k.sample();
            checks[c.id] = {
              received: totals.rx,
              forwarded: totals.forwarded,
              droppedOnReceive: totals.rxDropped,
              ...(c.nft ? nftChecks(await k.ruleset(), acl1k, traceOf(c.trace).flows) : {}),
            };
          } else if (c.peer === 'ovs') {
            const ovs = ovsFor(c);
            const flows = traceOf(c.trace).flows;
            // upcalls in the measured windows: the fast path or not
            const windows = must(samples.get(c.id), `samples of case ${c.id}`);
            const steadiness = ovsSteadiness(
              windows.map((x) => x.upcalls ?? 0),
              windows.map((x) => x.mpps),
              Number(ovsInfo[c.id]?.warmupMpps ?? 0),
            );
            ovsInfo[c.id] = { ...ovsInfo[c.id], ...steadiness };
            if (c.id === 'ovs-ct') {
              const byPrio = await ovs.hitsByPriority(3);
              const total = [...byPrio.values()].reduce((x, y) => x + y, 0);
              const tracked = (byPrio.get(65_000) ?? 0) + (byPrio.get(64_999) ?? 0);
              checks[c.id] = {
                ...ovsInfo[c.id],
                established: tracked,
                throughAcl: total - tracked,
              };
            } else {
              // OVS's windows cannot be cut exactly (it runs on between samples until stopped):
              // every rule must have been hit, in the shares the trace has; OVS credits rules
              // from its revalidators, and not for packets whose upcall failed: reported, not
              // counted as a failure
              const rules = c.id === 'ovs-acl1k' ? acl1k : acl10k;
              const byPrio = await ovs.hitsByPriority(c.id === 'ovs-acl1k' ? 1 : 2);
              const actual = rules.map((_, i) => byPrio.get(60_000 - i) ?? 0);
              actual.push(byPrio.get(0) ?? 0);
              const lap = expectedHits(flows.expect, rules.length + 1, [
                { from: 0, count: flows.length },
              ]);
              checks[c.id] = { ...ovsInfo[c.id], shares: checkShares(lap, actual) };
            }
          }
        }
        for (const ovs of ovsOf.values()) ovs.pause();
        log(`  phase ${phase} done at ${((Date.now() - t0) / 1000).toFixed(0)} s`);
      } catch (e) {
        // a phase that fails is reported; the other phase's figures still are
        log(`phase ${phase} FAILED: ${(e as Error).stack ?? String(e)}`);
        phaseErrors.push(`phase ${phase}: ${(e as Error).message.split('\n')[0]}`);
      } finally {
        for (const f of cleanups.splice(0).reverse())
          await f().catch((e: unknown) => log(String(e)));
      }
    }

    // ---- the vhost-user topology ----
    let vhost: unknown;
    if (o.vhost && !interrupted) {
      log('vhost-user topology (src/dpdk-bench.ts --nf-port vhost)');
      // at least VHOST_ROUNDS counted rounds (up to twice that tried, when the generator sits in
      // its slow phase past the phase gate's budget): 4-6 left the ACL case's median 0.01-0.02
      // either side of its target from run to run
      vhost = await runVhost(
        Math.max(VHOST_ROUNDS, o.rounds),
        Math.max(VHOST_MIN_BUDGET_MS, RUN_BUDGET_MS - (Date.now() - t0)),
        o.vhostRing,
      );
    }

    const report = summarize(o, cases, samples, checks, tscHz, aclBuild, vhost, t0);
    report.lcoreRoundTrip = lcoreRoundTrip(roundTrips, tscHz);
    report.failures.push(...phaseErrors);
    mkdirSync(o.out, { recursive: true });
    const { table, svg } = renderReport(report);
    writeFileSync(path.join(o.out, 'nfbound.json'), `${JSON.stringify(report, null, 1)}\n`);
    writeFileSync(path.join(o.out, 'nfbound.svg'), svg);
    writeFileSync(path.join(o.out, 'nfbound.txt'), `${table}\n`);
    process.stdout.write(`\n${table}\n\n${JSON.stringify(report)}\n`);
    log(`wrote ${path.join(o.out, 'nfbound.{txt,json,svg}')}`);
    aclBuild = [];
    if (report.failures.length) process.exitCode = 1;
  } finally {
    for (const f of cleanups.splice(0).reverse()) await f().catch((e: unknown) => log(String(e)));
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The kernel's rule counters from `nft -j list ruleset`: the verdict map's elements (listed in
 * key order: each is known by its destination prefix, which only its rule has), the broad rules
 * in chain order, the default; reported like OVS's (every rule hit, shares against the trace's),
 * since the kernel's windows cannot be cut exactly either. Stateful: the packets that skipped
 * the ACL (`ct mark 1`).
 */
function nftChecks(
  ruleset: unknown,
  rules: readonly BenchRule[],
  flows: Flows,
): Record<string, unknown> {
  type Counter = { counter?: { packets: number } };
  type Rule = { chain: string; expr: Record<string, unknown>[] };
  const items = (ruleset as { nftables: Record<string, unknown>[] }).nftables;
  const map = items.find((x) => x.map)?.map as
    { elem?: [{ elem: { val: { concat: unknown[] } } & Counter }, unknown][] } | undefined;
  const byDst = new Map<string, number>();
  rules.forEach((x, i) => byDst.set(`${ip4(x.dst)}/${x.dstLen}`, i));
  const actual: number[] = new Array<number>(rules.length + 1).fill(0);
  for (const [e] of map?.elem ?? []) {
    const d = e.elem.val.concat[2] as string | { prefix: { addr: string; len: number } };
    const key = typeof d === 'string' ? `${d}/32` : `${d.prefix.addr}/${d.prefix.len}`;
    const i = byDst.get(key);
    if (i !== undefined) actual[i] = e.elem.counter?.packets ?? 0;
  }
  const chain = items
    .map((x) => x.rule as Rule | undefined)
    .filter((r): r is Rule => r?.chain === 'acl_forward');
  const counted = (r: { expr: Record<string, unknown>[] }): number =>
    (r.expr.find((e) => e.counter)?.counter as { packets: number } | undefined)?.packets ?? 0;
  const isCt = (r: { expr: Record<string, unknown>[] }): boolean =>
    JSON.stringify(r.expr).includes('"mark"');
  const aclRules = chain.filter((r) => !isCt(r) && r.expr.some((e) => e.counter));
  // the broad rules, then the default's counter drop
  aclRules.forEach((r, j) => (actual[rules.length - BROAD_RULES + j] = counted(r)));
  const established = chain.filter((r) => isCt(r)).reduce((a, r) => a + counted(r), 0);
  const lap = expectedHits(flows.expect, rules.length + 1, [{ from: 0, count: flows.length }]);
  // behind conntrack a permitted flow meets the ACL once and a denied one every time, so the
  // shares differ from the trace's by design: only whether every rule was reached is reported
  if (chain.some((r) => isCt(r)))
    return {
      rulesUnhit: actual.slice(0, rules.length).filter((n) => n === 0).length,
      established,
      throughAcl: actual.reduce((a, b) => a + b, 0),
    };
  return { shares: checkShares(lap, actual) };
}

/**
 * Hits in the shares one lap of the trace has: every rule the trace reaches was hit, and the
 * total variation distance between the two distributions is under 1%.
 */
function checkShares(lap: Float64Array, actual: number[]): Record<string, unknown> {
  const sa = actual.reduce((x, y) => x + y, 0);
  const se = lap.reduce((x, y) => x + y, 0);
  let missed = 0;
  let tv = 0;
  lap.forEach((e, i) => {
    if (e > 0 && !actual[i]) missed++;
    tv += Math.abs(e / se - (actual[i] ?? 0) / Math.max(1, sa));
  });
  return { ok: missed === 0 && tv / 2 < 0.01, packets: sa, rulesMissed: missed, distance: tv / 2 };
}

function checkFlowline(
  nf: NfCase,
  rep: Record<string, unknown>,
  ws: Window[],
  flows: Flows,
  t: { acl1k: BenchRule[]; acl10k: BenchRule[] },
): Record<string, unknown> {
  const processed = ws.reduce((x, w) => x + w.count, 0);
  const out: Record<string, unknown> = { processed };
  if (nf.kind === 'js') {
    const j = rep as { forwarded: number; dropped: number };
    out.lost = processed - j.forwarded;
    out.ok = j.forwarded === processed && j.dropped === 0;
    return out;
  }
  const counters = rep.counters as {
    rx: number;
    tx: number;
    drops: Record<string, number>;
    stages: { name: string; drops: Record<string, number>; punts: Record<string, number> }[];
  };
  const byRule =
    (counters.stages.find((s) => s.name === 'acl')?.drops.acl_deny ?? 0) +
    (counters.stages.find((s) => s.name === 'lpm')?.drops.no_route ?? 0);
  out.rx = counters.rx;
  out.tx = counters.tx;
  out.droppedByRules = byRule;
  out.lost = counters.rx - counters.tx - byRule;
  let hits: HitCheck | undefined;
  if (nf.kind === 'acl' || nf.kind === 'ct') {
    const rules = nf.rulesFile.endsWith('acl10k.json') ? t.acl10k : t.acl1k;
    const actual = rep.aclHits as number[];
    if (nf.kind === 'acl') {
      hits = checkHits(expectedHits(flows.expect, rules.length + 1, ws), actual);
    } else {
      const permits = [...rules.map((x) => x.action === 'permit'), false];
      const e = expectedCtAclHits(flows.expect, permits, ws);
      hits = checkHits(e.hits, actual);
      const ct = rep.conntrack as {
        created: number;
        evicted: number;
        hits: number;
        denied: number;
        deniedEvicted: number;
      };
      out.conntrack = ct;
      out.flowsExpected = e.flows;
      out.deniedFlowsExpected = e.deniedFlows;
      out.ctOk =
        ct.created === e.flows &&
        ct.evicted === 0 &&
        ct.denied === e.deniedFlows &&
        ct.deniedEvicted === 0;
    }
  } else if (nf.kind === 'lpm') {
    const actual = rep.routeHits as number[];
    hits = checkHits(expectedHits(flows.expect, actual.length, ws), actual);
  }
  if (hits) out.hits = hits;
  out.ok =
    counters.rx === processed &&
    (out.lost as number) === 0 &&
    (hits?.ok ?? true) &&
    (out.ctOk ?? true) === true;
  return out;
}

function summarize(
  o: Options,
  cases: CaseDef[],
  samples: Map<string, Sample[]>,
  checks: Record<string, Record<string, unknown>>,
  tscHz: number,
  aclBuild: { rules: number; buildMs: number; heapBytes: number }[],
  vhost: unknown,
  t0: number,
): Report {
  const results: CaseResult[] = [];
  const failures: string[] = [];
  const ratioTo = (id: string, other: string | undefined): number[] | undefined => {
    const b = other ? samples.get(other) : undefined;
    if (!b?.length) return undefined;
    const a = must(samples.get(id), `samples of case ${id}`);
    return a.map((s, i) => s.mpps / (b[i]?.mpps ?? NaN)).filter((x) => Number.isFinite(x));
  };
  for (const c of cases) {
    const s = must(samples.get(c.id), `samples of case ${c.id}`);
    const [first] = s;
    if (!first) continue;
    const mpps = median(s.map((x) => x.mpps));
    const med = (f: (x: Sample) => number | undefined): number | undefined => {
      const v = s.map(f).filter((x): x is number => x !== undefined);
      return v.length ? median(v) : undefined;
    };
    const busy = med((x) => x.busy);
    // a sample with busy cycles has every part of them (measure)
    const part = (f: (x: Sample) => number | undefined, what: string): number =>
      must(med(f), `${what} cycles of case ${c.id}`);
    const floorR = ratioTo(c.id, c.floor);
    const ovsR = ratioTo(c.id, c.ovs);
    const kernelR = ratioTo(c.id, c.kernel);
    const r: CaseResult = {
      id: c.id,
      label: c.label,
      phase: c.phase,
      peer: c.peer,
      mpps,
      mppsMin: Math.min(...s.map((x) => x.mpps)),
      mppsMax: Math.max(...s.map((x) => x.mpps)),
      cyclesPerPacket: tscHz ? tscHz / (mpps * 1e6) : 0,
      ...(busy !== undefined
        ? {
            busyCycles: {
              total: busy,
              source: part((x) => x.rx, 'rx'),
              parse: part((x) => x.parse, 'parse'),
              tx: part((x) => x.tx, 'tx'),
              stages: (first.stages ?? []).map((_, i) => part((x) => x.stages?.[i], `stage ${i}`)),
            },
          }
        : {}),
      ...(floorR?.length ? { floorRatio: median(floorR), floor: c.floor } : {}),
      ...(ovsR?.length ? { ovsRatio: median(ovsR), ovs: c.ovs } : {}),
      ...(kernelR?.length ? { kernelRatio: median(kernelR), kernel: c.kernel } : {}),
      ...(c.target ? { target: c.target } : {}),
      ...(checks[c.id] ? { check: checks[c.id] } : {}),
      samples: s.map((x) => x.mpps),
    };
    const met: string[] = [];
    if (c.target?.floor !== undefined)
      met.push(r.floorRatio !== undefined && r.floorRatio >= c.target.floor ? 'yes' : 'NO');
    if (c.target?.ovs !== undefined && r.ovsRatio !== undefined) {
      const j = judgeOvsRatio(r.ovsRatio, c.target.ovs, c.ovs ? checks[c.ovs] : undefined);
      if ('unsteady' in j) r.ovsUnsteady = j.unsteady;
      else met.push(j.met ? 'yes' : 'NO');
    }
    if (c.target?.mpps !== undefined) met.push(mpps >= c.target.mpps ? 'yes' : 'NO');
    r.met = met.length ? met.every((m) => m === 'yes') : undefined;
    const check = checks[c.id];
    if (check?.ok === false) failures.push(`${c.id}: counters do not match the trace`);
    if ((check?.hits as HitCheck | undefined)?.ok === false)
      failures.push(`${c.id}: per-rule/route hits do not match the trace`);
    results.push(r);
  }
  // the sensitivity control: base + burn must cost the burn's cycles more per packet
  const base = samples.get('burn0') ?? [];
  const burn = samples.get('burn') ?? [];
  let sensitivity: Report['sensitivity'];
  if (base.length && burn.length && tscHz) {
    const ratios = burn.map((b, i) => {
      const expected = withExtraCycles(must(base[i], `burn0 round ${i}`).mpps, o.burnCycles, tscHz);
      return b.mpps / expected;
    });
    const m = median(ratios);
    const burnStage = median(burn.map((b) => b.stages?.[0] ?? 0));
    const ok = m >= 0.85 && m <= 1.15;
    sensitivity = {
      burnCycles: o.burnCycles,
      measuredOverExpected: m,
      burnStageCyclesPerPacket: burnStage,
      discriminates: ok,
      note: ok
        ? `a ${o.burnCycles}-cycle stage shows up as the expected drop (median measured/expected ${m.toFixed(3)})`
        : `CANNOT DISCRIMINATE ${o.burnCycles} cycles per packet: measured/expected ${m.toFixed(3)} (outside 0.85..1.15: the case lost ${m < 0.85 ? 'more' : 'less'} than the stage's cycles)`,
    };
    if (!ok) failures.push(sensitivity.note);
  }
  // --ab-addon: each case against itself with the other build, the median of per-round ratios
  const abCompare = cases.flatMap((c) => {
    const b = samples.get(c.id);
    if (!c.addonB || !b?.length || !o.abAddon) return [];
    const aId = c.id.slice(0, -2);
    return [abComparison(aId, o.abAddon, samples.get(aId) ?? [], b)];
  });
  return {
    benchmark: 'flowline-nf-bound',
    date: new Date().toISOString(),
    seconds: Math.round((Date.now() - t0) / 1000),
    tscHz,
    cpu: cpuInfo(),
    frameBytes: { ipv4: 64, ipv6: 66 },
    rounds: o.rounds,
    sessions: o.sessions,
    windowMs: o.windowMs,
    burst: o.burst,
    flows: o.flows,
    bigFlows: o.bigFlows,
    results,
    sensitivity,
    aclBuild,
    vhost,
    failures,
    ...(abCompare.length ? { abCompare } : {}),
  };
}

/** Counted rounds the vhost-user part aims for: three per session of dpdk-bench.ts. */
const VHOST_ROUNDS = 9;
/** The most each of its sessions waits for the phase in which a round can count. */
const VHOST_GATE_BUDGET_MS = 20_000;
/** The whole run's wall time, less a margin for the report (issue 21: under 10 minutes). */
const RUN_BUDGET_MS = 570_000;
/** What the vhost part gets even when the NF-bound part ran long: a round per session. */
const VHOST_MIN_BUDGET_MS = 120_000;

/** The vhost-user topology's bench while it runs (a signal to this process stops it). */
let vhostChild: ChildProcess | undefined;

/** Runs the vhost-user topology bench as a child and returns its JSON line. */
async function runVhost(
  rounds: number,
  budgetMs: number,
  ring: VirtioRing | undefined,
): Promise<unknown> {
  const entry = existsSync(path.join(__dirname, '..', 'dpdk-bench.ts'))
    ? ['--import', 'tsx', path.join(__dirname, '..', 'dpdk-bench.ts')]
    : [path.join(__dirname, '..', 'dpdk-bench.js')];
  const child = spawn(
    process.execPath,
    [
      ...entry,
      ...['--nf-port', 'vhost', '--rounds', String(rounds), '--window-ms', '1000'],
      ...(ring ? ['--ring', ring] : []),
      // the gate's waiting and the time left of the run's 10 minutes bound it in a slow phase
      ...['--gate-budget-ms', String(VHOST_GATE_BUDGET_MS), '--budget-ms', String(budgetMs)],
      // it stops (and its NFs and testpmds with it) when this process is gone or stopped
      '--stop-with-stdin',
    ],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  vhostChild = child;
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  vhostChild = undefined;
  const line = out.split('\n').find((l) => l.startsWith('{'));
  if (code !== 0 || !line)
    return { error: `dpdk-bench.ts exited ${code}`, output: out.slice(-2000) };
  return JSON.parse(line) as unknown;
}

main().catch((e: unknown) => {
  log(`${(e as Error).stack ?? String(e)}`);
  process.exit(1);
});
