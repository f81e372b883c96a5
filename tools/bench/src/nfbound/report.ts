/**
 * The NF-bound benchmark's report: the JSON it writes, the table it prints and an SVG bar chart
 * of the median Mpps per case (README figures come from these files).
 */
import {
  compare,
  formatInterval,
  formatTable,
  median,
  type Comparison,
  type MedianInterval,
} from '../stats';
import { phaseGateNote, type PhaseGateSummary } from '../dpdk/headroom';
import type { VirtioRing } from '../dpdk/nf';
import { formatNfCycles, type NfCycles } from '../dpdk/nf-cycles';
import { formatCpu, type CpuInfo } from '../machine';

export interface CaseResult {
  id: string;
  label: string;
  phase: 'A' | 'B';
  peer: 'flowline' | 'testpmd' | 'ovs' | 'kernel';
  /** median over rounds */
  mpps: number;
  mppsMin: number;
  mppsMax: number;
  /** TSC cycles per packet of the one busy core (hz / pps): every case polls all the time */
  cyclesPerPacket: number;
  /** Flowline: medians of busy cycles per packet counted in the worker (rte_rdtsc) */
  busyCycles?: { total: number; source: number; parse: number; tx: number; stages: number[] };
  floor?: string;
  /** median of per-round Mpps / the floor's (testpmd io on the same trace size) */
  floorRatio?: number;
  ovs?: string;
  /** median of per-round Mpps / OVS-DPDK's with the same rules */
  ovsRatio?: number;
  kernel?: string;
  /** median of per-round Mpps / the Linux kernel's (nftables) with the same rules */
  kernelRatio?: number;
  target?: { floor?: number; ovs?: number; mpps?: number };
  /** why the OVS target was not judged: OVS was off its fast path in most windows */
  ovsUnsteady?: string;
  met?: boolean;
  check?: Record<string, unknown>;
  samples: number[];
}

export interface Report {
  benchmark: string;
  date: string;
  seconds: number;
  tscHz: number;
  /** the processor the run was on (figures move with it) */
  cpu?: CpuInfo;
  frameBytes: { ipv4: number; ipv6: number };
  rounds: number;
  /** phase A's rounds were split over this many runs of fresh processes (absent: one) */
  sessions?: number;
  windowMs: number;
  burst: number;
  flows: number;
  bigFlows: number;
  results: CaseResult[];
  sensitivity?: {
    burnCycles: number;
    measuredOverExpected: number;
    burnStageCyclesPerPacket: number;
    discriminates: boolean;
    note: string;
  };
  aclBuild: { rules: number; buildMs: number; heapBytes: number }[];
  vhost: unknown;
  failures: string[];
  /** --ab-addon: per case, this build (candidate) against the other build (reference) */
  abCompare?: (Comparison & { case: string; addonB: string })[];
  /** a cache line's round trip between the NF's two lcores, over the run's NF processes */
  lcoreRoundTrip?: LcoreRoundTrip;
}

export interface LcoreRoundTrip {
  /** TSC cycles: the median over the processes, and their least and greatest */
  cycles: number;
  min: number;
  max: number;
  ns: number;
  processes: number;
}

/** The run's round-trip figure from each NF process's measure (none: undefined). */
export function lcoreRoundTrip(
  cycles: readonly number[],
  tscHz: number,
): LcoreRoundTrip | undefined {
  if (!cycles.length || !(tscHz > 0)) return undefined;
  const mid = median([...cycles]);
  return {
    cycles: mid,
    min: Math.min(...cycles),
    max: Math.max(...cycles),
    ns: (mid * 1e9) / tscHz,
    processes: cycles.length,
  };
}

const f2 = (n: number | undefined): string => (n === undefined ? '' : n.toFixed(2));
const f0 = (n: number | undefined): string => (n === undefined ? '' : n.toFixed(0));

function targetText(r: CaseResult): string {
  const t = r.target;
  if (!t) return '';
  const parts: string[] = [];
  if (t.floor !== undefined) parts.push(`>= ${t.floor}x io`);
  if (t.ovs !== undefined && !r.ovsUnsteady) parts.push(`>= ${t.ovs}x OVS`);
  if (t.mpps !== undefined) parts.push(`>= ${t.mpps} Mpps`);
  const judged = parts.length
    ? [`${parts.join(', ')}: ${r.met === undefined ? '?' : r.met ? 'met' : 'NOT met'}`]
    : [];
  if (t.ovs !== undefined && r.ovsUnsteady)
    judged.push(`>= ${t.ovs}x OVS: not measured (${r.ovsUnsteady})`);
  return judged.join('; ');
}

function checkText(r: CaseResult): string {
  const c = r.check;
  if (!c) return '';
  const hits = c.hits as
    { ok: boolean; bins: number; binsHit: number; mismatched: number } | undefined;
  const parts: string[] = [];
  if (hits)
    parts.push(
      hits.ok
        ? `hits exact (${hits.binsHit}/${hits.bins} hit)`
        : `HITS WRONG in ${hits.mismatched}/${hits.bins}`,
    );
  if (c.lost !== undefined) parts.push(`lost ${String(c.lost)}`);
  const sh = c.shares as { ok: boolean; rulesMissed: number; distance: number } | undefined;
  if (sh)
    parts.push(
      sh.ok
        ? `rule shares as the trace (TV ${(sh.distance * 100).toFixed(2)}%)`
        : `rule shares off the trace's by TV ${(sh.distance * 100).toFixed(2)}%, ${sh.rulesMissed} rules unhit (${r.peer === 'ovs' ? "OVS's crediting; " : ''}not checked)`,
    );
  if (c.rulesUnhit !== undefined) parts.push(`${String(c.rulesUnhit)} rules unhit`);
  if (c.received !== undefined)
    parts.push(
      `received ${String(c.received)}, forwarded ${String(c.forwarded)}, dropped on receive ${String(c.droppedOnReceive)}`,
    );
  if (c.upcallsLastSecondOfWarmup !== undefined)
    parts.push(`${String(c.upcallsLastSecondOfWarmup)} upcalls/s after warm-up`);
  if (c.windowsWithUpcalls !== undefined)
    parts.push(`upcalls in ${String(c.windowsWithUpcalls)} of ${String(c.windows)} windows`);
  if (typeof c.warmupMpps === 'number' && typeof c.ofWarmup === 'number')
    parts.push(
      `warm-up ${c.warmupMpps.toFixed(2)} Mpps (windows at ${c.ofWarmup.toFixed(2)} of it)`,
    );
  if (c.steady === false) parts.push('NOT at its speed: ratios to it not judged');
  if (c.subtableLookupsPerMegaflowHit !== undefined)
    parts.push(`${Number(c.subtableLookupsPerMegaflowHit).toFixed(1)} subtables/megaflow hit`);
  if (c.established !== undefined)
    parts.push(`est ${String(c.established)}, via ACL ${String(c.throughAcl)}`);
  if (c.ok === false) parts.push('FAILED');
  return parts.join(', ');
}

/**
 * --ab-addon: a case's rounds with this build against the same rounds with the other build (the
 * reference): per-round ratios this / other, over the rounds both have.
 */
export function abComparison(
  id: string,
  addonB: string,
  thisBuild: readonly { mpps: number }[],
  otherBuild: readonly { mpps: number }[],
): Comparison & { case: string; addonB: string } {
  // the rounds both have: the first min(this, other) of them
  const rounds = otherBuild.flatMap((other, i) => {
    const mine = thisBuild[i];
    return mine ? [{ reference: other.mpps, candidate: mine.mpps }] : [];
  });
  return { case: id, addonB, ...compare(rounds) };
}

export function renderReport(r: Report): { table: string; svg: string } {
  const rows: string[][] = [
    [
      'phase',
      'case',
      'Mpps',
      'min..max',
      'cyc/pkt',
      'busy cyc/pkt (src+parse+stages+tx)',
      'x io',
      'x OVS',
      'x kernel',
      'target',
      'counters',
    ],
  ];
  for (const x of r.results) {
    const b = x.busyCycles;
    rows.push([
      x.phase,
      x.label,
      f2(x.mpps),
      `${f2(x.mppsMin)}..${f2(x.mppsMax)}`,
      f0(x.cyclesPerPacket),
      b
        ? `${f0(b.total)} (${f0(b.source)}+${f0(b.parse)}+${b.stages.map(f0).join('+')}+${f0(b.tx)})`
        : '',
      f2(x.floorRatio),
      f2(x.ovsRatio),
      f2(x.kernelRatio),
      targetText(x),
      checkText(x),
    ]);
  }
  const lines = [formatTable(rows)];
  if (r.sensitivity) lines.push('', `sensitivity control: ${r.sensitivity.note}`);
  for (const ab of r.abCompare ?? [])
    lines.push(
      `${ab.case}: this build / ${ab.addonB} = ${ab.ratio.toFixed(3)} (median of ${ab.rounds} per-round ratios, ${ab.ratioMin.toFixed(3)}..${ab.ratioMax.toFixed(3)})`,
    );
  if (r.aclBuild.length) {
    lines.push(
      '',
      formatTable([
        ['rte_acl rules', 'build (ms, updateAcl)', 'hugepage memory (MiB)'],
        ...r.aclBuild.map((a) => [
          a.rules.toLocaleString('en-US'),
          a.buildMs.toFixed(0),
          (a.heapBytes / 2 ** 20).toFixed(1),
        ]),
      ]),
    );
  }
  const v = r.vhost as
    | {
        results?: {
          label: string;
          candidateMedian: number;
          referenceMedian: number;
          ratio: number;
          ratioInterval?: MedianInterval;
          target?: number;
          met?: boolean;
          countedRounds?: number;
          triedRounds?: number;
          nfCycles?: NfCycles;
        }[];
        control?: { note: string };
        phaseGate?: PhaseGateSummary;
        ring?: VirtioRing;
        error?: string;
      }
    | undefined;
  if (v?.results)
    lines.push(
      '',
      `vhost-user topology (NF is the net_vhost side and does the copies; a frame replay generates; ${v.ring ?? 'split'} virtqueues):`,
      formatTable([
        [
          'case',
          'rounds counted',
          'Mpps',
          'testpmd io Mpps',
          'ratio',
          "median's CI",
          'target',
          'NF cyc/pkt (rx+parse+stages+tx)',
        ],
        ...v.results.map((x) => [
          x.label,
          x.triedRounds !== undefined ? `${x.countedRounds ?? 0}/${x.triedRounds}` : '',
          f2(x.candidateMedian),
          f2(x.referenceMedian),
          x.ratio.toFixed(3),
          x.ratioInterval ? formatInterval(x.ratioInterval) : '',
          x.target === undefined
            ? 'control'
            : `>= ${x.target}: ${x.met === undefined ? 'not measured' : x.met ? 'met' : 'NOT met'}`,
          formatNfCycles(x.nfCycles),
        ]),
      ]),
      v.control?.note ?? 'sensitivity control: not run',
      ...(v.phaseGate ? [phaseGateNote(v.phaseGate)] : []),
    );
  else if (v?.error) lines.push('', `vhost-user topology: ${v.error}`);
  lines.push(
    '',
    r.failures.length ? `FAILURES:\n  ${r.failures.join('\n  ')}` : 'all counter checks passed',
  );
  lines.push(
    `(${r.seconds} s, ${r.rounds} interleaved rounds of ${r.windowMs} ms windows${r.sessions && r.sessions > 1 ? `, phase A's over ${r.sessions} sessions of fresh processes` : ''}, TSC ${(r.tscHz / 1e9).toFixed(2)} GHz)`,
  );
  const rt = r.lcoreRoundTrip;
  // what two polling cores pay for each cache line they hand each other (the vhost-user path's
  // virtqueues): read beside that topology's figures
  if (rt)
    lines.push(
      `core to core: a cache line's round trip between the NF's two lcores took ${f0(rt.cycles)} cycles (${f0(rt.ns)} ns; median of ${rt.processes} NF process${rt.processes > 1 ? 'es' : ''}, ${f0(rt.min)}..${f0(rt.max)})`,
    );
  if (r.cpu) lines.push(`processor: ${formatCpu(r.cpu)}`);
  return { table: lines.join('\n'), svg: svgChart(r) };
}

const esc = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Horizontal bars: median Mpps per case, min..max whiskers, colour by peer. */
export function svgChart(r: Report): string {
  const rowH = 22;
  const left = 330;
  const width = 900;
  const plotW = width - left - 90;
  const top = 40;
  const max = Math.max(1, ...r.results.map((x) => x.mppsMax));
  const h = top + r.results.length * rowH + 40;
  const colour = {
    flowline: '#2b6cb0',
    testpmd: '#718096',
    ovs: '#c05621',
    kernel: '#2f855a',
  } as const;
  const x = (v: number): number => left + (v / max) * plotW;
  const bars = r.results.map((c, i) => {
    const y = top + i * rowH;
    return [
      `<text x="${left - 8}" y="${y + 15}" text-anchor="end" font-size="12">${esc(c.label)}</text>`,
      `<rect x="${left}" y="${y + 3}" width="${(x(c.mpps) - left).toFixed(1)}" height="${rowH - 6}" fill="${colour[c.peer]}"/>`,
      `<line x1="${x(c.mppsMin).toFixed(1)}" x2="${x(c.mppsMax).toFixed(1)}" y1="${y + rowH / 2}" y2="${y + rowH / 2}" stroke="#1a202c"/>`,
      `<text x="${(x(c.mppsMax) + 6).toFixed(1)}" y="${y + 15}" font-size="12">${c.mpps.toFixed(2)}</text>`,
    ].join('');
  });
  const ticks: string[] = [];
  for (let v = 0; v <= max; v += max > 20 ? 5 : 2)
    ticks.push(
      `<line x1="${x(v)}" x2="${x(v)}" y1="${top}" y2="${h - 35}" stroke="#e2e8f0"/><text x="${x(v)}" y="${h - 20}" font-size="11" text-anchor="middle">${v}</text>`,
    );
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${h}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="22" font-size="14" font-weight="bold">Mpps per case, one core, NF-bound (median of ${r.rounds} interleaved rounds; whiskers min..max)</text>`,
    ...ticks,
    ...bars,
    `<text x="${left + plotW / 2}" y="${h - 5}" font-size="11" text-anchor="middle">Mpps (64-byte frames)</text>`,
    '</svg>',
  ].join('\n');
}
