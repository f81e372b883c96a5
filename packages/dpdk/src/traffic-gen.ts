/**
 * The native traffic generator and sink (native/fl_gen.c): one poller on one worker lcore sends
 * paced flows with a tag (flow, sequence, TSC) behind the L4 header and counts what its rx
 * queues receive per flow. JavaScript only configures it and reads counters; it never touches
 * a packet. Frame sizes count the FCS (RFC 2544), so "64" is 60 bytes in the mbuf.
 */
import { parseAddress, parseMac } from '@flowline/packet';

import { DpdkError, nativeError } from './errors';
import { requireEal, workerLcore } from './eal';
import { LcorePoller } from './lcore-poller';
import { native, type NativeAddon } from './native';
import type { Mempool } from './mempool';
import type { Backoff } from './pipeline';
import type { Port } from './port';

/** A generator configuration that does not validate; `path` names the field (flows[2].ratePps). */
export class TrafficGenError extends DpdkError {
  constructor(
    message: string,
    readonly path: string,
    op = 'traffic-gen',
    errno?: number,
  ) {
    super(path ? `${path}: ${message}` : message, op, errno);
  }
}

export interface GenFlowSpec {
  /** Port the flow is sent on. */
  port: Port | number;
  protocol: 'udp' | 'tcp';
  /** IPv4 or IPv6 (both of one family). */
  srcIp: string;
  dstIp: string;
  srcPort: number;
  dstPort: number;
  /** Default: the tx port's MAC. */
  srcMac?: string;
  /** Default: ff:ff:ff:ff:ff:ff. */
  dstMac?: string;
  /** Frame size with FCS, or 'imix' (64/594/1518 in 7:4:1, raised to the flow's minimum). Default 64 (raised likewise). */
  size?: number | 'imix';
  /** Packets per second; 0 or absent: as fast as the tx queue takes them. */
  ratePps?: number;
  /** Packets to send; 0 or absent: until stopped. */
  count?: number;
  /** TTL / hop limit. Default 64. */
  ttl?: number;
  /** TCP flags byte. Default 0x10 (ACK). */
  tcpFlags?: number;
}

export interface TrafficGenSpec {
  /** EAL worker lcore of the poller. Default: the first worker. */
  lcore?: number;
  /** Mbufs for generated frames (needed with flows; data room >= 1514 for IMIX or large frames). */
  pool?: Mempool;
  flows: GenFlowSpec[];
  /** Sink: the rx queues to count (queue 0 when absent). */
  rx?: { port: Port | number; queue?: number }[];
  /** tx queue on every flow's port. Default 0. */
  txQueue?: number;
  burst?: number;
  backoff?: Backoff;
  /** Run id in every tag (0..255); the sink counts only its own run unless acceptAnyRun. */
  run?: number;
  acceptAnyRun?: boolean;
}

export interface LatencyStats {
  samples: number;
  minNs: number;
  meanNs: number;
  p50Ns: number;
  p99Ns: number;
  maxNs: number;
}

export interface FlowResults {
  flow: number;
  txPackets: number;
  txBytes: number;
  /** Count-limited flow that has sent all its packets. */
  txDone: boolean;
  /** Tagged arrivals, duplicates included. */
  rxPackets: number;
  rxBytes: number;
  /** Highest sequence number received + 1: what should have arrived by now. */
  expected: number;
  /** expected minus distinct arrivals. */
  lost: number;
  duplicates: number;
  /** Arrived after a higher sequence number. */
  reordered: number;
  /** Reordered by more than the duplicate window (not checked for duplicates). */
  late: number;
  latency?: LatencyStats;
  /**
   * Seconds the flow was sending: from start to its last packet once a count-limited flow is
   * done, else to now (to the stop once stopped). Rates are counts over it, so a finished run's
   * rates do not fall while its results are read later.
   */
  txSeconds: number;
  /** Seconds to count its arrivals over: txSeconds, or to its last arrival if that was later. */
  rxSeconds: number;
}

export interface TrafficResults {
  running: boolean;
  /** Every flow is count-limited and has sent all of it. */
  txDone: boolean;
  flows: FlowResults[];
  rxUntagged: number;
  rxForeign: number;
  txBackpressure: number;
  allocFailed: number;
  sleeps: number;
  tscHz: number;
  /** Seconds from start to now (to the stop once stopped); 0 before the first start. */
  elapsedSeconds: number;
}

/** The run's span in TSC cycles: its start (0: never started) and now or its stop. */
export interface RunSpan {
  startTsc: number;
  endTsc: number;
  tscHz: number;
}

interface GenConstants {
  maxFlows: number;
  maxRx: number;
  histBuckets: number;
  flowCounters: number;
  globalCounters: number;
  tagLength: number;
  magic: number;
  minFrame: Record<string, number>;
}

/** The generator's part of the addon (native/addon_generator.cc, Gen* functions). */
interface GenAddon {
  genCreate(conf: unknown): number;
  genStart(gen: number): void;
  genStop(gen: number): void;
  genFree(gen: number): void;
  genCounters(gen: number): Float64Array;
  genHistogram(gen: number, flow: number): Float64Array;
  genGlobal(gen: number): Float64Array;
  genConstants(): GenConstants;
}

/** Element i of a counter array (0 past its end: the arrays are fixed-size by construction). */
const at = (a: ArrayLike<number>, i: number): number => a[i] ?? 0;

function gen(): GenAddon {
  return native() as NativeAddon & GenAddon;
}

/** Largest frame the generator builds (with FCS). */
export const MAX_FRAME_SIZE = 1518;
export const IMIX_SIZES = [64, 594, 1518] as const;
/** Sizes of one IMIX period of 12 packets (seq % 12), the order the generator sends them in. */
export const IMIX_PATTERN: readonly number[] = [0, 1, 0, 0, 1, 0, 2, 0, 1, 0, 0, 1].map(
  (i) => IMIX_SIZES[i] ?? 64,
);

/** Smallest frame (with FCS) that carries the tag: Ethernet + IP + L4 + 16 bytes + FCS, >= 64. */
export function minFrameSize(family: 4 | 6, protocol: 'udp' | 'tcp'): number {
  const l = 14 + (family === 6 ? 40 : 20) + (protocol === 'tcp' ? 20 : 8) + 16 + 4;
  return Math.max(64, l);
}

/** The frame size the generator really sends for packet `seq` of a flow (IMIX and minimums applied). */
export function frameSizeOf(
  size: number | 'imix' | undefined,
  family: 4 | 6,
  protocol: 'udp' | 'tcp',
  seq: number,
): number {
  const s = size === 'imix' ? at(IMIX_PATTERN, seq % IMIX_PATTERN.length) : (size ?? 64);
  return Math.max(s, minFrameSize(family, protocol));
}

/** Lowest latency value (cycles) of histogram bucket b and its width (see native/fl_gen.c). */
export function bucketRange(b: number): { low: number; width: number } {
  if (b < 16) return { low: b, width: 1 };
  const e = Math.floor(b / 16) + 3;
  const sub = b % 16;
  const width = 2 ** (e - 4);
  return { low: (16 + sub) * width, width };
}

/** The bucket a latency of v cycles falls in (the inverse of bucketRange; for tests and tools). */
export function bucketOf(v: number, buckets = 1024): number {
  if (v < 16) return v;
  const e = Math.floor(Math.log2(v));
  const b = (e - 3) * 16 + (Math.floor(v / 2 ** (e - 4)) % 16);
  return Math.min(b, buckets - 1);
}

/**
 * Latency statistics from a cycle histogram: quantiles by nearest rank, each reported as its
 * bucket's midpoint clamped to the exact min and max (so p50 <= p99 <= max always holds).
 */
export function latencyFromHistogram(
  hist: ArrayLike<number>,
  minCycles: number,
  maxCycles: number,
  sumCycles: number,
  tscHz: number,
): LatencyStats | undefined {
  let total = 0;
  for (let i = 0; i < hist.length; i++) total += at(hist, i);
  if (total === 0 || tscHz <= 0) return undefined;
  const ns = (c: number) => (c * 1e9) / tscHz;
  const quantile = (q: number): number => {
    const rank = Math.max(1, Math.ceil(q * total));
    let seen = 0;
    for (let b = 0; b < hist.length; b++) {
      seen += at(hist, b);
      if (seen >= rank) {
        const { low, width } = bucketRange(b);
        return Math.min(maxCycles, Math.max(minCycles, low + (width - 1) / 2));
      }
    }
    return maxCycles;
  };
  return {
    samples: total,
    minNs: ns(minCycles),
    meanNs: ns(sumCycles / total),
    p50Ns: ns(quantile(0.5)),
    p99Ns: ns(quantile(0.99)),
    maxNs: ns(maxCycles),
  };
}

const C = {
  TX_PACKETS: 0,
  TX_BYTES: 1,
  RX_PACKETS: 2,
  RX_BYTES: 3,
  RX_EXPECTED: 4,
  DUPLICATES: 5,
  REORDERED: 6,
  LATE: 7,
  LAT_MIN: 8,
  LAT_MAX: 9,
  LAT_SUM: 10,
  TX_DONE: 11,
  TX_END_TSC: 12,
  RX_LAST_TSC: 13,
} as const;

/** Whole-generator counters (layout of FL_GEN_G_CTRS). */
const G = {
  RX_UNTAGGED: 0,
  RX_FOREIGN: 1,
  TX_BACKPRESSURE: 2,
  ALLOC_FAILED: 3,
  SLEEPS: 4,
  RUNNING: 5,
  TX_DONE: 6,
  TSC_HZ: 7,
  START_TSC: 8,
  STOP_TSC: 9,
  NOW_TSC: 10,
} as const;

/** The span of a run from the generator's global counters. */
export function runSpan(glob: ArrayLike<number>): RunSpan {
  const stop = at(glob, G.STOP_TSC);
  return {
    startTsc: at(glob, G.START_TSC),
    endTsc: stop > 0 ? stop : at(glob, G.NOW_TSC),
    tscHz: at(glob, G.TSC_HZ),
  };
}

const seconds = (from: number, to: number, hz: number): number =>
  from > 0 && hz > 0 && to > from ? (to - from) / hz : 0;

/** One flow's results from its raw counters (layout of FL_GEN_FLOW_CTRS) and histogram. */
export function flowResults(
  flow: number,
  c: ArrayLike<number>,
  hist: ArrayLike<number> | undefined,
  span: RunSpan,
): FlowResults {
  const tscHz = span.tscHz;
  const txDone = at(c, C.TX_DONE) === 1;
  const txEnd = txDone && at(c, C.TX_END_TSC) > 0 ? at(c, C.TX_END_TSC) : span.endTsc;
  const rxEnd = Math.max(txEnd, at(c, C.RX_LAST_TSC));
  const rx = at(c, C.RX_PACKETS);
  const dups = at(c, C.DUPLICATES);
  const expected = at(c, C.RX_EXPECTED);
  const latency =
    hist && rx - dups > 0
      ? latencyFromHistogram(hist, at(c, C.LAT_MIN), at(c, C.LAT_MAX), at(c, C.LAT_SUM), tscHz)
      : undefined;
  return {
    flow,
    txPackets: at(c, C.TX_PACKETS),
    txBytes: at(c, C.TX_BYTES),
    txDone,
    rxPackets: rx,
    rxBytes: at(c, C.RX_BYTES),
    expected,
    lost: Math.max(0, expected - (rx - dups)),
    duplicates: dups,
    reordered: at(c, C.REORDERED),
    late: at(c, C.LATE),
    ...(latency ? { latency } : {}),
    txSeconds: seconds(span.startTsc, txEnd, tscHz),
    rxSeconds: seconds(span.startTsc, rxEnd, tscHz),
  };
}

function portId(p: Port | number): number {
  return typeof p === 'number' ? p : p.id;
}

function int(v: unknown, path: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
    throw new TrafficGenError(`must be an integer in ${min}..${max}, got ${String(v)}`, path);
  return v;
}

interface NativeFlow {
  port: number;
  family: number;
  proto: number;
  srcMac: Buffer;
  dstMac: Buffer;
  srcIp: Buffer;
  dstIp: Buffer;
  sport: number;
  dport: number;
  size: number;
  ttl: number;
  tcpFlags: number;
  ratePps: number;
  count: number;
}

function compileFlow(f: GenFlowSpec, at: string, pool: Mempool | undefined): NativeFlow {
  if (f.protocol !== 'udp' && f.protocol !== 'tcp')
    throw new TrafficGenError(
      `must be "udp" or "tcp", got ${String(f.protocol)}`,
      `${at}.protocol`,
    );
  const src = parseIpAt(f.srcIp, `${at}.srcIp`);
  const dst = parseIpAt(f.dstIp, `${at}.dstIp`);
  if (src.family !== dst.family)
    throw new TrafficGenError(
      `IPv${dst.family} while srcIp is IPv${src.family}: a flow has one family`,
      `${at}.dstIp`,
    );
  const min = minFrameSize(src.family, f.protocol);
  let size = 0;
  if (f.size !== 'imix') {
    size = f.size ?? min;
    int(size, `${at}.size`, min, MAX_FRAME_SIZE);
  }
  const rate = f.ratePps ?? 0;
  if (typeof rate !== 'number' || !Number.isFinite(rate) || rate < 0)
    throw new TrafficGenError(`must be a finite number >= 0, got ${String(rate)}`, `${at}.ratePps`);
  const count = f.count ?? 0;
  int(count, `${at}.count`, 0, Number.MAX_SAFE_INTEGER);
  if (!pool) throw new TrafficGenError('a generator with flows needs a mempool', 'pool');
  const mac = (m: string | undefined, path: string, dflt: () => Buffer): Buffer => {
    if (m === undefined) return dflt();
    try {
      return Buffer.from(parseMac(m));
    } catch (e) {
      throw new TrafficGenError((e as Error).message, path);
    }
  };
  const port = portId(f.port);
  return {
    port,
    family: src.family,
    proto: f.protocol === 'tcp' ? 6 : 17,
    srcMac: mac(f.srcMac, `${at}.srcMac`, () =>
      typeof f.port === 'number' ? native().portMac(port) : f.port.macBytes(),
    ),
    dstMac: mac(f.dstMac, `${at}.dstMac`, () => Buffer.alloc(6, 0xff)),
    srcIp: src.bytes,
    dstIp: dst.bytes,
    sport: int(f.srcPort, `${at}.srcPort`, 0, 65535),
    dport: int(f.dstPort, `${at}.dstPort`, 0, 65535),
    size,
    ttl: int(f.ttl ?? 64, `${at}.ttl`, 1, 255),
    tcpFlags: int(f.tcpFlags ?? 0x10, `${at}.tcpFlags`, 0, 255),
    ratePps: rate,
    count,
  };
}

function parseIpAt(s: string, path: string): { family: 4 | 6; bytes: Buffer } {
  try {
    const { family, bytes } = parseAddress(s);
    return { family, bytes: Buffer.from(bytes) };
  } catch (e) {
    throw new TrafficGenError((e as Error).message, path);
  }
}

let runSeq = 0;

/**
 * A generator and sink on one worker lcore. create() validates and builds every frame template;
 * start() launches the poller; results() reads counters while it runs; stop() waits for the
 * lcore and keeps the counters; close() frees it (Eal.cleanup() closes it too).
 */
export class TrafficGenerator extends LcorePoller {
  protected readonly what = 'generator';

  private constructor(
    handle: number,
    lcore: number,
    readonly run: number,
    readonly flowCount: number,
    pool: Mempool | undefined,
    ports: (Port | number)[],
  ) {
    super(
      handle,
      lcore,
      {
        start: (h) => gen().genStart(h),
        stop: (h) => gen().genStop(h),
        free: (h) => gen().genFree(h),
      },
      pool,
      ports,
    );
  }

  protected error(message: string, path: string, op?: string, errno?: number): Error {
    return new TrafficGenError(message, path, op, errno);
  }

  static create(spec: TrafficGenSpec): TrafficGenerator {
    const eal = requireEal();
    eal.assertRunning();
    const k = gen().genConstants();
    if (!Array.isArray(spec.flows)) throw new TrafficGenError('must be an array', 'flows');
    if (spec.flows.length > k.maxFlows)
      throw new TrafficGenError(`at most ${k.maxFlows} flows`, 'flows');
    const rx = spec.rx ?? [];
    if (rx.length > k.maxRx) throw new TrafficGenError(`at most ${k.maxRx} rx queues`, 'rx');
    if (spec.flows.length === 0 && rx.length === 0)
      throw new TrafficGenError('give flows to send or rx queues to count', 'flows');
    const lcore = workerLcore(spec.lcore, (why) => new TrafficGenError(why, 'lcore'));
    const run = spec.run ?? (process.pid + runSeq++) % 256;
    int(run, 'run', 0, 255);
    const closed = (m: string, at: string): Error => new TrafficGenError(m, at);
    spec.flows.forEach((f, i) => TrafficGenerator.livePort(f?.port, `flows[${i}].port`, closed));
    rx.forEach((r, i) => TrafficGenerator.livePort(r?.port, `rx[${i}].port`, closed));
    const flows = spec.flows.map((f, i) => compileFlow(f, `flows[${i}]`, spec.pool));
    const conf = {
      lcore,
      txQueue: int(spec.txQueue ?? 0, 'txQueue', 0, 1023),
      burst: int(spec.burst ?? 32, 'burst', 1, native().constants.maxBurst),
      run,
      acceptAnyRun: spec.acceptAnyRun ?? false,
      ...(spec.pool ? { pool: spec.pool.handle } : {}),
      backoff: spec.backoff ?? {},
      rx: rx.map((r, i) => ({
        port: portId(r.port),
        queue: int(r.queue ?? 0, `rx[${i}].queue`, 0, 1023),
      })),
      flows,
    };
    try {
      const ports = [...spec.flows.map((f) => f.port), ...rx.map((r) => r.port)];
      return new TrafficGenerator(
        gen().genCreate(conf),
        lcore,
        run,
        flows.length,
        spec.pool,
        ports,
      );
    } catch (e) {
      const n = nativeError(e);
      // the native checks of a field's value against the ports (their queues) name it first
      const field = /^(txQueue|rx\[\d+\]\.queue): /.exec(n.message);
      throw new TrafficGenError(
        field ? n.message.slice(field[0].length) : n.message,
        field?.[1] ?? '',
        n.op ?? 'gen_create',
        n.errno,
      );
    }
  }

  /** Every flow is count-limited and has sent all of it. */
  txDone(): boolean {
    this.assertLive();
    return gen().genGlobal(this.handle)[G.TX_DONE] === 1;
  }

  /** Counters now, per flow, with latency statistics (no packet is touched). */
  results(opts: { latency?: boolean } = {}): TrafficResults {
    this.assertLive();
    const g = gen();
    const k = g.genConstants();
    const raw = g.genCounters(this.handle);
    const glob = g.genGlobal(this.handle); // after the counters: its now is not before them
    const span = runSpan(glob);
    const flows: FlowResults[] = [];
    for (let i = 0; i * k.flowCounters < raw.length; i++) {
      const c = raw.subarray(i * k.flowCounters, (i + 1) * k.flowCounters);
      const hist =
        (opts.latency ?? true) && at(c, C.RX_PACKETS) > 0
          ? g.genHistogram(this.handle, i)
          : undefined;
      flows.push(flowResults(i, c, hist, span));
    }
    return {
      running: glob[G.RUNNING] === 1,
      txDone: glob[G.TX_DONE] === 1,
      flows,
      rxUntagged: at(glob, G.RX_UNTAGGED),
      rxForeign: at(glob, G.RX_FOREIGN),
      txBackpressure: at(glob, G.TX_BACKPRESSURE),
      allocFailed: at(glob, G.ALLOC_FAILED),
      sleeps: at(glob, G.SLEEPS),
      tscHz: span.tscHz,
      elapsedSeconds: seconds(span.startTsc, span.endTsc, span.tscHz),
    };
  }

  /** The raw latency histogram of one flow, in TSC cycles (see bucketRange). */
  histogram(flow: number): Float64Array {
    this.assertLive();
    return gen().genHistogram(this.handle, flow);
  }
}
