/**
 * The native pipeline: TypeScript declares input ports, ordered stages and worker lcores; the
 * addon runs it in C on those lcores, in bursts, run to completion. JavaScript only configures,
 * swaps tables (RCU: build aside, publish, free after every worker's quiescent state), reads
 * counters, and handles punted packets.
 */
import { parseMac } from '@flowline/packet';

import { compileAcl, compileAclAsync, packAcl, type AclRule, type NativeAclRule } from './acl';
import type { PacketBatch } from './batch';
import { PipelineError, nativeError } from './errors';
import {
  espNative,
  type EspPolicy,
  type EspPolicyHits,
  type EspSa,
  type EspSaCounters,
  type EspStage,
} from './esp';
import { requireEal } from './eal';
import { compileRoutes, type RoutingTable } from './lpm';
import { native } from './native';
import { openPort, type Port } from './port';

export type FateAction = 'pass' | 'drop' | 'punt';

export interface L2FwdStage {
  kind: 'l2fwd';
  name?: string;
  /** Output port per input port. */
  forward: { from: Port | number; to: Port | number }[];
  /** MAC rewrite per output port: src 'port' uses the output port's MAC. */
  rewrite?: { port: Port | number; src?: string | 'port'; dst?: string }[];
}

export interface AclStage {
  kind: 'acl';
  name?: string;
  /**
   * Initial rules, built on the JavaScript thread in Pipeline.create: at most
   * MAX_CREATE_ACL_RULES native rules. Larger tables: `await updateAcl` (built off the event loop).
   */
  rules?: AclRule[];
  /**
   * Bound on the rte_acl runtime structures of one table per IP family, MiB (default 256):
   * past it rte_acl builds smaller, slower tries, then refuses the table.
   */
  maxTableMb?: number;
  /** When no rule matches. Default 'deny'. */
  defaultAction?: 'permit' | 'deny';
  /** Non-IP packets (ARP included). Default 'pass'. */
  nonIp?: FateAction;
  /** Non-first fragments, which carry no ports. Default 'drop'. */
  fragments?: FateAction;
}

export interface LpmStage {
  kind: 'lpm';
  name?: string;
  table?: RoutingTable;
  /** Default 'punt' (the slow path can answer with ICMP unreachable). */
  noRoute?: 'drop' | 'punt';
  /** Non-IP, non-ARP packets. ARP is always punted. Default 'drop'. */
  nonIp?: FateAction;
  /**
   * Count the packets each route forwards (routeHits): 8 bytes per route and worker, and one
   * more table read per packet. Default false.
   */
  countHits?: boolean;
}

/**
 * Burns `cycles` TSC cycles per packet and passes it on: a benchmark's sensitivity control (a
 * known cost that must show up as the expected drop in throughput).
 */
export interface BurnStage {
  kind: 'burn';
  name?: string;
  cycles: number;
}

export interface ConntrackTimeouts {
  /** SYN seen, handshake not complete. Default 30 s. */
  tcpSynMs?: number;
  /** Default 3600 s. */
  tcpEstablishedMs?: number;
  /** After a FIN from either side or a RST. Default 30 s. */
  tcpClosingMs?: number;
  /** Default 60 s. */
  udpMs?: number;
  /** ICMP/ICMPv6 echo. Default 30 s. */
  icmpMs?: number;
  /**
   * A cached ACL denial of a TCP or UDP flow, since its last packet. Default 10 s. A change of
   * ACL table ends every denial at once, whatever this says.
   */
  deniedMs?: number;
}

/**
 * Connection tracking; must come right before an acl stage, in a one-worker pipeline (the
 * table has a single writer). Packets of tracked flows (both directions) skip that ACL; a
 * packet the ACL permits opens a flow (TCP SYN, UDP, ICMP echo request), so the replies of
 * permitted flows pass and unsolicited inbound traffic meets the ACL. ICMP errors quoting a
 * packet of a tracked flow (unreachable, fragmentation needed / packet too big, time exceeded,
 * parameter problem) pass too, addressed to the quoted packet's sender.
 */
export interface ConntrackStage {
  kind: 'conntrack';
  name?: string;
  /**
   * Flow table entries per address family, rounded up to a power of two: an IPv4 table and an
   * IPv6 table of that many (hugepage memory: 34 bytes an IPv4 entry, a 32-byte slot and a
   * 2-byte tag, 66 an IPv6 one, in buckets of 32). Default 262,144 (25 MiB for both), for up to
   * about 64k flows of each family. Size it at about 4x the flows it must hold: a new flow whose
   * bucket is full evicts the bucket's least recently seen flow (or is dropped, whenFull
   * 'drop'), and at 2x about 15 flows in a million land in a full bucket, at 4x practically none
   * (5 in 10^12).
   */
  capacity?: number;
  timeouts?: ConntrackTimeouts;
  /**
   * A new flow whose bucket is full of live flows: 'evict' pushes out the bucket's least
   * recently seen flow (default), 'drop' drops the new flow's packet (reason conntrack_full).
   */
  whenFull?: 'evict' | 'drop';
}

export interface ConntrackCounters {
  /** Slots in use, both families (expired flows count until reclaimed). */
  entries: number;
  /** Entries per address family (the table of each family has this many). */
  capacity: number;
  created: number;
  expired: number;
  evicted: number;
  /** Packets of tracked flows, either direction. */
  hits: number;
  /** Of those, packets in the reply direction. */
  replyHits: number;
  /** New flows dropped because their bucket was full (whenFull 'drop'). */
  tableFull: number;
  /** ICMP errors about a tracked flow that passed (counted in hits too). */
  related: number;
  /** Flows removed by flushConntrack (and cached denials of an ACL table no longer in force). */
  flushed: number;
  /** Denials cached: TCP and UDP flows the paired ACL denied (their later packets skip it). */
  denied: number;
  /** Packets dropped by a cached denial (the ACL rule that denied the flow counts them too). */
  deniedHits: number;
  /** Cached denials that gave their slot to a new flow (a denial never takes a live flow's). */
  deniedEvicted: number;
}

export const CONNTRACK_DEFAULTS = {
  capacity: 262_144,
  timeouts: {
    tcpSynMs: 30_000,
    tcpEstablishedMs: 3_600_000,
    tcpClosingMs: 30_000,
    udpMs: 60_000,
    icmpMs: 30_000,
    /** A cached ACL denial, since the flow's last packet (OVS's megaflow idle time). */
    deniedMs: 10_000,
  },
} as const;
// The order of enum fl_ct_timeout.
const TIMEOUT_KEYS = [
  'tcpSynMs',
  'tcpEstablishedMs',
  'tcpClosingMs',
  'udpMs',
  'icmpMs',
  'deniedMs',
] as const;

/** The native conntrack configuration, or a PipelineError naming the bad field. */
function conntrackConf(
  s: ConntrackStage,
  at: string,
): { capacity: number; timeoutsMs: number[]; evict: boolean } {
  const capacity = s.capacity ?? CONNTRACK_DEFAULTS.capacity;
  if (!Number.isInteger(capacity) || capacity < 64 || capacity > 1 << 24)
    throw new PipelineError(`must be an integer 64..${1 << 24}, got ${capacity}`, `${at}.capacity`);
  const timeoutsMs = TIMEOUT_KEYS.map((k) => {
    const v = s.timeouts?.[k] ?? CONNTRACK_DEFAULTS.timeouts[k];
    if (!Number.isInteger(v) || v < 1 || v > 0xffffffff)
      throw new PipelineError(`must be a whole number of ms >= 1, got ${v}`, `${at}.timeouts.${k}`);
    return v;
  });
  const whenFull = s.whenFull ?? 'evict';
  if (whenFull !== 'evict' && whenFull !== 'drop')
    throw new PipelineError(`must be "evict" or "drop", got ${String(whenFull)}`, `${at}.whenFull`);
  return { capacity, timeoutsMs, evict: whenFull === 'evict' };
}

/** The longest back-off sleep, µs: a stop waits for a sleeping worker (the native side's too). */
export const MAX_BACKOFF_SLEEP_US = 1_000_000;
/** The longest wait in epoll, ms (an int to epoll_wait; the native side's bound too). */
export const MAX_INTERRUPT_WAIT_MS = 60_000;

/** The back-off the addon takes, or a PipelineError naming the field. */
function backoffOf(b: Backoff | undefined): Backoff {
  if (b === undefined) return {};
  if (typeof b !== 'object' || b === null)
    throw new PipelineError(`must be an object, got ${String(b)}`, 'backoff');
  const int = (k: keyof Backoff, min: number, max: number, unit: string): void => {
    const v = b[k];
    if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max))
      throw new PipelineError(
        `must be an integer ${min}..${max}${unit}, got ${String(v)}`,
        `backoff.${k}`,
      );
  };
  int('spinPolls', 0, 0xffffffff, '');
  int('sleepMinUs', 0, MAX_BACKOFF_SLEEP_US, ' µs');
  int('sleepMaxUs', 0, MAX_BACKOFF_SLEEP_US, ' µs');
  int('interruptWaitMs', 1, MAX_INTERRUPT_WAIT_MS, ' ms');
  // the addon's defaults: 1 and 500
  const min = b.sleepMinUs ?? 1;
  const max = b.sleepMaxUs ?? 500;
  if (min > max)
    throw new PipelineError(
      `${min} µs is more than sleepMaxUs (${max} µs${b.sleepMaxUs === undefined ? ', the default' : ''})`,
      'backoff.sleepMinUs',
    );
  if (b.shareCore !== undefined && typeof b.shareCore !== 'boolean')
    throw new PipelineError(`must be a boolean, got ${String(b.shareCore)}`, 'backoff.shareCore');
  return b;
}

function rxModeOf(m: RxMode): RxMode {
  if (!['poll', 'adaptive', 'interrupt', 'timer'].includes(m))
    throw new PipelineError(
      `rxMode must be poll, adaptive, interrupt or timer, got ${String(m)}`,
      'rxMode',
    );
  return m;
}

export type StageSpec = L2FwdStage | AclStage | LpmStage | ConntrackStage | BurnStage | EspStage;

export interface Backoff {
  /**
   * Empty polls (each with rte_pause) before the worker starts sleeping. Default 4096 (about
   * 100-200 us of emptiness): fewer let a busy port's momentary gaps put the worker to sleep.
   */
  spinPolls?: number;
  /** First sleep, microseconds: 0..sleepMaxUs. Default 1. */
  sleepMinUs?: number;
  /**
   * Sleeps double up to this, microseconds: at most MAX_BACKOFF_SLEEP_US (1 s; a stop waits
   * for a sleeping worker). Default 500.
   */
  sleepMaxUs?: number;
  /**
   * rxMode adaptive/interrupt: the longest wait in epoll, ms, 1..MAX_INTERRUPT_WAIT_MS (60 s;
   * default 100): a kick lost (a peer that reconnected) costs at most this.
   */
  interruptWaitMs?: number;
  /**
   * The worker shares its core with other pollers (default false): a poll that comes back short
   * (fewer than a burst: it has caught up) and every empty spin poll yield the CPU
   * (sched_yield) instead of holding it to the end of the scheduler's slice, so that the poller
   * that has packets runs sooner. Off for a worker with a core of its own (rxMode poll).
   */
  shareCore?: boolean;
}

/**
 * How an idle worker waits for packets (VPP's rx-mode). `poll`: never sleeps. `adaptive`: after
 * `backoff.spinPolls` empty polls it arms its inputs' rx interrupts (ports opened with
 * `rxInterrupts: true`) and sleeps in epoll until the peer kicks, a frame is injected, or the
 * pipeline stops. `interrupt`: adaptive with no spinning (spinPolls 0). `timer` (default): sleeps
 * on timers doubling from sleepMinUs to sleepMaxUs. A worker any of whose inputs has no rx
 * interrupt uses the timer back-off in adaptive and interrupt mode.
 */
export type RxMode = 'poll' | 'adaptive' | 'interrupt' | 'timer';

/** This build's workers can wait on rx interrupts (nf-runtime reads it). */
export const RX_INTERRUPTS = true;

export interface RxWaits {
  /** Idle waits in epoll since the pipeline was created. */
  waits: number;
  /** Of those, the ones a queue's kick ended (not a timeout or a wake). */
  kicked: number;
  /** Workers that wait on rx interrupts (the others use the timer back-off). */
  interruptWorkers: number;
  /** Times the workers gave up the CPU (backoff.shareCore). */
  yields: number;
}

export interface WorkerSpec {
  /** EAL worker lcore. */
  lcore: number;
  /** Ports and queues this worker polls. */
  inputs: { port: Port | number; queue: number }[];
  /** This worker's tx queue on every output port. */
  txQueue: number;
}

export interface PipelineSpec {
  /** Either input ports (worker i polls queue i of each, and sends on tx queue i) ... */
  inputs?: (Port | number)[];
  /** ... how many workers to spread them over (default 1, on the first EAL worker lcores) ... */
  workers?: number;
  /** ... or an explicit worker layout. */
  layout?: WorkerSpec[];
  stages: StageSpec[];
  burst?: number;
  backoff?: Backoff;
  /** How idle workers wait: see RxMode. Default `timer`. */
  rxMode?: RxMode;
  puntRingSize?: number;
  injectRingSize?: number;
  /**
   * Tests: the conntrack stage's clock stands still until advanceClock(ms) moves it, so flow
   * expiry is exact and needs no waiting. Default false (the TSC).
   */
  manualClock?: boolean;
}

/** Native ACL rules Pipeline.create builds synchronously from a stage's initial `rules`. */
export const MAX_CREATE_ACL_RULES = 4096;

export interface StageCounters {
  name: string;
  kind: string;
  in: number;
  out: number;
  drops: Record<string, number>;
  punts: Record<string, number>;
}

export interface PipelineCounters {
  rx: number;
  tx: number;
  /** Packets dropped at the end of the pipeline (no_output, tx_full, punt_full). */
  drops: Record<string, number>;
  /** Packets handed to the punt ring, by reason. */
  punts: Record<string, number>;
  stages: StageCounters[];
}

/**
 * Busy TSC cycles of the pipeline's workers, counted with rte_rdtsc in the worker (empty polls
 * and idle sleeps are not counted). `busy` covers every burst that brought packets; the parts
 * (rx, parse, tx, stages) are timed in one burst of every 16, whose packets `sampledPackets`
 * counts: a part's cycles per packet is part / sampledPackets.
 */
export interface PipelineCycles {
  /** TSC frequency, Hz. */
  hz: number;
  /**
   * Whole bursts: rx call to the end of tx, timed in the same bursts as the parts and scaled to
   * every packet (divide by the pipeline's rx).
   */
  busy: number;
  /** Packets of the bursts whose parts were timed. */
  sampledPackets: number;
  /** The rx burst calls (for a software source such as net_pcap: the source's own work). */
  rx: number;
  /** Parsing and per-packet set-up. */
  parse: number;
  /**
   * Sorting by fate, tx burst, punt, free; and a last l2fwd stage's work on the bursts whose
   * output it does not rewrite (the worker does it while sending, so that stage's own figure
   * counts only the other bursts).
   */
  tx: number;
  /** Per stage, by name. */
  stages: { name: string; kind: string; cycles: number }[];
}

export interface RuleHits {
  id: string;
  hits: number;
}

const ACTION: Record<FateAction | 'permit' | 'deny', number> = {
  pass: 0,
  permit: 0,
  drop: 1,
  deny: 1,
  punt: 2,
};

function portId(p: Port | number): number {
  return typeof p === 'number' ? p : p.id;
}

/** l2fwd indexes its tables by port id: ports 0..63. */
const MAX_L2_PORT = 63;

export function reasons(): readonly string[] {
  return native().constants.reasons;
}

function policyHits(ids: readonly string[], counts: readonly number[]): EspPolicyHits {
  return {
    policies: ids.map((id, i) => ({ id, packets: counts[i] ?? 0 })),
    unmatched: counts[ids.length] ?? 0,
  };
}

export class Pipeline {
  private running = false;
  private freed = false;
  private untrack: () => void;
  private aclIds = new Map<number, string[]>();
  private aclOwners = new Map<number, number[]>();
  /** The ids of each ESP stage's current policies, in order. */
  private espPolicyIds = new Map<number, string[]>();
  /** ACL updates run one at a time, in call order (a table swap per update). */
  private aclQueue: Promise<unknown> = Promise.resolve();
  /**
   * The ports its workers poll or send on, which must not close under them: inputs, l2fwd
   * outputs and ports injected to (until close: the inject ring may still hold their
   * packets), and each LPM stage's next-hop ports (its current table's).
   */
  private readonly fixedPorts = new Set<Port>();
  private readonly routePorts = new Map<number, Set<Port>>();
  private readonly usedPorts = new Set<Port>();

  private constructor(
    readonly handle: number,
    readonly stages: readonly {
      name: string;
      kind: StageSpec['kind'];
      index: number;
    }[],
    /** How ports name it to a close they refuse. */
    private readonly what: string,
  ) {
    this.untrack = requireEal().track(() => this.close());
  }

  static create(spec: PipelineSpec): Pipeline {
    const eal = requireEal();
    const n = native();
    if (!spec || !Array.isArray(spec.stages) || spec.stages.length === 0)
      throw new PipelineError('a pipeline needs at least one stage', 'stages');
    const layout = spec.layout ?? defaultLayout(spec, eal.lcores().workers);
    if (layout.length === 0) throw new PipelineError('no workers', 'layout');
    const burst = spec.burst ?? 32;
    if (!Number.isInteger(burst) || burst < 1 || burst > n.constants.maxBurst)
      throw new PipelineError(`burst must be 1..${n.constants.maxBurst}`, 'burst');
    // Checked here to name the field; the native side checks them again (and each input's rx
    // queue against its port's, and that no two workers share a queue).
    const ringSize = (v: number | undefined, field: string): number => {
      const x = v ?? 1024;
      if (!Number.isInteger(x) || x < 2 || x > 1 << 24)
        throw new PipelineError(`${String(x)} is not a ring size in 2..${1 << 24}`, field);
      return x;
    };
    const queue = (v: number, field: string): number => {
      if (!Number.isInteger(v) || v < 0 || v > 0xffff)
        throw new PipelineError(`${String(v)} is not a queue number (0..65535)`, field);
      return v;
    };
    layout.forEach((w, i) => {
      queue(w.txQueue, `layout[${i}].txQueue`);
      w.inputs.forEach((input, j) => queue(input.queue, `layout[${i}].inputs[${j}].queue`));
    });
    const backoff = backoffOf(spec.backoff);
    const conf = {
      burst,
      backoff: spec.rxMode === 'interrupt' ? { ...backoff, spinPolls: 0 } : backoff,
      ...(spec.rxMode !== undefined ? { rxMode: rxModeOf(spec.rxMode) } : {}),
      puntRingSize: ringSize(spec.puntRingSize, 'puntRingSize'),
      injectRingSize: ringSize(spec.injectRingSize, 'injectRingSize'),
      manualClock: spec.manualClock === true,
      workers: layout.map((w) => ({
        lcore: w.lcore,
        txQueue: w.txQueue,
        inputs: w.inputs.map((i) => ({ port: portId(i.port), queue: i.queue })),
      })),
    };
    let handle: number;
    try {
      handle = n.pipelineCreate(conf);
    } catch (e) {
      throw new PipelineError(
        nativeError(e).message,
        'layout',
        'pipeline_create',
        nativeError(e).errno,
      );
    }
    const stages: { name: string; kind: StageSpec['kind']; index: number }[] = [];
    const lcores = layout.map((w) => w.lcore);
    const p = new Pipeline(
      handle,
      stages,
      `a pipeline on lcore${lcores.length === 1 ? '' : 's'} ${lcores.join(', ')}`,
    );
    try {
      layout.forEach((w, i) =>
        w.inputs.forEach((input, j) =>
          p.usePort(input.port, spec.layout ? `layout[${i}].inputs[${j}].port` : `inputs[${j}]`),
        ),
      );
      spec.stages.forEach((s, i) => {
        const at = `stages[${i}]`;
        const name = s.name ?? `${s.kind}${i}`;
        let index: number;
        if (s.kind === 'l2fwd') {
          const rewrite = (s.rewrite ?? []).map((r, j) => {
            const pid = portId(r.port);
            const mac = (m: string, f: string): Buffer => {
              try {
                return m === 'port' ? n.portMac(pid) : Buffer.from(parseMac(m));
              } catch (e) {
                throw new PipelineError((e as Error).message, `${at}.rewrite[${j}].${f}`);
              }
            };
            return {
              port: pid,
              ...(r.src !== undefined ? { src: mac(r.src, 'src') } : {}),
              ...(r.dst !== undefined ? { dst: mac(r.dst, 'dst') } : {}),
            };
          });
          const map = s.forward.map((f, j) => ({
            in: p.l2Port(f.from, `${at}.forward[${j}].from`, false),
            out: p.l2Port(f.to, `${at}.forward[${j}].to`, true),
          }));
          (s.rewrite ?? []).forEach((r, j) => p.l2Port(r.port, `${at}.rewrite[${j}].port`, false));
          index = n.pipelineAddStage(handle, 'l2fwd', { map, rewrite });
        } else if (s.kind === 'acl') {
          const mb = s.maxTableMb ?? 256;
          if (!Number.isInteger(mb) || mb < 1 || mb > 65_536)
            throw new PipelineError(`must be an integer 1..65536, got ${mb}`, `${at}.maxTableMb`);
          index = n.pipelineAddStage(handle, 'acl', {
            maxSize: mb * 2 ** 20,
            defaultAction: ACTION[s.defaultAction ?? 'deny'],
            nonIpAction: ACTION[s.nonIp ?? 'pass'],
            fragmentAction: ACTION[s.fragments ?? 'drop'],
          });
        } else if (s.kind === 'conntrack') {
          if (spec.stages[i + 1]?.kind !== 'acl')
            throw new PipelineError(
              'a conntrack stage must come right before an acl stage',
              `${at}.kind`,
            );
          if (layout.length !== 1)
            throw new PipelineError(
              `a conntrack stage needs exactly one worker (its table has one writer), got ${layout.length}`,
              'workers',
            );
          index = n.pipelineAddStage(handle, 'conntrack', conntrackConf(s, at));
        } else if (s.kind === 'lpm') {
          index = n.pipelineAddStage(handle, 'lpm', {
            noRouteAction: ACTION[s.noRoute ?? 'punt'],
            nonIpAction: ACTION[s.nonIp ?? 'drop'],
            countHits: s.countHits === true,
          });
        } else if (s.kind === 'burn') {
          if (!Number.isInteger(s.cycles) || s.cycles < 0 || s.cycles > 1_000_000)
            throw new PipelineError(
              `must be an integer 0..1000000, got ${s.cycles}`,
              `${at}.cycles`,
            );
          index = n.pipelineAddStage(handle, 'burn', { cycles: s.cycles });
        } else if (s.kind === 'esp') {
          if (layout.length !== 1)
            throw new PipelineError(
              `an esp stage needs exactly one worker (rte_ipsec's sequence state has one writer), got ${layout.length}`,
              'workers',
            );
          index = espNative.addStage(handle, s, at);
        } else {
          throw new PipelineError(
            `unknown stage kind ${JSON.stringify((s as { kind: unknown }).kind)}`,
            `${at}.kind`,
          );
        }
        if (stages.some((x) => x.name === name))
          throw new PipelineError(`stage name "${name}" is used twice`, `${at}.name`);
        stages.push({ name, kind: s.kind, index });
        if (s.kind === 'acl' && s.rules) p.createAcl(name, s.rules, `${at}.rules`);
        if (s.kind === 'lpm' && s.table) p.updateRoutes(name, s.table);
      });
    } catch (e) {
      p.close();
      throw e;
    }
    return p;
  }

  private stage(
    ref: string | number,
    kind?: StageSpec['kind'],
  ): { name: string; kind: StageSpec['kind']; index: number } {
    const s = typeof ref === 'number' ? this.stages[ref] : this.stages.find((x) => x.name === ref);
    if (!s)
      throw new PipelineError(
        `no stage ${JSON.stringify(ref)} (stages: ${this.stages.map((x) => x.name).join(', ')})`,
        'stage',
      );
    if (kind && s.kind !== kind)
      throw new PipelineError(`stage ${s.name} is ${s.kind}, not ${kind}`, 'stage');
    return s;
  }

  start(): void {
    this.assertLive();
    try {
      native().pipelineStart(this.handle);
    } catch (e) {
      throw new PipelineError(
        nativeError(e).message,
        'layout',
        'pipeline_start',
        nativeError(e).errno,
      );
    }
    this.running = true;
  }

  /** Stops the workers (they finish their current burst). */
  stop(): void {
    if (this.freed || !this.running) return;
    native().pipelineStop(this.handle);
    this.running = false;
  }

  get isRunning(): boolean {
    return this.running;
  }

  /**
   * An l2fwd port: an integer 0..63 and, for an output, a port every worker can send on
   * (attached, with the worker's tx queue). PipelineError naming the field otherwise.
   */
  private l2Port(p: Port | number, at: string, output: boolean): number {
    const id = portId(p);
    if (!Number.isInteger(id) || id < 0 || id > MAX_L2_PORT)
      throw new PipelineError(`port ${String(id)} is not a port id 0..${MAX_L2_PORT}`, at);
    if (output) {
      this.checkOutput(id, at);
      this.usePort(p, at);
    }
    return id;
  }

  /** Registers with port (an input, an output, an inject target) until close. */
  private usePort(port: Port | number, at: string): void {
    const p = openPort(port);
    if (!p) return; // no Port of this process has the id: the native side checks it is attached
    if (p.isClosed) throw new PipelineError(`port ${p.name} was closed`, at);
    this.fixedPorts.add(p);
    this.syncPorts();
  }

  /** Registers with the ports it uses now, unregisters from those it no longer does. */
  private syncPorts(): void {
    const now = new Set(this.fixedPorts);
    for (const ports of this.routePorts.values()) for (const p of ports) now.add(p);
    for (const p of now)
      if (!this.usedPorts.has(p)) {
        p.use(this, this.what);
        this.usedPorts.add(p);
      }
    for (const p of this.usedPorts)
      if (!now.has(p)) {
        p.unuse(this);
        this.usedPorts.delete(p);
      }
  }

  /** Refuses a port the workers cannot transmit on, naming the field. */
  private checkOutput(port: number, at: string): void {
    const why = native().pipelineCheckPort(this.handle, port);
    if (why !== null) throw new PipelineError(why, at);
  }

  /** Refuses more native rules than a table holds (maxAclRules), naming the rules. */
  private checkCount(rules: AclRule[], compiled: NativeAclRule[], at: string): NativeAclRule[] {
    const max = native().constants.maxAclRules;
    if (compiled.length > max)
      throw new PipelineError(
        `${rules.length} rules compile to ${compiled.length} native rules (a rule with no family ` +
          `counts twice); a table holds at most ${max}`,
        at,
      );
    return compiled;
  }

  /** Pipeline.create: a stage's initial (small) table, built on this thread. */
  private createAcl(name: string, rules: AclRule[], at: string): void {
    const s = this.stage(name, 'acl');
    const compiled = this.checkCount(rules, compileAcl(rules, at), at);
    if (compiled.length > MAX_CREATE_ACL_RULES)
      throw new PipelineError(
        `${compiled.length} native rules are too many to build in Pipeline.create, on the event ` +
          `loop (at most ${MAX_CREATE_ACL_RULES}): create the stage without rules and ` +
          '`await updateAcl`, which builds off the event loop',
        at,
      );
    let raw: number[];
    try {
      raw = native().pipelineSetAcl(this.handle, s.index, packAcl(compiled), true);
    } catch (e) {
      throw aclBuildError(s.name, e);
    }
    this.installed(s.index, rules, compiled, raw);
  }

  /**
   * Replaces an ACL stage's rules while traffic runs. The table is built off the event loop
   * (libuv's thread pool; seconds at tens of thousands of rules), then swapped in on it.
   * Resolves to the per-rule hits of the table it replaced, final because every worker has
   * passed a quiescent state before it was freed. Updates of one pipeline apply in call order;
   * a rejected one (PipelineError naming the rule) changes nothing.
   */
  updateAcl(stage: string | number, rules: AclRule[]): Promise<{ retired: RuleHits[] }> {
    let s: { name: string; index: number };
    try {
      this.assertLive();
      s = this.stage(stage, 'acl');
    } catch (e) {
      return Promise.reject(e);
    }
    const at = `stages[${s.name}].rules`;
    // validated in slices that yield to the event loop, packed, then built on the thread pool
    const compiled = compileAclAsync(rules, at).then((c) => this.checkCount(rules, c, at));
    compiled.catch(() => undefined); // rejected while queued: reported by `done`, not unhandled
    const run = async (): Promise<{ retired: RuleHits[] }> => {
      const c = await compiled;
      this.assertLive();
      let raw: number[];
      try {
        raw = await native().pipelineSetAcl(this.handle, s.index, packAcl(c));
      } catch (e) {
        throw aclBuildError(s.name, e);
      }
      return { retired: this.installed(s.index, rules, c, raw) };
    };
    const done = this.aclQueue.then(run, run);
    this.aclQueue = done.catch(() => undefined);
    return done;
  }

  /** Records the new table's rule ids; returns the retired table's hits by rule. */
  private installed(
    index: number,
    rules: AclRule[],
    compiled: NativeAclRule[],
    raw: number[],
  ): RuleHits[] {
    const retired = this.foldHits(index, raw);
    this.aclIds.set(
      index,
      rules.map((r, i) => r.id ?? `rule${i}`),
    );
    this.aclOwners.set(
      index,
      compiled.map((c) => c.owner),
    );
    return retired;
  }

  private foldHits(index: number, raw: number[]): RuleHits[] {
    const ids = this.aclIds.get(index) ?? [];
    const owners = this.aclOwners.get(index) ?? [];
    const out: RuleHits[] = ids.map((id) => ({ id, hits: 0 }));
    owners.forEach((o, k) => (out[o]!.hits += raw[k] ?? 0));
    out.push({ id: 'default', hits: raw[owners.length] ?? 0 });
    return out;
  }

  /** Per-rule hits of an ACL stage's current table (summed over workers), then "default". */
  aclHits(stage: string | number): RuleHits[] {
    this.assertLive();
    const s = this.stage(stage, 'acl');
    return this.foldHits(s.index, native().pipelineAclHits(this.handle, s.index));
  }

  /** A conntrack stage's counters, read without stopping the worker. */
  /**
   * Tests: moves a manualClock pipeline's conntrack clock forward by ms (flows expire when it
   * passes their timeout, at the next packet or sweep). Throws for a pipeline on the TSC.
   */
  advanceClock(ms: number): void {
    this.assertLive();
    if (!Number.isFinite(ms) || ms < 0)
      throw new PipelineError(`must be a finite number of ms >= 0, got ${ms}`, 'advanceClock');
    if (native().pipelineAdvanceClock(this.handle, Math.round(ms * 1e6)) === 0)
      throw new PipelineError('the pipeline was not created with manualClock', 'manualClock');
  }

  conntrack(stage: string | number): ConntrackCounters {
    this.assertLive();
    const s = this.stage(stage, 'conntrack');
    return native().pipelineCtCounters(this.handle, s.index);
  }

  /**
   * Call after updateAcl of the ACL stage that follows: the worker drops every flow opened
   * under an earlier ACL table before it judges its next burst, so flows the new rules would
   * not open end, while flows the new table opened stay, however many tables came between.
   */
  flushConntrack(stage: string | number): void {
    this.assertLive();
    native().pipelineCtFlush(this.handle, this.stage(stage, 'conntrack').index);
  }

  /** Replaces an LPM stage's routes, next hops and local addresses while traffic runs. */
  updateRoutes(stage: string | number, table: RoutingTable): void {
    this.assertLive();
    const s = this.stage(stage, 'lpm');
    const where = `stages[${s.name}].table`;
    (Array.isArray(table?.nextHops) ? table.nextHops : []).forEach((h, i) => {
      if (Number.isInteger(h?.port)) this.checkOutput(h.port, `${where}.nextHops[${i}].port`);
    });
    const t = compileRoutes(table, (p) => native().portMac(p), where);
    try {
      native().pipelineSetLpm(this.handle, s.index, t);
    } catch (e) {
      throw new PipelineError(
        nativeError(e).message,
        `stages[${s.name}]`,
        'lpm_build',
        nativeError(e).errno,
      );
    }
    // the old table is retired (no worker reads it): its next hops' ports are free to close
    const hops = new Set<Port>();
    for (const h of t.nexthops) {
      const port = openPort(h.port);
      if (port) hops.add(port);
    }
    this.routePorts.set(s.index, hops);
    this.syncPorts();
  }

  counters(): PipelineCounters {
    this.assertLive();
    const n = native();
    const raw = n.pipelineCounters(this.handle);
    const rs = n.constants.reasons;
    const per = n.constants.stageCounters;
    const block = (
      i: number,
    ): {
      in: number;
      out: number;
      drops: Record<string, number>;
      punts: Record<string, number>;
    } => {
      const b = raw.subarray(i * per, (i + 1) * per);
      const drops: Record<string, number> = {};
      const punts: Record<string, number> = {};
      rs.forEach((r, k) => {
        if (b[2 + k]) drops[r] = b[2 + k]!;
        if (b[2 + rs.length + k]) punts[r] = b[2 + rs.length + k]!;
      });
      return { in: b[0]!, out: b[1]!, drops, punts };
    };
    const top = block(0);
    return {
      rx: top.in,
      tx: top.out,
      drops: top.drops,
      punts: top.punts,
      stages: this.stages.map((s) => ({
        name: s.name,
        kind: s.kind,
        ...block(s.index + 1),
      })),
    };
  }

  /** How often the workers waited in epoll and what ended the waits (rxMode adaptive). */
  rxWaits(): RxWaits {
    this.assertLive();
    const raw = native().pipelineRxWaits(this.handle);
    return { waits: raw[0]!, kicked: raw[1]!, interruptWorkers: raw[2]!, yields: raw[3]! };
  }

  /** Busy cycles per part of the burst and per stage, summed over workers (see PipelineCycles). */
  cycles(): PipelineCycles {
    this.assertLive();
    const n = native();
    const raw = n.pipelineCycles(this.handle);
    return {
      hz: n.tscHz(),
      busy: raw[0]!,
      rx: raw[1]!,
      parse: raw[2]!,
      tx: raw[3]!,
      sampledPackets: raw[4]!,
      stages: this.stages.map((s) => ({
        name: s.name,
        kind: s.kind,
        cycles: raw[5 + s.index]!,
      })),
    };
  }

  /**
   * Packets forwarded by each route of an LPM stage created with countHits, in the order of
   * the routing table's routes (a route replaced by a later one with the same prefix has 0).
   */
  routeHits(stage: string | number): Float64Array {
    this.assertLive();
    return native().pipelineLpmHits(this.handle, this.stage(stage, 'lpm').index);
  }

  /** Adds an SA to an esp stage (usable at once; a refused SA changes nothing). */
  addSa(stage: string | number, sa: EspSa): void {
    this.assertLive();
    const s = this.stage(stage, 'esp');
    espNative.addSa(this.handle, s.index, s.name, sa);
  }

  /** Deletes an SA of an esp stage; returns its final counters. */
  deleteSa(stage: string | number, spi: number): EspSaCounters {
    this.assertLive();
    const s = this.stage(stage, 'esp');
    return espNative.deleteSa(this.handle, s.index, s.name, spi);
  }

  /** An SA's counters. */
  saCounters(stage: string | number, spi: number): EspSaCounters {
    this.assertLive();
    const s = this.stage(stage, 'esp');
    return espNative.counters(this.handle, s.index, s.name, spi);
  }

  /**
   * Replaces an esp stage's policies (made with `policies: true`) in one step: traffic meets the
   * old set or the new one. Returns the old set's final counts. A refused set changes nothing.
   */
  setEspPolicies(
    stage: string | number,
    policies: readonly EspPolicy[],
  ): { retired: EspPolicyHits } {
    this.assertLive();
    const s = this.stage(stage, 'esp');
    const old = this.espPolicyIds.get(s.index) ?? [];
    const counts = espNative.setPolicies(this.handle, s.index, s.name, policies);
    this.espPolicyIds.set(
      s.index,
      policies.map((p) => p.id),
    );
    return { retired: policyHits(old, counts) };
  }

  /** Packets per policy of an esp stage's current set, and those no policy matched. */
  espPolicyHits(stage: string | number): EspPolicyHits {
    this.assertLive();
    const s = this.stage(stage, 'esp');
    return policyHits(
      this.espPolicyIds.get(s.index) ?? [],
      espNative.policyHits(this.handle, s.index),
    );
  }

  /** The SPIs of an esp stage's SAs, in the order they were added. */
  sas(stage: string | number): number[] {
    this.assertLive();
    return espNative.spis(this.handle, this.stage(stage, 'esp').index);
  }

  /** Takes punted packets into the batch (reason via batch.reasonCode(i) / reasons()). */
  punted(batch: PacketBatch): number {
    this.assertLive();
    return native().pipelinePunt(this.handle, batch.handle);
  }

  /** Sends the batch's packets out of port through worker 0's tx queue. Returns queued. */
  inject(batch: PacketBatch, port: Port | number): number {
    this.assertLive();
    this.checkOutput(portId(port), 'port');
    this.usePort(port, 'port');
    return native().pipelineInject(this.handle, batch.handle, portId(port));
  }

  close(): void {
    if (this.freed) return;
    this.stop();
    this.freed = true;
    this.untrack();
    native().pipelineFree(this.handle);
    for (const p of this.usedPorts) p.unuse(this);
    this.usedPorts.clear();
  }

  private assertLive(): void {
    if (this.freed) throw new PipelineError('the pipeline was closed', '');
  }
}

function aclBuildError(stage: string, e: unknown): PipelineError {
  const n = nativeError(e);
  return new PipelineError(n.message, `stages[${stage}]`, 'acl_build', n.errno);
}

function defaultLayout(spec: PipelineSpec, lcores: number[]): WorkerSpec[] {
  const inputs = spec.inputs ?? [];
  if (inputs.length === 0)
    throw new PipelineError('give inputs (ports) or an explicit layout', 'inputs');
  const count = spec.workers ?? 1;
  if (!Number.isInteger(count) || count < 1)
    throw new PipelineError('workers must be a positive integer', 'workers');
  if (count > lcores.length)
    throw new PipelineError(
      `${count} workers need ${count} EAL worker lcores but the EAL has ${lcores.length}: add cores to EalOptions.lcores`,
      'workers',
    );
  return Array.from({ length: count }, (_, w) => ({
    lcore: lcores[w]!,
    txQueue: w,
    inputs: inputs.map((p) => ({ port: p, queue: w })),
  }));
}
