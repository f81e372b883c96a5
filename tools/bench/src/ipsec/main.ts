/**
 * The IPsec gateway's ESP data path, NF-bound on one core (issue 20): the ESP stage of
 * packages/dpdk in a pipeline fed by a net_pcap trace replayed forever and emptied into
 * net_null, as the NF-bound benchmark does (src/nfbound), for AES-GCM-128 and AES-CBC-128 +
 * HMAC-SHA-256-128, 64-byte and 1,400-byte frames, outbound (clear frames in, ESP out) and
 * inbound (ESP frames a peer made with node:crypto in, clear out). In the same run, on the same
 * core: testpmd io over the clear trace of each size (the floor), and the crypto alone,
 * dpdk-test-crypto-perf's throughput test on the same PMDs with buffers of the sizes the stage
 * encrypts, once per round. Rounds alternate the cases; medians are reported, with the stage's
 * cycles a packet from the worker. crypto-perf goes through the cryptodev queue (an op and an
 * mbuf per buffer, enqueue, dequeue), the stage through the synchronous CPU crypto API: at
 * large buffers the stage can cost less than that "crypto alone". Every case's SA counters must equal the packets the pipeline took (none
 * failed authentication), or the run fails.
 *
 *   npm run bench:ipsec -w tools/bench [-- --rounds 5 --window-ms 1000 --flows 1024 --out DIR]
 *
 * The Linux kernel's xfrm would be the peer of the issue; this machine's kernel has no ESP
 * (no CONFIG_INET_ESP, no loadable modules), so it is not measured.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { ESP_VDEVS, leftoverFiles } from '@flowline/dpdk';

import type { NfCase, NfPlan } from '../nfbound/flowline-nf';
import { FlowlineNf, TestpmdIo } from '../nfbound/peers';
import { pcapOfFrames } from '../nfbound/trace';
import { cpuInfo, formatCpu } from '../machine';
import { must } from '../must';
import { formatTable, median } from '../stats';

import {
  type BenchAlgorithm,
  benchSa,
  clearFrames,
  espFrame,
  espPayload,
  ipOf,
} from './esp-frames';

interface Options {
  rounds: number;
  warmupMs: number;
  windowMs: number;
  flows: number;
  out: string;
}

function parseArgs(argv: string[]): Options {
  const o: Options = {
    rounds: 5,
    warmupMs: 300,
    windowMs: 1000,
    flows: 1024,
    out: path.join(__dirname, '..', '..', 'results'),
  };
  for (let i = 0; i < argv.length; i += 2) {
    const [k, v] = [argv[i], argv[i + 1]];
    const n = Number(v);
    if (k === '--out' && v) o.out = v;
    else if (k === '--rounds' && Number.isInteger(n) && n > 0) o.rounds = n;
    else if (k === '--warmup-ms' && Number.isInteger(n) && n >= 0) o.warmupMs = n;
    else if (k === '--window-ms' && Number.isInteger(n) && n > 0) o.windowMs = n;
    else if (k === '--flows' && Number.isInteger(n) && n > 0 && n <= 65_536) o.flows = n;
    else
      throw new Error(
        `bad option ${k} ${v ?? ''} (--rounds N --warmup-ms N --window-ms N --flows 1..65536 --out DIR)`,
      );
  }
  return o;
}

const log = (s: string): void => void process.stderr.write(`${s}\n`);
const NF_ENTRY = existsSync(path.join(__dirname, '..', 'nfbound', 'flowline-nf.ts'))
  ? ['--import', 'tsx', path.join(__dirname, '..', 'nfbound', 'flowline-nf.ts')]
  : [path.join(__dirname, '..', 'nfbound', 'flowline-nf.js')];

const ALGORITHMS: BenchAlgorithm[] = ['aes-gcm-128', 'aes-cbc-128-hmac-sha256'];
/** Frames without FCS: 64 and 1,400 bytes on the wire. */
const SIZES = [
  { wire: 64, frame: 60 },
  { wire: 1400, frame: 1396 },
];
const TUNNEL = { src: '192.0.2.1', dst: '192.0.2.2' };
/** SPD sizes measured beside the stage without policies */
const POLICY_COUNTS = [1, 16];
/** mbufs for 1,400-byte frames grown by ESP (headroom included) */
const DATA_ROOM = 2176;

interface CaseDef {
  id: string;
  label: string;
  peer: 'testpmd' | 'flowline';
  trace: string;
  wire: number;
  floor?: string;
  /** the crypto-alone figure it is compared with: algorithm and buffer bytes */
  crypto?: { algorithm: BenchAlgorithm; bytes: number };
  /** the ESP stage's SPD: policies, the one protecting the trace last (0: none) */
  policies?: number;
  nf?: NfCase;
}

/** dpdk-test-crypto-perf's cycles per buffer for each of `bytes`, encrypting with `algorithm`. */
function cryptoAlone(
  algorithm: BenchAlgorithm,
  bytes: number[],
  prefix: string,
): { bytes: number; cycles: number }[] {
  const gcm = algorithm === 'aes-gcm-128';
  const app = gcm
    ? [
        ...['--devtype', 'crypto_aesni_gcm', '--optype', 'aead', '--aead-algo', 'aes-gcm'],
        ...['--aead-op', 'encrypt', '--aead-key-sz', '16', '--aead-iv-sz', '12'],
        ...['--aead-aad-sz', '8', '--digest-sz', '16'],
      ]
    : [
        ...['--devtype', 'crypto_aesni_mb', '--optype', 'cipher-then-auth'],
        ...['--cipher-algo', 'aes-cbc', '--cipher-op', 'encrypt', '--cipher-key-sz', '16'],
        ...['--cipher-iv-sz', '16', '--auth-algo', 'sha2-256-hmac', '--auth-op', 'generate'],
        ...['--auth-key-sz', '32', '--digest-sz', '16'],
      ];
  const r = spawnSync(
    'dpdk-test-crypto-perf',
    [
      ...['-l', '0,1', '--no-pci', '--in-memory', '--file-prefix', prefix, '--log-level=error'],
      ...['--vdev', gcm ? ESP_VDEVS[0] : ESP_VDEVS[1], '--'],
      ...['--ptest', 'throughput', ...app, '--buffer-sz', bytes.join(',')],
      ...['--total-ops', '1000000', '--burst-sz', '32', '--silent'],
    ],
    { encoding: 'utf8', timeout: 120_000 },
  );
  // DPDK leaves its runtime directory (and, killed, its hugepage files): it has exited here
  for (const f of leftoverFiles(prefix)) rmSync(f, { recursive: true, force: true });
  // "lcore id  Buf Size  Burst Size  Enqueued  Dequeued  Failed Enq  Failed Deq  MOps  Gbps  Cycles/Buf"
  const rows = [
    ...r.stdout.matchAll(
      /^\s*\d+\s+(\d+)\s+32\s+(\d+)\s+(\d+)\s+0\s+0\s+[\d.]+\s+[\d.]+\s+([\d.]+)\s*$/gm,
    ),
  ];
  const out = bytes.map((b) => ({
    bytes: b,
    cycles: Number(rows.find((m) => Number(m[1]) === b)?.[4] ?? NaN),
  }));
  if (r.status !== 0 || out.some((x) => !Number.isFinite(x.cycles)))
    throw new Error(
      `dpdk-test-crypto-perf (${algorithm}) failed (status ${r.status}): ${(r.stdout + r.stderr).slice(-1500)}`,
    );
  return out;
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const t0 = Date.now();
  const dir = mkdtempSync('/tmp/flowline-ipsec-bench-');
  const tag = `flib${process.pid}`;
  const cleanups: (() => Promise<void>)[] = [];
  try {
    // ---- traces and SAs ----
    const traces: NfPlan['traces'] = [];
    const trace = (id: string, frames: Buffer[]): void => {
      const file = path.join(dir, `${id}.pcap`);
      writeFileSync(file, pcapOfFrames(frames));
      traces.push({ id, file, length: frames.length, dataRoom: DATA_ROOM });
    };
    const cases: CaseDef[] = [];
    /** the bytes each size's stage encrypts: the inner packet and ESP's trailer, padded */
    const cryptoBytes = new Map<string, number>();
    let spi = 0x1000;
    for (const { wire, frame } of SIZES) {
      const clear = clearFrames(o.flows, frame);
      trace(`clear${wire}`, clear);
      cases.push({
        id: `testpmd${wire}`,
        label: `testpmd io, ${wire} B`,
        peer: 'testpmd',
        trace: `clear${wire}`,
        wire,
      });
      for (const algorithm of ALGORITHMS) {
        const short = algorithm === 'aes-gcm-128' ? 'gcm128' : 'cbc128';
        const out = benchSa(algorithm, spi++, TUNNEL);
        const inb = benchSa(algorithm, spi++, TUNNEL);
        const bytes =
          espPayload(out, ipOf(must(clear[0], `clear ${wire} B frame`)), 1).length -
          8 -
          (algorithm === 'aes-gcm-128' ? 8 + 16 : 16 + 16);
        cryptoBytes.set(`${algorithm}:${wire}`, bytes);
        trace(
          `esp-${short}-${wire}`,
          clear.map((f, i) => espFrame(inb, ipOf(f), i + 1)),
        );
        const sa = (s: typeof out) => ({
          spi: s.spi,
          algorithm,
          keyHex: s.key.toString('hex'),
          ...(s.authKey ? { authKeyHex: s.authKey.toString('hex') } : {}),
          tunnel: s.tunnel,
        });
        for (const [direction, s, tr] of [
          ['outbound', out, `clear${wire}`],
          ['inbound', inb, `esp-${short}-${wire}`],
        ] as const) {
          // the gateway runs its stages with an SPD: AES-GCM-128 at 64 B also with 1 and 16
          // policies (the protecting one last)
          const spds = algorithm === 'aes-gcm-128' && wire === 64 ? [0, ...POLICY_COUNTS] : [0];
          for (const policies of spds) {
            const id =
              `${direction === 'outbound' ? 'out' : 'in'}-${short}-${wire}` +
              (policies ? `-spd${policies}` : '');
            cases.push({
              id,
              label:
                `Flowline ESP ${direction} ${algorithm}, ${wire} B` +
                (policies ? `, ${policies} ${policies === 1 ? 'policy' : 'policies'}` : ''),
              peer: 'flowline',
              trace: tr,
              wire,
              floor: `testpmd${wire}`,
              crypto: { algorithm, bytes },
              policies,
              nf: { id, kind: 'esp', trace: tr, direction, sa: sa(s), policies },
            });
          }
        }
      }
    }

    // ---- the crypto alone: measured in every round, between the cases ----
    const cryptoSamples = new Map<string, number[]>();
    const measureCrypto = (algorithm: BenchAlgorithm): void => {
      const bytes = SIZES.map(({ wire }) =>
        must(cryptoBytes.get(`${algorithm}:${wire}`), `crypto bytes of ${algorithm} at ${wire} B`),
      );
      for (const { bytes: b, cycles } of cryptoAlone(algorithm, bytes, `${tag}-cp`)) {
        const k = `${algorithm}:${b}`;
        cryptoSamples.set(k, [...(cryptoSamples.get(k) ?? []), cycles]);
      }
    };

    // ---- peers ----
    const planFile = path.join(dir, 'plan.json');
    const plan: NfPlan = {
      prefix: `${tag}-nf`,
      burst: 32,
      traces,
      cases: cases.flatMap((c) => (c.nf ? [c.nf] : [])),
    };
    writeFileSync(planFile, JSON.stringify(plan));
    const nf = await FlowlineNf.start(NF_ENTRY, planFile, 300_000);
    cleanups.push(() => nf.stop());
    const testpmd = new Map<string, TestpmdIo>();
    for (const c of cases.filter((x) => x.peer === 'testpmd')) {
      const t = must(
        traces.find((x) => x.id === c.trace),
        `trace ${c.trace} of case ${c.id}`,
      );
      const tp = await TestpmdIo.start({
        prefix: `${tag}-${c.id}`,
        pcap: t.file,
        length: t.length,
        burst: 32,
        mbufSize: DATA_ROOM,
      });
      cleanups.push(() => tp.stop());
      testpmd.set(c.id, tp);
    }

    // ---- rounds ----
    type Sample = { mpps: number; busy?: number; stage?: number };
    const samples = new Map<string, Sample[]>(cases.map((c) => [c.id, []]));
    const samplesOf = (id: string): Sample[] => must(samples.get(id), `samples of case ${id}`);
    const measure = async (c: CaseDef): Promise<Sample> => {
      if (c.peer === 'testpmd') {
        const tp = must(testpmd.get(c.id), `testpmd io of case ${c.id}`);
        return { mpps: await tp.measure(o.warmupMs, o.windowMs) };
      }
      const { a, b } = await nf.measure(c.id, o.warmupMs, o.windowMs);
      const pkts = b.rx - a.rx;
      const sampled = b.sampled - a.sampled;
      const stage = (x: typeof a): number => must(x.stages[0], `ESP stage cycles of case ${c.id}`);
      return {
        mpps: (b.portRx - a.portRx) / (b.t - a.t),
        ...(pkts > 0 ? { busy: (b.busy - a.busy) / pkts } : {}),
        ...(sampled > 0 ? { stage: (stage(b) - stage(a)) / sampled } : {}),
      };
    };
    for (let r = 0; r < o.rounds; r++) {
      // each round in another order, so that no case always follows the same one
      const k = (r * 3) % cases.length;
      const order = [...cases.slice(k), ...cases.slice(0, k)];
      const line: string[] = [];
      for (const c of order) {
        const s = await measure(c);
        samplesOf(c.id).push(s);
        line.push(`${c.id} ${s.mpps.toFixed(2)}`);
      }
      for (const algorithm of r % 2 ? [...ALGORITHMS].reverse() : ALGORITHMS)
        measureCrypto(algorithm);
      log(`  round ${r + 1}/${o.rounds}: ${line.join(' | ')}`);
    }

    // ---- checks: every packet taken went through the SA, none failed ----
    const failures: string[] = [];
    const checks = new Map<string, string>();
    for (const c of cases.filter((x) => x.nf)) {
      const rep = await nf.command('report', c.id);
      const report = rep.report as {
        counters: { rx: number; tx: number };
        sa: {
          packets: number;
          authFailures: number;
          replays: number;
          errors: number;
          trailerErrors: number;
        };
        policyHits?: { policies: { id: string; packets: number }[]; unmatched: number };
      };
      const { rx, tx } = report.counters;
      const sa = report.sa;
      const bad = sa.authFailures + sa.replays + sa.errors + sa.trailerErrors;
      // with an SPD: every packet by the protecting policy, none by another, none unmatched
      const spd = report.policyHits;
      const byPolicy = spd ? (spd.policies.find((x) => x.id === 'hit')?.packets ?? 0) : rx;
      const elsewhere = spd
        ? spd.unmatched + spd.policies.reduce((n, x) => n + (x.id === 'hit' ? 0 : x.packets), 0)
        : 0;
      const ok = sa.packets === rx && tx === rx && bad === 0 && byPolicy === rx && elsewhere === 0;
      checks.set(
        c.id,
        `${sa.packets} of ${rx} through the SA, ${tx} out, ${bad} failed` +
          (spd ? `, ${byPolicy} by its policy, ${elsewhere} by others or none` : ''),
      );
      if (!ok) failures.push(`${c.id}: ${checks.get(c.id)}`);
    }

    // ---- report ----
    const hz = nf.tscHz;
    const rows: string[][] = [
      [
        'case',
        'Mpps',
        'Gbit/s',
        'min..max',
        'cyc/pkt',
        'ESP stage cyc',
        'crypto alone cyc',
        'x crypto',
        'x io',
      ],
    ];
    const results = cases.map((c) => {
      const s = samplesOf(c.id);
      const mpps = median(s.map((x) => x.mpps));
      // a median only when every round has the figure
      const medianOfAll = (xs: (number | undefined)[]): number | undefined => {
        const known = xs.filter((x): x is number => x !== undefined);
        return known.length === xs.length ? median(known) : undefined;
      };
      const busy = medianOfAll(s.map((x) => x.busy));
      const stage = medianOfAll(s.map((x) => x.stage));
      const cryptoRounds = c.crypto
        ? cryptoSamples.get(`${c.crypto.algorithm}:${c.crypto.bytes}`)
        : undefined;
      const crypto = cryptoRounds ? median(cryptoRounds) : undefined;
      const floor = c.floor ? median(samplesOf(c.floor).map((x) => x.mpps)) : undefined;
      const cyc = busy ?? (mpps > 0 ? hz / (mpps * 1e6) : undefined);
      return {
        id: c.id,
        label: c.label,
        wireBytes: c.wire,
        mpps,
        mppsMin: Math.min(...s.map((x) => x.mpps)),
        mppsMax: Math.max(...s.map((x) => x.mpps)),
        gbps: (mpps * c.wire * 8) / 1000,
        cyclesPerPacket: cyc,
        espStageCycles: stage,
        cryptoAloneCycles: crypto,
        cryptoBytes: c.crypto?.bytes,
        cryptoAloneSamples: cryptoRounds,
        xCrypto: busy !== undefined && crypto ? busy / crypto : undefined,
        xIo: floor ? mpps / floor : undefined,
        check: checks.get(c.id),
        samples: s,
      };
    });
    const f = (x: number | undefined, d = 2): string => (x === undefined ? '' : x.toFixed(d));
    for (const r of results)
      rows.push([
        r.label,
        f(r.mpps),
        f(r.gbps),
        `${f(r.mppsMin)}..${f(r.mppsMax)}`,
        f(r.cyclesPerPacket, 0),
        f(r.espStageCycles, 0),
        r.cryptoAloneCycles === undefined
          ? ''
          : `${f(r.cryptoAloneCycles, 0)} (${r.cryptoBytes} B)`,
        f(r.xCrypto),
        f(r.xIo),
      ]);
    const cpu = cpuInfo();
    const table = [
      formatTable(rows),
      '',
      ...results.filter((r) => r.check).map((r) => `${r.id}: ${r.check}`),
      '',
      `targets (issue 20): cycles a packet <= 3x the crypto alone; >= 5 Mpps at 64 B with AES-GCM-128`,
      `not measured: the Linux kernel's xfrm (this kernel has no ESP: no CONFIG_INET_ESP, no modules)`,
      failures.length ? `FAILED: ${failures.join('; ')}` : 'all SA counter checks passed',
      `(${((Date.now() - t0) / 1000).toFixed(0)} s, ${o.rounds} alternating rounds of ${o.windowMs} ms windows, TSC ${(hz / 1e9).toFixed(2)} GHz)`,
      `processor: ${formatCpu(cpu)}`,
    ].join('\n');
    mkdirSync(o.out, { recursive: true });
    writeFileSync(path.join(o.out, 'ipsec.txt'), `${table}\n`);
    writeFileSync(
      path.join(o.out, 'ipsec.json'),
      JSON.stringify(
        {
          benchmark: 'flowline-ipsec-esp',
          date: new Date().toISOString(),
          tscHz: hz,
          cpu,
          rounds: o.rounds,
          windowMs: o.windowMs,
          flows: o.flows,
          results,
          failures,
        },
        null,
        1,
      ),
    );
    process.stdout.write(`${table}\nwrote ${path.join(o.out, 'ipsec.{txt,json}')}\n`);
    if (failures.length) process.exitCode = 1;
  } finally {
    for (const c of cleanups.reverse())
      await c().catch((e: unknown) => log(`cleanup: ${String(e)}`));
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  log((e as Error).stack ?? String(e));
  process.exit(1);
});
