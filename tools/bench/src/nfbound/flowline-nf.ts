/**
 * The Flowline side of the NF-bound benchmark, as its own process (one EAL per process): for
 * each trace a net_pcap port replaying it forever (`infinite_rx=1`, loaded into a pool of its
 * own), one net_null output (`no-rx=1`), and for each case a pipeline (or the JS forwarder)
 * from a trace port to the null port, created up front and started only while it is measured,
 * so exactly one poller runs. The worker is on lcore 1, the source is net_pcap's rx inside the
 * worker's own rx burst: one core does everything.
 *
 * Commands on stdin, one JSON object a line ({cmd, id?}); replies on stdout as lines starting
 * with "@@" (EAL and drivers print there too): start, sample, stop, report, quit.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

import {
  ESP_VDEVS,
  Mempool,
  Pipeline,
  Port,
  createJsForwarder,
  initEal,
  type EspPolicy,
  type JsForwarder,
  type StageSpec,
} from '@flowline/dpdk';
import { parseMac, validateMatch } from '@flowline/packet';

import { parseAcl, parseRoutes, type TextAclRule, type TextRoutingTable } from '../dpdk/tables';
import { must } from '../must';

import { benchRules, toAclRules } from './rules';

export interface NfTrace {
  id: string;
  file: string;
  length: number;
  /** the pool's data room per mbuf (headroom included); default 256, for 60-66-byte frames */
  dataRoom?: number;
}

/** An ESP stage's one SA, as the plan file carries it (keys in hex). */
export interface NfEspSa {
  spi: number;
  algorithm: 'aes-gcm-128' | 'aes-cbc-128-hmac-sha256';
  keyHex: string;
  authKeyHex?: string;
  tunnel: { src: string; dst: string };
}

export type NfCase = { id: string; trace: string } & (
  | { kind: 'l2fwd' }
  | { kind: 'burn'; cycles: number }
  | { kind: 'acl'; rulesFile: string }
  | { kind: 'ct'; rulesFile: string; capacity: number }
  | { kind: 'lpm'; tableFile: string }
  | { kind: 'js' }
  | {
      kind: 'esp';
      direction: 'outbound' | 'inbound';
      sa: NfEspSa;
      /** With N: the stage runs an SPD of N policies, N - 1 that miss, then the one that
       * protects every packet of the trace (inner destination 10.2.0.0/16) with the SA. */
      policies?: number;
    }
);

export interface NfPlan {
  prefix: string;
  burst: number;
  traces: NfTrace[];
  cases: NfCase[];
  /** extra EAL arguments */
  eal?: string[];
}

export interface NfSample {
  /** microseconds, this process's monotonic clock */
  t: number;
  /** packets the trace port has given (all cases on it) */
  portRx: number;
  /** the pipeline's own rx and busy cycles (0 for the JS forwarder) */
  hz: number;
  rx: number;
  busy: number;
  /** packets of the bursts whose parts were timed (one in 16) */
  sampled: number;
  stages: number[];
  parse: number;
  tx: number;
  rxCycles: number;
}

interface Running {
  start(): void;
  stop(): Promise<void>;
  sample(): Omit<NfSample, 't' | 'portRx'>;
  report(): unknown;
}

/**
 * An ESP stage's SPD for the benchmark: n - 1 policies that miss the trace (other /24s), then the
 * one that protects it with the SA: the linear scan's worst case for n.
 */
function benchPolicies(n: number, spi: number): EspPolicy[] {
  const m = (dstPrefix: string) => validateMatch({ dstPrefix }, 'match');
  return Array.from({ length: n }, (_, i) =>
    i < n - 1
      ? { id: `miss${i}`, action: 'discard' as const, match: m(`10.3.${i % 256}.0/24`) }
      : { id: 'hit', action: 'protect' as const, spi, match: m('10.2.0.0/16') },
  );
}

const reply = (o: unknown): void => void process.stdout.write(`@@${JSON.stringify(o)}\n`);

const MAIN_CORE = 0;
const WORKER_CORE = 1;
/** Sets the main thread's CPU affinity (`taskset -p` on the process id: that thread only). */
const pinMainThread = (core: number): void =>
  void execFileSync('taskset', ['-p', '-c', String(core), String(process.pid)], {
    stdio: 'ignore',
  });

async function main(): Promise<void> {
  const plan = JSON.parse(
    readFileSync(must(process.argv[2], 'plan file argument'), 'utf8'),
  ) as NfPlan;
  const eal = initEal({
    filePrefix: plan.prefix,
    lcores: [MAIN_CORE, WORKER_CORE],
    ...(plan.cases.some((c) => c.kind === 'esp') ? { vdevs: [...ESP_VDEVS] } : {}),
    ...(plan.eal ? { extraArgs: plan.eal } : {}),
  });
  const ports = new Map<string, { port: Port; pool: Mempool }>();
  for (const t of plan.traces) {
    // the trace's frames stay in the pool (net_pcap copies each into a fresh mbuf per rx)
    const pool = Mempool.create({
      size: t.length + 16_384,
      dataRoom: t.dataRoom ?? 256,
      cacheSize: 256,
    });
    const port = Port.open(`net_pcap_${t.id},rx_pcap=${t.file},infinite_rx=1`, pool);
    ports.set(t.id, { port, pool });
  }
  const outPool = Mempool.create({ size: 8191, dataRoom: 256 });
  const out = Port.open('net_null_out,no-rx=1', outPool);
  const l2 = (from: Port): StageSpec => ({ kind: 'l2fwd', forward: [{ from, to: out }] });
  const cases = new Map<string, Running>();
  /** each case's trace port */
  const portOf = new Map<string, Port>();
  for (const c of plan.cases) {
    const { port, pool } = must(ports.get(c.trace), `trace ${c.trace} of case ${c.id}`);
    portOf.set(c.id, port);
    if (c.kind === 'js') {
      const fwd: JsForwarder = createJsForwarder({
        rx: port,
        tx: out,
        pool,
        burst: plan.burst,
        dstMac: parseMac('02:00:00:00:00:aa'),
        srcMac: parseMac('02:00:00:00:00:bb'),
      });
      let last = { forwarded: 0, dropped: 0, expired: 0, malformed: 0 };
      cases.set(c.id, {
        // The JS forwarder polls on this (the main) thread, which the EAL pins to lcore 0's core;
        // every other case, and testpmd io beside it, polls on core 1. Moved there while it runs
        // (the worker lcore idles then), so that it is measured on the same core as its peer:
        // on core 0 some whole sessions ran at about 11 Mpps against 20, with no such drop in the
        // peers of the same rounds.
        start: () => {
          pinMainThread(WORKER_CORE);
          fwd.start(20);
        },
        stop: async () => {
          last = await fwd.stop();
          pinMainThread(MAIN_CORE);
        },
        sample: () => ({
          hz: 0,
          rx: 0,
          busy: 0,
          sampled: 0,
          stages: [],
          parse: 0,
          tx: 0,
          rxCycles: 0,
        }),
        report: () => last,
      });
      continue;
    }
    const stages: StageSpec[] =
      c.kind === 'l2fwd'
        ? [l2(port)]
        : c.kind === 'burn'
          ? [{ kind: 'burn', name: 'burn', cycles: c.cycles }, l2(port)]
          : c.kind === 'acl'
            ? [{ kind: 'acl', name: 'acl', defaultAction: 'deny' }, l2(port)]
            : c.kind === 'ct'
              ? [
                  {
                    kind: 'conntrack',
                    name: 'ct',
                    capacity: c.capacity,
                    // the run lasts minutes: flows (and cached denials) must not expire
                    // while the other cases have their rounds
                    timeouts: { udpMs: 3_600_000, tcpSynMs: 3_600_000, deniedMs: 3_600_000 },
                  },
                  { kind: 'acl', name: 'acl', defaultAction: 'deny' },
                  l2(port),
                ]
              : c.kind === 'esp'
                ? [
                    {
                      kind: 'esp',
                      name: 'esp',
                      direction: c.direction,
                      policies: (c.policies ?? 0) > 0,
                    },
                    l2(port),
                  ]
                : [{ kind: 'lpm', name: 'lpm', noRoute: 'drop', countHits: true }];
    const p = Pipeline.create({ inputs: [port], stages, burst: plan.burst });
    if (c.kind === 'acl' || c.kind === 'ct')
      await p.updateAcl(
        'acl',
        parseAcl(JSON.parse(readFileSync(c.rulesFile, 'utf8')) as TextAclRule[]),
      );
    if (c.kind === 'esp')
      p.addSa('esp', {
        spi: c.sa.spi,
        algorithm: c.sa.algorithm,
        key: Buffer.from(c.sa.keyHex, 'hex'),
        ...(c.sa.authKeyHex ? { authKey: Buffer.from(c.sa.authKeyHex, 'hex') } : {}),
        innerFamily: 4,
        tunnel: c.sa.tunnel,
        // the trace replays the same sequence numbers forever
        ...(c.direction === 'inbound' ? { replayWindow: 0 } : {}),
      });
    if (c.kind === 'esp' && c.policies)
      p.setEspPolicies('esp', benchPolicies(c.policies, c.sa.spi));
    if (c.kind === 'lpm') {
      const t = JSON.parse(readFileSync(c.tableFile, 'utf8')) as TextRoutingTable;
      for (const h of t.nextHops) h.port = out.id;
      p.updateRoutes('lpm', parseRoutes(t));
    }
    cases.set(c.id, {
      start: () => p.start(),
      stop: async () => p.stop(),
      sample: () => {
        const cy = p.cycles();
        return {
          hz: cy.hz,
          rx: p.counters().rx,
          busy: cy.busy,
          sampled: cy.sampledPackets,
          stages: cy.stages.map((s) => s.cycles),
          parse: cy.parse,
          tx: cy.tx,
          rxCycles: cy.rx,
        };
      },
      report: () => ({
        counters: p.counters(),
        stageNames: p.stages.map((s) => s.name),
        ...(c.kind === 'acl' || c.kind === 'ct'
          ? { aclHits: p.aclHits('acl').map((h) => h.hits) }
          : {}),
        ...(c.kind === 'ct' ? { conntrack: p.conntrack('ct') } : {}),
        ...(c.kind === 'lpm' ? { routeHits: Array.from(p.routeHits('lpm')) } : {}),
        ...(c.kind === 'esp'
          ? {
              sa: ((sa) => ({ ...sa, seq: String(sa.seq) }))(p.saCounters('esp', c.sa.spi)),
              ...(c.policies ? { policyHits: p.espPolicyHits('esp') } : {}),
            }
          : {}),
      }),
    });
  }
  const portRx = (id: string): number =>
    must(portOf.get(id), `trace port of case ${id}`).stats().rxPackets;
  const from = new Map<string, number>();
  const hz = [...cases.values()].map((c) => c.sample()).find((x) => x.hz > 0)?.hz ?? 0;
  // before any case runs (lcore 1 idle): what each cache line two polling cores hand each other
  // costs on this machine
  const roundTrip = eal.lcoreRoundTrip(1);
  reply({ ready: true, tscHz: hz, lcoreRoundTripCycles: roundTrip.cycles });

  const rl = createInterface({ input: process.stdin });
  for await (const line of rl) {
    const m = JSON.parse(line) as { cmd: string; id?: string };
    try {
      const c = m.id !== undefined ? cases.get(m.id) : undefined;
      if (m.id !== undefined && !c && m.cmd !== 'aclbuild') throw new Error(`no case ${m.id}`);
      // start, sample, stop and report name a case
      const id = (): string => must(m.id, `case id in ${m.cmd}`);
      const run = (): Running => must(c, `case id in ${m.cmd}`);
      if (m.cmd === 'start') {
        from.set(id(), portRx(id()));
        run().start();
        reply({ ok: true });
      } else if (m.cmd === 'sample') {
        const t = Number(process.hrtime.bigint()) / 1e3;
        reply({ ok: true, sample: { t, portRx: portRx(id()), ...run().sample() } });
      } else if (m.cmd === 'stop') {
        await run().stop();
        const a = must(from.get(id()), `start of case ${id()}`);
        reply({ ok: true, window: { from: a, count: portRx(id()) - a } });
      } else if (m.cmd === 'report') {
        const stats = Object.fromEntries([...ports].map(([k, v]) => [k, v.port.stats()]));
        reply({ ok: true, report: run().report(), ports: stats, out: out.stats() });
      } else if (m.cmd === 'aclbuild') {
        // rte_acl build time and hugepage memory for n rules, on a pipeline that never runs
        const n = Number(m.id);
        const rules = parseAcl(toAclRules(benchRules(n)));
        const p = Pipeline.create({
          inputs: [out],
          stages: [{ kind: 'acl', name: 'acl' }, l2(out)],
        });
        try {
          const before = eal.heapBytes();
          const t0 = performance.now();
          await p.updateAcl('acl', rules);
          const ms = performance.now() - t0;
          reply({ ok: true, rules: n, buildMs: ms, heapBytes: eal.heapBytes() - before });
        } finally {
          p.close();
        }
      } else if (m.cmd === 'quit') {
        reply({ ok: true });
        break;
      } else throw new Error(`unknown command ${m.cmd}`);
    } catch (e) {
      reply({ ok: false, error: (e as Error).message });
    }
  }
  eal.cleanup();
  process.exit(0);
}

main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
