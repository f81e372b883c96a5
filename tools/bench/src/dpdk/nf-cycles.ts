import { must } from '../must';

/**
 * The NF's own cycles a packet on the vhost-user path, from the pipeline's counters it prints
 * when stopped (its `done` line: PipelineCycles, summed over the bursts it timed, one in 16).
 * Over the whole run, every round of the case, whether it counted or not: rx and tx include
 * vhost's copies, parse and the stages are the NF's own work.
 */
export interface NfCycles {
  total: number;
  rx: number;
  parse: number;
  /** Per stage, in pipeline order (a last l2fwd the worker did while sending reads 0). */
  stages: number[];
  tx: number;
}

interface DoneLine {
  report?: {
    cycles?: {
      sampledPackets?: number;
      rx?: number;
      parse?: number;
      tx?: number;
      stages?: { cycles?: number }[];
    };
  };
}

/** Cycles a packet from an NF's `done` line; undefined without timed packets (the JS forwarder). */
export function nfCyclesPerPacket(doneLine: string): NfCycles | undefined {
  let done: DoneLine;
  try {
    done = JSON.parse(doneLine) as DoneLine;
  } catch {
    return undefined;
  }
  const c = done.report?.cycles;
  const n = c?.sampledPackets;
  if (!c || !n || !Number.isFinite(n) || n <= 0) return undefined;
  const per = (v: number | undefined) => (Number.isFinite(v) ? (v as number) / n : 0);
  const stages = (c.stages ?? []).map((s) => per(s.cycles));
  const rx = per(c.rx);
  const parse = per(c.parse);
  const tx = per(c.tx);
  return { total: rx + parse + stages.reduce((a, b) => a + b, 0) + tx, rx, parse, stages, tx };
}

/**
 * The mean of one entry's figures from several NF processes (one per session of the run), part by
 * part; undefined when there are none or their stages differ.
 */
export function meanNfCycles(list: readonly NfCycles[]): NfCycles | undefined {
  const n = list.length;
  const [first] = list;
  if (!first || list.some((c) => c.stages.length !== first.stages.length)) return undefined;
  const mean = (f: (c: NfCycles) => number) => list.reduce((a, c) => a + f(c), 0) / n;
  return {
    total: mean((c) => c.total),
    rx: mean((c) => c.rx),
    parse: mean((c) => c.parse),
    stages: first.stages.map((_, i) => mean((c) => must(c.stages[i], `stage ${i}'s cycles`))),
    tx: mean((c) => c.tx),
  };
}

/** "262 (90+15+12+0+145)": the total, then rx, parse, each stage and tx. */
export function formatNfCycles(c: NfCycles | undefined): string {
  if (!c) return '';
  const f = (v: number) => v.toFixed(0);
  return `${f(c.total)} (${[c.rx, c.parse, ...c.stages, c.tx].map(f).join('+')})`;
}
