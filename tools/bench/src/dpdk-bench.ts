/**
 * Benchmark: the Flowline DPDK pipeline against dpdk-testpmd, in one run, over the same
 * vhost-user path with 64-byte frames (60 in the mbuf).
 *
 *   generator + sink: a FrameReplay process (replay-gen.ts: prebuilt frames sent without writing
 *   into them, what comes back freed unread) with a net_virtio_user server port  <-- vhost-user
 *   socket -->  the NF under test: a net_vhost client port (the NF does vhost's copies both
 *   ways) that sends everything back out. That is --nf-port vhost, which the npm script and the
 *   full run pass; the default, --nf-port virtio-user, swaps the two kinds of port.
 *
 * NFs: the reference is dpdk-testpmd in io-forward mode; the cases are the Flowline pipeline
 * with (a) plain forward, (b) a 1,000-rule ACL, (c) a 10,000-route LPM table and (d) the
 * pure-JS forwarder. The generator has one port per NF (the reference and every case's NF stay
 * up for the whole session) and sends on one of them at a time; the reference forwards only while
 * measured and the Flowline NFs back off when idle, so exactly two pollers run at a time (the
 * generator's lcore on core 0, the NF's on core 1). A round measures every case, in
 * an order that rotates from round to round, each back to back with the reference, alternating
 * which goes first: a slow phase of the machine (the AMD VM's generator flipped between about 7
 * and 15 Mpps for tens of seconds) falls on every case alike. A case's round counts when the
 * generator had headroom in both its windows (headroom.ts) and the reference and the case ran at
 * the machine's speed (REF_PHASE). Before a pair of windows, unless the pair before it showed that
 * phase, short probes of the reference wait (--gate-wait-ms at most, --gate-budget-ms in all
 * per session) for a phase in which the pair can count (fastPhase): on this VM the slow phase
 * takes most of the time, and without the gate three rounds in four were spent in it for
 * nothing. The gate only decides when a pair starts; which rounds count is decided afterwards,
 * as before. The rounds are split over --sessions, each with every process started afresh (a
 * process's speed is a draw for its life); a session's rounds go on until every case has its
 * share of --rounds that count there, or twice that were tried (three times ungated), or its
 * share of --budget-ms is spent (budget.ts; the full run passes what is left of its 10
 * minutes). The sensitivity control is taken over the rounds that count. The report gives
 * medians, the median of the per-round ratios and that median's confidence interval.
 * Throughput is what the generator receives back per second.
 *
 * Run (root, hugepages; other dataplane users must be stopped, hence the lock):
 *   npm run bench:dpdk:vhost -w tools/bench [-- --rounds 8 --sessions 3]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import * as path from 'node:path';

import { devargs } from '@flowline/dpdk';

import { positiveInt, windowFlag } from './args';
import { cpuInfo, formatCpu } from './machine';
import { must } from './must';
import { compare, formatInterval, formatTable } from './stats';
import { mayStartRound, sessionDeadline } from './dpdk/budget';
import { CONTROL_BURN_CYCLES, sensitivity } from './dpdk/control';
import {
  abRounds,
  countedRounds,
  fastPhase,
  GENERATOR_HEADROOM,
  headroom,
  phaseGateNote,
  REF_PHASE,
  type VhostRound,
  type WindowPart,
} from './dpdk/headroom';
import type { NfCase, NfPort, VirtioRing } from './dpdk/nf';
import { formatNfCycles, meanNfCycles, nfCyclesPerPacket, type NfCycles } from './dpdk/nf-cycles';
import { ReplayGenerator } from './dpdk/generator';
import { GENERATOR_FLOWS } from './dpdk/tables';
import { Testpmd, TestpmdError } from './dpdk/testpmd';

interface Options {
  rounds: number;
  warmupMs: number;
  windowMs: number;
  burst: number;
  cases: NfCase[];
  /**
   * The NF's port: 'virtio-user' (server=1, as Flowline pods have; the generator's net_vhost
   * side then does the copies) or 'vhost' (the NF is the net_vhost side and does the copies,
   * which makes the NF, not the generator, the bottleneck).
   */
  nfPort: NfPort;
  /**
   * The virtqueues of the vhost-user links: 'split' (the default, as in every earlier run) or
   * 'packed' (virtio 1.1). Tried for the generator's headroom on the AMD EPYC (Zen 5) VM of stop
   * 44: six alternating runs of (a) and (e), three each, gave no consistent gain; the headroom
   * moved with the host's phase under either.
   */
  ring: VirtioRing;
  /** another build of the addon: every case runs with it too, in the same rounds */
  abAddon?: string;
  /** runs of fresh processes the rounds are split over (runSession) */
  sessions: number;
  /** longest wait for the fast phase before a pair of windows (0: no gate; fastPhase) */
  gateWaitMs: number;
  /** the most a session waits for it in all; past that its pairs run ungated */
  gateBudgetMs: number;
  /** wall time for all sessions (0: none): a session starts no round it cannot end in its share */
  budgetMs: number;
  /** stop when stdin closes: how the NF-bound run starts this bench, which it must not outlive */
  stopWithStdin: boolean;
}

const TARGETS: Record<NfCase, number | undefined> = {
  forward: 0.95,
  acl: 0.85,
  lpm: 0.85,
  js: 0.25,
  burn: undefined,
};
const LABELS: Record<NfCase, string> = {
  forward: '(a) pipeline l2fwd',
  acl: '(b) pipeline ACL, 1,000 rules',
  lpm: '(c) pipeline LPM, 10,000 routes',
  js: '(d) pure-JS forwarder',
  burn: `(e) l2fwd + burn ${CONTROL_BURN_CYCLES} cycles (control)`,
};

function parseArgs(argv: string[]): Options {
  const o: Options = {
    rounds: 8,
    warmupMs: 500,
    windowMs: 1500,
    burst: 32,
    cases: ['forward', 'acl', 'lpm', 'js', 'burn'],
    nfPort: 'virtio-user',
    ring: 'split',
    sessions: 3,
    gateWaitMs: 20_000,
    gateBudgetMs: 30_000,
    budgetMs: 0,
    stopWithStdin: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const [k, v] = [argv[i] ?? '', argv[i + 1]];
    if (windowFlag(o, k, v)) i++;
    else if (k === '--nf-port') {
      if (v !== 'virtio-user' && v !== 'vhost') throw new Error('--nf-port: virtio-user or vhost');
      o.nfPort = v;
      i++;
    } else if (k === '--ring') {
      if (v !== 'packed' && v !== 'split') throw new Error('--ring: packed or split');
      o.ring = v;
      i++;
    } else if (k === '--sessions') {
      o.sessions = positiveInt(k, v);
      i++;
    } else if (k === '--gate-wait-ms' || k === '--gate-budget-ms' || k === '--budget-ms') {
      const ms = Number(v);
      if (!Number.isInteger(ms) || ms < 0)
        throw new Error(`${k}: a whole number of ms, 0 or more (got ${v ?? ''})`);
      if (k === '--gate-wait-ms') o.gateWaitMs = ms;
      else if (k === '--gate-budget-ms') o.gateBudgetMs = ms;
      else o.budgetMs = ms;
      i++;
    } else if (k === '--ab-addon') {
      if (!v || !existsSync(v)) throw new Error(`--ab-addon: no addon file ${v ?? ''}`);
      o.abAddon = path.resolve(v);
      i++;
    } else if (k === '--stop-with-stdin') {
      o.stopWithStdin = true;
    } else if (k === '--cases') {
      o.cases = (v ?? '').split(',') as NfCase[];
      if (o.cases.some((c) => !(c in TARGETS)))
        throw new Error(`--cases: one of ${Object.keys(TARGETS).join(',')}`);
      i++;
    } else
      throw new Error(
        `unknown option ${k} (--rounds, --warmup-ms, --window-ms, --burst, --cases, --nf-port, --ring, --sessions, --gate-wait-ms, --gate-budget-ms, --budget-ms, --ab-addon, --stop-with-stdin)`,
      );
  }
  return o;
}

// run from source (tsx) or from dist
const NF_ENTRY = existsSync(path.join(__dirname, 'dpdk', 'nf.ts'))
  ? ['--import', 'tsx', path.join(__dirname, 'dpdk', 'nf.ts')]
  : [path.join(__dirname, 'dpdk', 'nf.js')];

/** Parts of a window over which the generator's headroom is checked (headroom.ts). */
const WINDOW_PARTS = 4;
/** Rounds that count a case needs for its ratio to count. */
const MIN_COUNTED = 3;
/** A phase probe: the reference forwarding this long, then measured over this long. */
const PROBE_WARMUP_MS = 200;
const PROBE_WINDOW_MS = 400;
/** Pause between two probes that found the slow phase (the generator idle meanwhile). */
const PROBE_PAUSE_MS = 500;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The running sessions' directories (their vhost-user sockets). */
const scratchDirs = new Set<string>();

/**
 * Ends this process at once (a signal, or the parent that holds its stdin gone). What it started
 * goes with it: the NFs stop when their stdin closes (nf.ts) and the interactive testpmds quit at
 * theirs; the sockets' directories are removed here.
 */
function stopNow(why: string): never {
  process.stderr.write(`dpdk-bench: stopped (${why})\n`);
  for (const d of scratchDirs) rmSync(d, { recursive: true, force: true });
  process.exit(130);
}

/** A Flowline NF process for one case. */
interface FlowlineNf {
  /** Resolves with the NF's TSC rate (0 for the JS forwarder). */
  ready(timeoutMs: number): Promise<number>;
  stop(): Promise<string>;
}

/** One NF under test: a case, with this build of the addon or (addon) another. */
interface Entry {
  id: string;
  case: NfCase;
  label: string;
  addon?: string;
}

/** The cases, and with --ab-addon each again with that build (id `<case>@B`). */
function entriesOf(cases: readonly NfCase[], abAddon?: string): Entry[] {
  const a = cases.map((c) => ({ id: c, case: c, label: LABELS[c] }));
  if (!abAddon) return a;
  const b = cases.map((c) => ({
    id: `${c}@B`,
    case: c,
    label: `${LABELS[c]} [B: ${path.basename(path.dirname(abAddon))}/${path.basename(abAddon)}]`,
    addon: abAddon,
  }));
  return [...a, ...b];
}

function startFlowline(
  e: Entry,
  port: NfPort,
  ring: VirtioRing,
  socket: string,
  prefix: string,
  burst: number,
): FlowlineNf {
  const c = e.id;
  const child: ChildProcess = spawn(
    process.execPath,
    [...NF_ENTRY, JSON.stringify({ case: e.case, port, ring, socket, prefix, burst })],
    {
      // its stdin is its tie to this process: it stops when that closes (nf.ts)
      stdio: ['pipe', 'pipe', 'pipe'],
      ...(e.addon ? { env: { ...process.env, FLOWLINE_DPDK_ADDON: e.addon } } : {}),
    },
  );
  let out = '';
  child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr?.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return {
    async ready(ms) {
      const end = Date.now() + ms;
      for (;;) {
        const line = out.split('\n').find((l) => l.includes('"ready":true'));
        if (line !== undefined) return Number((JSON.parse(line) as { tscHz?: number }).tscHz ?? 0);
        if (child.exitCode !== null) throw new Error(`NF ${c} exited (${child.exitCode}):\n${out}`);
        if (Date.now() > end) throw new Error(`NF ${c} was not ready within ${ms} ms:\n${out}`);
        await sleep(20);
      }
    },
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await Promise.race([exited, sleep(10_000)]);
      if (child.exitCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
      if (child.exitCode !== 0) throw new Error(`NF ${c} failed (exit ${child.exitCode}):\n${out}`);
      return out.split('\n').find((l) => l.includes('"done"')) ?? '';
    },
  };
}

async function waitLink(gen: ReplayGenerator, port: number, what: string): Promise<void> {
  const end = Date.now() + 30_000;
  while (!(await gen.linkUp(port))) {
    if (Date.now() > end) throw new Error(`${what}: the vhost-user link did not come up`);
    await sleep(50);
  }
}

/** What every session adds to: each entry's rounds and NF cycles, and the TSC rate. */
interface RunState {
  /** rounds.get(id)[r]: entry id in round r of the run (every round measures every entry) */
  rounds: Map<string, VhostRound[]>;
  /** the NF's own cycles a packet per entry, one figure per session (its counters when stopped) */
  cycles: Map<string, NfCycles[]>;
  tscHz: number;
  /** rounds run so far, over every session (the case order rotates with it) */
  roundsRun: number;
  /** every reference rate measured so far, probes too (the phase gate's yardstick) */
  refs: number[];
  /** time spent waiting for the fast phase, and the probes taken */
  gateWaitedMs: number;
  probes: number;
  /** sessions that stopped trying rounds at their share of --budget-ms */
  sessionsCut: number;
}

/** Entry id's rounds (every entry has its list from the start: main). */
const roundsOf = (st: RunState, id: string): VhostRound[] =>
  must(st.rounds.get(id), `rounds of entry ${id}`);

/**
 * One session: a fresh generator, reference and NF per entry, and rounds until every entry has
 * `target` rounds that count in this session, or three times that were tried.
 */
async function runSession(
  o: Options,
  entries: readonly Entry[],
  session: number,
  target: number,
  st: RunState,
  deadline: number,
): Promise<void> {
  const dir = mkdtempSync('/tmp/flowline-bench-');
  scratchDirs.add(dir);
  const refSock = path.join(dir, 'ref.sock');
  // entry k's NF is the generator's port k + 1 (the reference is port 0)
  const nfSock = (k: number): string => path.join(dir, `nf${k}.sock`);
  const nfSocks = entries.map((_, k) => nfSock(k));
  const tag = `flb${process.pid}s${session}`;
  const nfVhost = o.nfPort === 'vhost';
  const virtioUser = (id: number, sock: string): string =>
    devargs.virtioUser({
      id,
      path: sock,
      server: true,
      queueSize: 1024,
      packed: o.ring === 'packed',
    });
  const vhostClient = (id: number, sock: string): string =>
    devargs.vhost({ id, iface: sock, client: true });
  // the side that listens is the virtio-user one (server=1); the net_vhost side reconnects
  const genPorts = [refSock, ...nfSocks].map((sock, port) =>
    nfVhost ? virtioUser(port, sock) : vhostClient(port, sock),
  );
  // a virtio-user server port waits in accept() while testpmd starts, and a Flowline NF with a
  // server port listens before the generator connects: either way the NFs start first
  const nfs = new Map<string, FlowlineNf>(
    entries.map((e, k) => [
      e.id,
      startFlowline(e, o.nfPort, o.ring, nfSock(k), `${tag}-nf${k}`, o.burst),
    ]),
  );
  const nfOf = (e: Entry): FlowlineNf => must(nfs.get(e.id), `NF of entry ${e.id}`);
  // polls on core 0; sends on one port at a time, the one being measured
  const gen = ReplayGenerator.spawn({
    prefix: `${tag}-gen`,
    ports: genPorts,
    burst: o.burst,
    singleFileSegments: nfVhost,
  });
  // interactive, so that it forwards (and polls) only while it is measured
  const ref = Testpmd.spawn({
    eal: [
      ...['-l', '0,1', '--main-lcore', '0', '--in-memory', '--single-file-segments', '--no-pci'],
      ...['--file-prefix', `${tag}-ref`],
      ...['--vdev', nfVhost ? vhostClient(0, refSock) : virtioUser(0, refSock)],
    ],
    app: [
      ...['-i', '--forward-mode=io', '--port-topology=loop', '--nb-cores=1'],
      ...['--total-num-mbufs=16384', '--rxd=1024', '--txd=1024', `--burst=${o.burst}`],
    ],
  });

  const measure = async (
    port: number,
    name: string,
    warmupMs = o.warmupMs,
    windowMs = o.windowMs,
  ): Promise<{ mpps: number; headroom: number }> => {
    if (port === 0) await ref.command('start', /packet forwarding/);
    await gen.select(port);
    await sleep(warmupMs);
    const a = await gen.counters(port);
    const ta = performance.now();
    // the generator's tx counters per part of the window: did it have rate to spare?
    let f = a;
    const parts: WindowPart[] = [];
    for (let k = 0; k < WINDOW_PARTS; k++) {
      await sleep(windowMs / WINDOW_PARTS);
      const g = await gen.counters(port);
      parts.push({ sent: g.sent - f.sent, dropped: g.tried - g.sent - (f.tried - f.sent) });
      f = g;
    }
    const b = f;
    const tb = performance.now();
    await gen.select(null);
    if (port === 0) await ref.command('stop', /Done\./);
    const mpps = (b.received - a.received) / ((tb - ta) * 1000);
    const frame = gen.frameBytes;
    const room = headroom(parts);
    if (port === 0) st.refs.push(mpps);
    process.stderr.write(
      `  ${name}: ${mpps.toFixed(3)} Mpps (${frame.toFixed(0)}-byte frames + FCS), generator headroom ${room.toFixed(2)}x\n`,
    );
    return { mpps, headroom: room };
  };

  // the rounds of entry id that count and were run in this session
  const first = new Map(entries.map((e) => [e.id, roundsOf(st, e.id).length]));
  const countedHere = (id: string): number => {
    const all = roundsOf(st, id);
    const ok = new Set(countedRounds(st.rounds.values(), all));
    return all.slice(first.get(id)).filter((x) => ok.has(x)).length;
  };

  // Before a pair of windows: unless the pair before showed the fast phase, short probes of the
  // reference until one does (fastPhase), or gateWaitMs went by, or the session's gateBudgetMs
  // is spent (then the pair runs all the same).
  let lastFast = false;
  let waitedHere = 0;
  const awaitFastPhase = async (): Promise<void> => {
    if (o.gateWaitMs === 0 || lastFast || waitedHere >= o.gateBudgetMs) return;
    const t0 = performance.now();
    const limit = Math.min(o.gateWaitMs, o.gateBudgetMs - waitedHere, deadline - t0);
    for (;;) {
      const refs = [...st.refs];
      const probe = await measure(0, 'phase probe', PROBE_WARMUP_MS, PROBE_WINDOW_MS);
      st.probes++;
      if (fastPhase(probe, refs) || performance.now() - t0 >= limit) break;
      await sleep(PROBE_PAUSE_MS);
    }
    const waited = performance.now() - t0;
    waitedHere += waited;
    st.gateWaitedMs += waited;
  };
  // gated, nearly every round tried counts: fewer tries bound a session that stays slow
  const maxTries = target * (o.gateWaitMs ? 2 : 3);

  try {
    await gen.ready(60_000);
    await ref.waitFor(/testpmd> /, 30_000);
    await waitLink(gen, 0, 'reference');
    for (const [k, e] of entries.entries()) {
      st.tscHz = (await nfOf(e).ready(60_000)) || st.tscHz;
      await waitLink(gen, k + 1, e.label);
    }
    // the budget (deadline): the first round always runs, a later one only when it would end in
    // time if it took as long as the longest before it
    let longestRound = 0;
    for (
      let t = 0;
      t < maxTries && entries.some((e) => countedHere(e.id) < target);
      t++, st.roundsRun++
    ) {
      const roundStart = performance.now();
      if (!mayStartRound(t, roundStart, longestRound, deadline)) {
        st.sessionsCut++;
        break;
      }
      const r = st.roundsRun;
      process.stderr.write(`round ${r + 1} (session ${session + 1})\n`);
      // the order rotates from round to round
      const shift = r % entries.length;
      const indexed = [...entries.entries()];
      for (const [k, e] of [...indexed.slice(shift), ...indexed.slice(0, shift)]) {
        // alternate which goes first, so a drifting machine favours neither
        let ref, cand;
        await awaitFastPhase();
        const refsBefore = [...st.refs];
        if (r % 2 === 0) {
          ref = await measure(0, 'testpmd io');
          cand = await measure(k + 1, e.label);
        } else {
          cand = await measure(k + 1, e.label);
          ref = await measure(0, 'testpmd io');
        }
        lastFast = fastPhase(
          { mpps: ref.mpps, headroom: Math.min(ref.headroom, cand.headroom) },
          refsBefore,
        );
        roundsOf(st, e.id).push({
          reference: ref.mpps,
          candidate: cand.mpps,
          referenceHeadroom: ref.headroom,
          candidateHeadroom: cand.headroom,
        });
      }
      longestRound = Math.max(longestRound, performance.now() - roundStart);
    }
    for (const e of entries) {
      const report = await nfOf(e).stop();
      nfs.delete(e.id);
      const c = nfCyclesPerPacket(report);
      if (c) must(st.cycles.get(e.id), `NF cycles of entry ${e.id}`).push(c);
      if (process.env.FLOWLINE_BENCH_VERBOSE) process.stderr.write(`  ${e.label}: ${report}\n`);
    }
  } finally {
    for (const nf of nfs.values()) await nf.stop().catch(() => undefined);
    await gen.stop();
    await ref.stop(true);
    rmSync(dir, { recursive: true, force: true });
    scratchDirs.delete(dir);
  }
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  process.once('SIGINT', () => stopNow('SIGINT'));
  process.once('SIGTERM', () => stopNow('SIGTERM'));
  if (o.stopWithStdin) {
    process.stdin.once('end', () => stopNow('stdin closed'));
    process.stdin.resume();
    // watched, not waited on: a parent that waits for this process's exit keeps the pipe open
    process.stdin.unref();
  }
  const entries = entriesOf(o.cases, o.abAddon);
  const st: RunState = {
    rounds: new Map(entries.map((e) => [e.id, []])),
    cycles: new Map(entries.map((e) => [e.id, []])),
    tscHz: 0,
    roundsRun: 0,
    refs: [],
    gateWaitedMs: 0,
    probes: 0,
    sessionsCut: 0,
  };
  // Each session starts every process afresh, so that no one process's speed (its memory
  // layout, where the host put it) stands for the whole run.
  const perSession = Math.ceil(o.rounds / o.sessions);
  // --budget-ms: session s ends its rounds by its cumulative share of the budget
  const start = performance.now();
  for (let s = 0; s < o.sessions; s++) {
    await runSession(
      o,
      entries,
      s,
      perSession,
      st,
      sessionDeadline(start, o.budgetMs, o.sessions, s),
    );
  }
  const { rounds, tscHz } = st;
  const nfCycles = new Map(
    entries.map((e) => [
      e.id,
      meanNfCycles(must(st.cycles.get(e.id), `NF cycles of entry ${e.id}`)),
    ]),
  );
  // the rounds of entry id that count (headroom.ts: generator headroom, reference at speed)
  const counted = (id: string): VhostRound[] => countedRounds(rounds.values(), roundsOf(st, id));

  // The sensitivity control: (e) must cost CONTROL_BURN_CYCLES per packet more than (a). When
  // the generator, not the NF, sets the rate, the drop does not show and the ratios say
  // nothing about the NF (its targets are then not measured, rather than met). Only the rounds
  // that count enter it and the ratios; a case with fewer than MIN_COUNTED of them is reported
  // from all its rounds, and its target is not measured.
  const enough = (id: string): VhostRound[] | undefined => {
    const b = rounds.has(id) ? counted(id) : [];
    return b.length >= Math.min(MIN_COUNTED, o.rounds) ? b : undefined;
  };
  const control = sensitivity(enough('forward'), enough('burn'), tscHz);
  const results = entries.map((e) => {
    const all = roundsOf(st, e.id);
    const used = enough(e.id);
    const r = compare(used ?? all);
    const target = TARGETS[e.case];
    return {
      case: e.id,
      label: e.label,
      ...(target !== undefined ? { target } : {}),
      ...r,
      countedRounds: counted(e.id).length,
      triedRounds: all.length,
      ...(nfCycles.get(e.id) ? { nfCycles: nfCycles.get(e.id) } : {}),
      met: target === undefined || !used || !control?.discriminates ? undefined : r.ratio >= target,
    };
  });
  const rows = [
    [
      'case',
      'rounds counted',
      'Mpps (median)',
      'testpmd io Mpps (median)',
      'ratio (median)',
      'ratio min..max',
      "median's CI",
      'target',
      'met',
      'NF cyc/pkt (rx+parse+stages+tx)',
    ],
    ...results.map((x) => [
      x.label,
      `${x.countedRounds}/${x.triedRounds}`,
      x.candidateMedian.toFixed(2),
      x.referenceMedian.toFixed(2),
      x.ratio.toFixed(3),
      `${x.ratioMin.toFixed(2)}..${x.ratioMax.toFixed(2)}`,
      formatInterval(x.ratioInterval),
      x.target !== undefined ? `>= ${x.target}` : 'control',
      x.met === undefined ? (x.target !== undefined ? 'not measured' : '') : x.met ? 'yes' : 'NO',
      formatNfCycles(x.nfCycles),
    ]),
  ];
  // --ab-addon: each case's ratio to testpmd with the other build over its ratio with this one,
  // per round (both measured in it, both counting), and the median of those
  const abCompare = entries.flatMap((e) => {
    const addon = e.addon;
    const a = rounds.get(e.case);
    if (!addon || !a) return [];
    const pairs = abRounds(a, roundsOf(st, e.id), new Set(counted(e.case)), new Set(counted(e.id)));
    return pairs.length ? [{ case: e.case, addonB: addon, ...compare(pairs) }] : [];
  });
  const abNote = abCompare
    .map(
      (x) =>
        `${LABELS[x.case as NfCase]}: other build / this build = ${x.ratio.toFixed(3)} (median of ${x.rounds} per-round ratios of ratios to testpmd, ${x.ratioMin.toFixed(2)}..${x.ratioMax.toFixed(2)})\n`,
    )
    .join('');
  const phaseGate = {
    waitMaxMs: o.gateWaitMs,
    sessionBudgetMs: o.gateBudgetMs,
    budgetMs: o.budgetMs,
    sessionsCut: st.sessionsCut,
    probes: st.probes,
    waitedMs: st.gateWaitedMs,
  };
  const gateNote = phaseGateNote(phaseGate);
  const cpu = cpuInfo();
  const controlNote =
    control?.note ??
    `sensitivity control: fewer than ${MIN_COUNTED} rounds of (a) and (e) count (generator headroom of ${GENERATOR_HEADROOM}x in both windows, the reference at ${REF_PHASE} of its 90th percentile): targets not measured`;
  process.stdout.write(
    `\n${formatTable(rows)}\n\n${controlNote}\n${gateNote}\n` +
      "median's CI: the per-round ratios' order statistics that hold their true median with the confidence given (90 %, or less with too few rounds; stats.ts medianInterval)\n" +
      "NF cyc/pkt: the NF pipeline's TSC cycles a packet in the bursts it timed (one in 16), over every round of the case; rx and tx include vhost's copies\n" +
      (abNote ? `${abNote}` : '') +
      `processor: ${formatCpu(cpu)}\n`,
  );
  process.stdout.write(
    `${JSON.stringify({
      benchmark: 'dpdk-pipeline-vs-testpmd',
      frameBytes: 64,
      generator: `FrameReplay (@flowline/dpdk), ${GENERATOR_FLOWS} flows`,
      path:
        o.nfPort === 'vhost'
          ? `frame replay (net_virtio_user server=1) <-> vhost-user, ${o.ring} ring <-> NF (net_vhost client)`
          : `frame replay (net_vhost client) <-> vhost-user, ${o.ring} ring <-> NF (net_virtio_user server=1)`,
      ring: o.ring,
      rounds: o.rounds,
      sessions: o.sessions,
      windowMs: o.windowMs,
      burst: o.burst,
      tscHz,
      cpu,
      generatorHeadroom: GENERATOR_HEADROOM,
      control: control ?? { note: controlNote },
      phaseGate,
      results: results.map((x) => ({ ...x, samples: rounds.get(x.case) })),
      ...(abCompare.length ? { abCompare } : {}),
    })}\n`,
  );
}

main().catch((e: unknown) => {
  if (e instanceof TestpmdError)
    process.stderr.write(`testpmd's output:\n${e.output.slice(-4000)}\n`);
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
