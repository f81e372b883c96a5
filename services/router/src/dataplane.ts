/**
 * The router's dataplane on @flowline/dpdk: every pod port -> LPM stage -> next-hop port, one
 * worker lcore, run in C. TypeScript programs the LPM table from the control plane's FIB
 * (built aside, RCU-published) and runs the slow path on what the stage punts.
 */
import {
  PacketBatch,
  Pipeline,
  type Port,
  type RoutingTable,
  devargs as dpdkDevargs,
  reasons,
} from '@flowline/dpdk';
import type { PipelineRx, PodDataplane } from '@flowline/nf-runtime';
import { parseMac } from '@flowline/packet';
import type { Logger } from '@flowline/telemetry';
import type { PuntReason } from './control-plane';
import type { Fib, FibProgrammer } from './fib';
import type { RouterDataplaneCounters } from './service';

/** What the slow path is given: a punted frame, the interface it came in on, and why. */
export type PuntHandler = (frame: Buffer, port: string, reason: PuntReason) => void;

const PUNT_REASONS: Record<string, PuntReason> = {
  arp: 'arp',
  nd: 'nd',
  local: 'local',
  ttl_expired: 'ttl_expired',
  no_route: 'no_route',
  too_big: 'too_big',
};

/** Glean next hops carry the interface's index in their destination MAC (see below). */
const GLEAN_MAC_PREFIX = '02:00:00:00';

export interface RouterPipelineOptions {
  dataplane: PodDataplane;
  /** Router interface names, in order; each must be a pod port. */
  interfaces: string[];
  logger?: Logger;
  burst?: number;
  backoff?: { spinPolls?: number; sleepMinUs?: number; sleepMaxUs?: number };
  /** The pod's rx plan for the pipeline (nf-runtime `dp.rx.pipeline`); wins over backoff. */
  rx?: PipelineRx;
}

/**
 * The LPM pipeline and its slow-path plumbing.
 *
 * Glean: a FIB next hop without a MAC (a connected host or gateway not resolved yet) must
 * reach the slow path, which resolves it. The LPM stage forwards to ports only, so glean next
 * hops point at a private net_ring port that no worker polls: what the worker sends there
 * comes back on its rx queue, which the slow path reads. The next hop's destination MAC names
 * the interface the packet was routed to.
 */
export class RouterPipeline implements FibProgrammer, RouterDataplaneCounters {
  readonly pipeline: Pipeline;
  private readonly glean: Port;
  private readonly puntBatch: PacketBatch;
  private readonly pending = new Map<string, Buffer[]>();
  private flushScheduled = false;
  private gleaned = 0;
  private readonly reasonNames: readonly string[];

  constructor(private readonly o: RouterPipelineOptions) {
    const dp = o.dataplane;
    const inputs = o.interfaces.map((name) => dp.port(name));
    this.glean = dpGleanPort(dp);
    this.pipeline = Pipeline.create({
      inputs,
      stages: [{ kind: 'lpm', name: 'lpm', noRoute: 'punt', nonIp: 'drop' }],
      burst: o.burst ?? 32,
      ...(o.rx ?? (o.backoff ? { backoff: o.backoff } : dp.rx.pipeline)),
    });
    dp.attachPipeline(this.pipeline);
    this.puntBatch = new PacketBatch(dp.pool, 64);
    this.reasonNames = reasons();
  }

  start(): void {
    this.pipeline.start();
  }

  /** FibProgrammer: the FIB as the LPM stage's table, swapped in under traffic. */
  async apply(fib: Fib): Promise<void> {
    const dp = this.o.dataplane;
    this.pipeline.updateRoutes(
      'lpm',
      fibToTable(fib, this.o.interfaces, (name) => dp.port(name).id, this.glean.id),
    );
  }

  /** Sends a JS-built frame out of an interface (replies, probes), batched per tick. */
  inject(port: string, frame: Buffer): void {
    const list = this.pending.get(port);
    if (list) list.push(frame);
    else this.pending.set(port, [frame]);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(() => this.flush());
    }
  }

  flush(): void {
    this.flushScheduled = false;
    const dp = this.o.dataplane;
    for (const [port, frames] of this.pending) {
      const queued = dp.frames().inject(this.pipeline, dp.port(port), frames);
      if (queued < frames.length)
        this.o.logger?.warn('inject ring full', { port, dropped: frames.length - queued });
    }
    this.pending.clear();
  }

  /** Takes every punted and gleaned packet and hands it to the slow path; returns how many. */
  pollPunts(handle: PuntHandler): number {
    const dp = this.o.dataplane;
    let total = 0;
    for (;;) {
      const n = this.pipeline.punted(this.puntBatch);
      if (n === 0) break;
      const frames: [Buffer, string | undefined, string][] = [];
      for (let i = 0; i < n; i++)
        frames.push([
          Buffer.from(this.puntBatch.packet(i)),
          dp.nameOf(this.puntBatch.port(i)),
          this.reasonNames[this.puntBatch.reasonCode(i)] ?? 'unknown',
        ]);
      this.puntBatch.release();
      for (const [frame, port, reason] of frames)
        handle(frame, port ?? '', PUNT_REASONS[reason] ?? 'no_route');
      total += n;
    }
    for (;;) {
      const got = this.glean.receive(0, 64);
      if (got.length === 0) break;
      for (const frame of got) {
        const i = frame.readUInt16BE(4);
        handle(frame, this.o.interfaces[i] ?? '', 'glean');
      }
      this.gleaned += got.length;
      total += got.length;
    }
    return total;
  }

  /** RouterDataplaneCounters: forwarded excludes packets sent to the glean port. */
  counters(): { forwarded: bigint; droppedByReason: Record<string, bigint> } {
    const c = this.pipeline.counters();
    const lpm = c.stages.find((s) => s.name === 'lpm');
    const dropped: Record<string, bigint> = {};
    for (const r of [c.drops, lpm?.drops ?? {}])
      for (const [k, v] of Object.entries(r)) dropped[k] = (dropped[k] ?? 0n) + BigInt(v);
    return {
      forwarded: BigInt(Math.max(0, (lpm?.out ?? 0) - this.gleaned)),
      droppedByReason: dropped,
    };
  }
}

/** The glean next hop's destination MAC for the interface at `index`. */
export function gleanMac(index: number): string {
  const hex = (b: number) => b.toString(16).padStart(2, '0');
  return `${GLEAN_MAC_PREFIX}:${hex((index >> 8) & 0xff)}:${hex(index & 0xff)}`;
}

/**
 * The control plane's FIB in the LPM stage's form: resolved next hops to their port and MAC,
 * glean next hops (no MAC) to the glean port with the interface index in the MAC; both with
 * their interface's MTU, so a packet too long for it is punted (too_big) before it is gleaned.
 */
export function fibToTable(
  fib: Fib,
  interfaces: readonly string[],
  portId: (name: string) => number,
  gleanPort: number,
): RoutingTable {
  return {
    nextHops: fib.nextHops.map((h) =>
      h.dstMac
        ? {
            port: portId(h.port),
            mac: parseMac(h.dstMac),
            srcMac: parseMac(h.srcMac),
            mtu: h.mtu,
          }
        : {
            port: gleanPort,
            mac: parseMac(gleanMac(interfaces.indexOf(h.port))),
            srcMac: parseMac(h.srcMac),
            mtu: h.mtu,
          },
    ),
    routes: fib.routes.map((r) => ({ prefix: r.prefix, nextHop: r.nextHop })),
    localAddresses: [
      ...fib.local4.map((bytes) => ({ family: 4 as const, bytes })),
      ...fib.local6.map((bytes) => ({ family: 6 as const, bytes })),
    ],
  };
}

function dpGleanPort(dp: PodDataplane): Port {
  // net_ring names its rings ETH_RXTX<q>_<name>, which must fit in 29 characters.
  return dp.openInternalPort(dpdkDevargs.ring({ id: 'flglean' }));
}
