/**
 * The native pipeline: TypeScript declares input ports, ordered stages and worker lcores; the
 * addon runs it in C on those lcores, in bursts, run to completion. JavaScript only configures,
 * swaps tables (RCU: build aside, publish, free after every worker's quiescent state), reads
 * counters, and handles punted packets.
 */
import { compileAcl, type AclRule } from './acl';
import type { PacketBatch } from './batch';
import { PipelineError, nativeError } from './errors';
import { requireEal } from './eal';
import { compileRoutes, type RoutingTable } from './lpm';
import { parseMac } from './mac';
import { native } from './native';
import type { Port } from './port';

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
  rules?: AclRule[];
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
  /** Flow table entries, rounded up to a power of two. Default 65536. */
  capacity?: number;
  timeouts?: ConntrackTimeouts;
  /**
   * A new flow whose bucket is full of live flows: 'evict' pushes out the bucket's least
   * recently seen flow (default), 'drop' drops the new flow's packet (reason conntrack_full).
   */
  whenFull?: 'evict' | 'drop';
}

export interface ConntrackCounters {
  /** Slots in use (expired flows count until reclaimed). */
  entries: number;
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
  /** Flows removed by flushConntrack. */
  flushed: number;
}

export const CONNTRACK_DEFAULTS = {
  capacity: 65_536,
  timeouts: {
    tcpSynMs: 30_000,
    tcpEstablishedMs: 3_600_000,
    tcpClosingMs: 30_000,
    udpMs: 60_000,
    icmpMs: 30_000,
  },
} as const;
const TIMEOUT_KEYS = ['tcpSynMs', 'tcpEstablishedMs', 'tcpClosingMs', 'udpMs', 'icmpMs'] as const;

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

export type StageSpec = L2FwdStage | AclStage | LpmStage | ConntrackStage;

export interface Backoff {
  /**
   * Empty polls (each with rte_pause) before the worker starts sleeping. Default 4096 (about
   * 100-200 us of emptiness): fewer let a busy port's momentary gaps put the worker to sleep.
   */
  spinPolls?: number;
  /** First sleep, microseconds. Default 1. */
  sleepMinUs?: number;
  /** Sleeps double up to this. Default 500. */
  sleepMaxUs?: number;
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
  puntRingSize?: number;
  injectRingSize?: number;
}

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

export function reasons(): readonly string[] {
  return native().constants.reasons;
}

export class Pipeline {
  private running = false;
  private freed = false;
  private untrack: () => void;
  private aclIds = new Map<number, string[]>();
  private aclOwners = new Map<number, number[]>();

  private constructor(
    readonly handle: number,
    readonly stages: readonly { name: string; kind: StageSpec['kind']; index: number }[],
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
    const conf = {
      burst,
      backoff: spec.backoff ?? {},
      puntRingSize: spec.puntRingSize ?? 1024,
      injectRingSize: spec.injectRingSize ?? 1024,
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
    const p = new Pipeline(handle, stages);
    try {
      spec.stages.forEach((s, i) => {
        const at = `stages[${i}]`;
        const name = s.name ?? `${s.kind}${i}`;
        let index: number;
        if (s.kind === 'l2fwd') {
          const rewrite = (s.rewrite ?? []).map((r, j) => {
            const pid = portId(r.port);
            const mac = (m: string, f: string): Buffer => {
              try {
                return m === 'port' ? n.portMac(pid) : parseMac(m);
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
          index = n.pipelineAddStage(handle, 'l2fwd', {
            map: s.forward.map((f) => ({ in: portId(f.from), out: portId(f.to) })),
            rewrite,
          });
        } else if (s.kind === 'acl') {
          index = n.pipelineAddStage(handle, 'acl', {
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
          });
        } else {
          throw new PipelineError(
            `unknown stage kind ${JSON.stringify((s as { kind: unknown }).kind)}`,
            `${at}.kind`,
          );
        }
        if (stages.some((x) => x.name === name))
          throw new PipelineError(`stage name "${name}" is used twice`, `${at}.name`);
        stages.push({ name, kind: s.kind, index });
        if (s.kind === 'acl' && s.rules) p.updateAcl(name, s.rules);
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
   * Replaces an ACL stage's rules while traffic runs. Returns the per-rule hits of the table it
   * replaced, final because every worker has passed a quiescent state before it was freed.
   */
  updateAcl(stage: string | number, rules: AclRule[]): { retired: RuleHits[] } {
    this.assertLive();
    const s = this.stage(stage, 'acl');
    const compiled = compileAcl(rules, `stages[${s.name}].rules`);
    let raw: number[];
    try {
      raw = native().pipelineSetAcl(this.handle, s.index, compiled);
    } catch (e) {
      throw new PipelineError(
        nativeError(e).message,
        `stages[${s.name}]`,
        'acl_build',
        nativeError(e).errno,
      );
    }
    const retired = this.foldHits(s.index, raw);
    this.aclIds.set(
      s.index,
      rules.map((r, i) => r.id ?? `rule${i}`),
    );
    this.aclOwners.set(
      s.index,
      compiled.map((c) => c.owner),
    );
    return { retired };
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
  conntrack(stage: string | number): ConntrackCounters {
    this.assertLive();
    const s = this.stage(stage, 'conntrack');
    return native().pipelineCtCounters(this.handle, s.index);
  }

  /**
   * Call after updateAcl of the ACL stage that follows: the worker drops every flow opened
   * under an earlier ACL table before it judges its next burst, so flows the new rules would
   * not open end, while flows the new table opened stay. (Epochs count table swaps modulo 256.)
   */
  flushConntrack(stage: string | number): void {
    this.assertLive();
    native().pipelineCtFlush(this.handle, this.stage(stage, 'conntrack').index);
  }

  /** Replaces an LPM stage's routes, next hops and local addresses while traffic runs. */
  updateRoutes(stage: string | number, table: RoutingTable): void {
    this.assertLive();
    const s = this.stage(stage, 'lpm');
    const t = compileRoutes(table, (p) => native().portMac(p), `stages[${s.name}].table`);
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
      stages: this.stages.map((s) => ({ name: s.name, kind: s.kind, ...block(s.index + 1) })),
    };
  }

  /** Takes punted packets into the batch (reason via batch.reasonCode(i) / reasons()). */
  punted(batch: PacketBatch): number {
    this.assertLive();
    return native().pipelinePunt(this.handle, batch.handle);
  }

  /** Sends the batch's packets out of port through worker 0's tx queue. Returns queued. */
  inject(batch: PacketBatch, port: Port | number): number {
    this.assertLive();
    return native().pipelineInject(this.handle, batch.handle, portId(port));
  }

  close(): void {
    if (this.freed) return;
    this.stop();
    this.freed = true;
    this.untrack();
    native().pipelineFree(this.handle);
  }

  private assertLive(): void {
    if (this.freed) throw new PipelineError('the pipeline was closed', '');
  }
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
