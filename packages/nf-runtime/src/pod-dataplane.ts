import { existsSync, lstatSync, rmSync } from 'node:fs';
import * as dpdk from '@flowline/dpdk';
import {
  type Eal,
  type EalOptions,
  Mempool,
  PacketBatch,
  type Pipeline,
  Port,
  type LinkState,
  PortError,
  type PortOptions,
  devargs as dpdkDevargs,
  initEal,
  leftoverFiles,
} from '@flowline/dpdk';
import type { Logger } from '@flowline/telemetry';
import type { DataplaneView, PortCounters, PortView, StageCounters } from './dataplane';
import { lcoreListProblem } from './config';
import { PodDeviceError } from './errors';
import type { EalPlan, PodPort } from './pod-devices';
import { type RxMode, type RxPlan, rxPlan } from './rx-mode';

/**
 * Whether this @flowline/dpdk can make a worker wait on rx interrupts (it says so by exporting
 * RX_INTERRUPTS = true); without it adaptive and interrupt fall back to the timer back-off.
 */
export function nativeRxInterrupts(): boolean {
  return (dpdk as { RX_INTERRUPTS?: unknown }).RX_INTERRUPTS === true;
}

/** Sizes and behaviour of the pod's dataplane; every field has a working default. */
export interface PodDataplaneOptions {
  mempool?: {
    /** mbufs; default 8191 (enough for 1024 rx descriptors on a few ports plus rings). */
    size?: number;
    cacheSize?: number;
    dataRoom?: number;
  };
  port?: {
    rxDescriptors?: number;
    txDescriptors?: number;
    /** Accept frames for any MAC (default true: the switch may deliver to a shared MAC). */
    promiscuous?: boolean;
  };
  /**
   * How often the link of every port is read, in ms (default 100; false: never). Reading the
   * link is what makes a server=1 virtio-user port accept its peer again after a switch
   * restart: DPDK re-negotiates on the link read that finds a pending connection.
   */
  linkPollMs?: number | false;
  /** EAL --log-level values (e.g. "pmd.net.virtio:error"). */
  logLevel?: string[];
  /** Called with the process id; default process.pid (tests pass their own). */
  pid?: number;
  /** The runtime config's rxMode (default adaptive): see rx-mode.ts and `PodDataplane.rx`. */
  rxMode?: RxMode;
}

/** A port the pod was given, opened on DPDK. */
export interface OpenPodPort {
  name: string;
  kind: PodPort['kind'];
  port: Port;
  /** The devargs that probed (for a netdev: AF_XDP, or AF_PACKET when AF_XDP was refused). */
  devargs: string;
  spec: PodPort;
}

export interface LinkEvent {
  port: string;
  up: boolean;
  /** How long the link was in its previous state, ms. */
  afterMs: number;
}

/**
 * The EAL cores of a list like "0,1" or "0-2,4"; every core below RTE_MAX_LCORE, so a range
 * never expands to more than that many.
 */
export function parseLcores(list: string): number[] {
  const problem = lcoreListProblem(list);
  if (problem) throw new PodDeviceError('eal.lcores', problem);
  const out: number[] = [];
  for (const part of list.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) throw new PodDeviceError('eal.lcores', `"${list}" is not a list like "0,1" or "0-2"`);
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    for (let c = from; c <= to; c++) out.push(c);
  }
  return out;
}

/**
 * EAL options for a pod: hugepages from the pod's hugetlbfs, a file prefix unique to this
 * process (two instances of one NF on a host must not share hugepage files), --no-pci unless
 * the pod was given VFs, and --single-file-segments when a virtio-user port must share its
 * memory with the vhost-user peer.
 */
export function ealOptionsFor(
  plan: EalPlan,
  ports: readonly PodPort[],
  pid: number = process.pid,
  logLevel: string[] = [],
): EalOptions {
  const suffix = `-${pid}`;
  const hasVirtio = ports.some((p) => p.kind === 'virtio-user');
  return {
    lcores: parseLcores(plan.lcores),
    filePrefix: `${plan.filePrefix.slice(0, 64 - suffix.length)}${suffix}`,
    memoryMb: plan.memoryMb,
    ...(plan.noHuge ? { noHuge: true } : {}),
    ...(plan.hugeDir && !plan.noHuge ? { hugeDir: plan.hugeDir } : {}),
    inMemory: plan.inMemory,
    ...segments(plan.inMemory, hasVirtio),
    pciAllow: plan.pciAllow,
    ...(logLevel.length ? { logLevel } : {}),
    extraArgs: plan.extraArgs,
  };
}

/**
 * EAL (22.11) refuses --huge-unlink together with --single-file-segments, which virtio-user
 * needs to share its memory with the vhost-user peer. Without --in-memory, a virtio-user pod
 * therefore keeps its hugepage files while it runs (cleanup removes them); any other pod has
 * them unlinked right after mapping, so none survives even a crash.
 */
function segments(
  inMemory: boolean,
  hasVirtio: boolean,
): Pick<EalOptions, 'singleFileSegments' | 'hugeUnlink'> {
  if (hasVirtio)
    return inMemory
      ? { singleFileSegments: true }
      : { singleFileSegments: true, hugeUnlink: false };
  return inMemory ? {} : { singleFileSegments: false, hugeUnlink: true };
}

/** A server=1 socket left by a killed process makes bind() fail: remove it first. */
function removeStaleSocket(path: string | undefined): void {
  if (!path || !existsSync(path)) return;
  if (lstatSync(path).isSocket()) rmSync(path, { force: true });
}

function big(n: number): bigint {
  return BigInt(Math.round(n));
}

/**
 * Frames built in JavaScript (ARP/ND replies, ICMP errors, probes) sent out through a
 * pipeline's inject ring, so they leave on the worker's tx queue and never race it. The
 * mbufs come from a private net_ring port that JavaScript alone uses: what is sent on it is
 * received back on it, as mbufs of the pod's pool, ready for Pipeline.inject.
 */
export class FrameInjector {
  private readonly ring: Port;
  private readonly batch: PacketBatch;

  constructor(
    private readonly pool: Mempool,
    id: string,
  ) {
    this.ring = Port.open(dpdkDevargs.ring({ id }), pool, { rxDescriptors: 256 });
    this.batch = new PacketBatch(pool, 64);
  }

  /** Sends frames out of `port` through the pipeline; returns how many were queued. */
  inject(pipeline: Pipeline, port: Port | number, frames: Buffer[]): number {
    let queued = 0;
    for (let i = 0; i < frames.length; i += this.batch.capacity) {
      const chunk = frames.slice(i, i + this.batch.capacity);
      this.ring.send(0, this.pool, chunk);
      this.ring.rxBurst(0, this.batch);
      queued += pipeline.inject(this.batch, port);
    }
    return queued;
  }

  close(): void {
    this.batch.free();
    this.ring.close();
  }
}

/**
 * The pod's DPDK side: the EAL, one mempool and every port the pod was given, opened by
 * interface name. NFs build their pipeline on these ports, attach it, and hand `view` and
 * the stop methods to the runtime (see `running()`).
 */
export class PodDataplane {
  private readonly pipelines: Pipeline[] = [];
  private readonly linkListeners: ((e: LinkEvent) => void)[] = [];
  private readonly linkState = new Map<string, { up: boolean; since: number }>();
  private poller: NodeJS.Timeout | undefined;
  private injector: FrameInjector | undefined;
  private readonly internal: Port[] = [];
  private closed = false;
  /** Hugepage files and runtime dirs the EAL cleanup had to remove (should stay empty). */
  leftovers: string[] = [];
  /** How the workers wait for packets: give `rx.backoff` to every Pipeline/generator. */
  rx: RxPlan = rxPlan('adaptive', [], false);

  constructor(
    readonly eal: Eal,
    readonly pool: Mempool,
    readonly ports: ReadonlyMap<string, OpenPodPort>,
    private readonly logger: Logger | undefined,
    linkPollMs: number | false,
  ) {
    const now = Date.now();
    for (const [name, p] of ports) this.linkState.set(name, { up: p.port.link().up, since: now });
    if (linkPollMs !== false) {
      this.poller = setInterval(() => this.pollLinks(), linkPollMs);
      this.poller.unref();
    }
  }

  /** The port given to the pod under this interface name. */
  port(name: string): Port {
    const p = this.ports.get(name);
    if (!p)
      throw new PodDeviceError(
        name,
        `no such port in this pod (have: ${[...this.ports.keys()].join(', ') || 'none'})`,
      );
    return p.port;
  }

  /** The interface name of a DPDK port id, if it is one of the pod's. */
  nameOf(portId: number): string | undefined {
    for (const [name, p] of this.ports) if (p.port.id === portId) return name;
    return undefined;
  }

  /** A pipeline whose counters the view reports and which stopTraffic stops. */
  attachPipeline(pipeline: Pipeline): void {
    this.pipelines.push(pipeline);
  }

  /**
   * Opens a port for the NF's own plumbing (not a pod port: not in the view, not polled for
   * links), on the pod's pool; it is closed with the dataplane.
   */
  openInternalPort(devargs: string, opts: PortOptions = {}): Port {
    const port = Port.open(devargs, this.pool, opts);
    this.internal.push(port);
    return port;
  }

  /** The injector for JS-built frames (created on first use). */
  frames(): FrameInjector {
    // Port names are per process (one EAL each); net_ring's ring names must stay short.
    this.injector ??= new FrameInjector(this.pool, 'flinj');
    return this.injector;
  }

  /** Calls cb on every link change of a pod port (after a peer left or came back). */
  onLinkChange(cb: (e: LinkEvent) => void): () => void {
    this.linkListeners.push(cb);
    return () => {
      const i = this.linkListeners.indexOf(cb);
      if (i >= 0) this.linkListeners.splice(i, 1);
    };
  }

  /** Reads every link once; the read is also what lets a server=1 virtio-user port reconnect. */
  pollLinks(): void {
    if (this.closed) return;
    for (const p of this.ports.values()) {
      try {
        this.readLink(p);
      } catch {
        // a port that cannot report its link is reported by the next successful read
      }
    }
  }

  /**
   * Every link read goes through here: a read may be the one that notices a lost peer (or
   * accepts a returning one), so each change is recorded and reported whoever read it.
   */
  private readLink(p: OpenPodPort): LinkState {
    const redone = p.port.vhostHandshakesRedone;
    const link = p.port.link();
    if (p.port.vhostHandshakesRedone !== redone)
      this.logger?.warn('vhost-user handshake redone', {
        port: p.name,
        socket: p.spec.socketPath,
        why: 'DPDK reported the device failed to stop or start (the switch dropped the connection mid-handshake), which leaves its queues disabled on the switch; the connection was reset so that the switch reconnects and redoes it',
      });
    const before = this.linkState.get(p.name)!;
    if (before.up !== link.up) {
      const now = Date.now();
      this.linkState.set(p.name, { up: link.up, since: now });
      const event = { port: p.name, up: link.up, afterMs: now - before.since };
      this.logger?.[link.up ? 'info' : 'warn'](link.up ? 'link up' : 'link down', event);
      for (const cb of [...this.linkListeners]) cb(event);
    }
    return link;
  }

  readonly view: DataplaneView = {
    ports: (): PortView[] =>
      [...this.ports.values()].map((p) => {
        const link = this.readLink(p);
        return {
          name: p.name,
          portId: p.port.id,
          driver: p.port.info().driver,
          devargs: p.devargs,
          mac: p.port.mac(),
          mtu: p.port.mtu(),
          linkUp: link.up,
          linkSpeedMbps: link.speedMbps,
        };
      }),
    workerLcores: () => (this.eal.running ? this.eal.lcores().workers : []),
    counters: () => {
      if (this.closed) return { ports: [], stages: [] };
      const ports: PortCounters[] = [...this.ports.values()].map((p) => {
        const s = p.port.stats();
        return {
          name: p.name,
          rxPackets: big(s.rxPackets),
          txPackets: big(s.txPackets),
          rxBytes: big(s.rxBytes),
          txBytes: big(s.txBytes),
          rxMissed: big(s.rxMissed + s.rxNoMbuf),
          rxErrors: big(s.rxErrors),
          txErrors: big(s.txErrors),
        };
      });
      const stages: StageCounters[] = this.pipelines.flatMap((pl) => {
        const c = pl.counters();
        const sum = (r: Record<string, number>) => big(Object.values(r).reduce((a, b) => a + b, 0));
        const drops = (r: Record<string, number>) =>
          Object.fromEntries(Object.entries(r).map(([k, v]) => [k, big(v)]));
        return [
          // The pipeline's own block: what the workers sent, dropped at the end, and punted.
          {
            name: 'pipeline',
            packetsIn: big(c.rx),
            packetsOut: big(c.tx),
            punted: sum(c.punts),
            droppedByReason: drops(c.drops),
          },
          ...c.stages.map((s) => ({
            name: s.name,
            packetsIn: big(s.in),
            packetsOut: big(s.out),
            punted: sum(s.punts),
            droppedByReason: drops(s.drops),
          })),
        ];
      });
      return { ports, stages };
    },
  };

  /** Stops the workers of every attached pipeline: nothing more is received. */
  async stopTraffic(): Promise<void> {
    if (this.poller) clearInterval(this.poller);
    this.poller = undefined;
    for (const p of this.pipelines) p.stop();
  }

  /** Waits until the ports' tx counters settle (what was queued has left), at most timeoutMs. */
  async drain(timeoutMs: number): Promise<void> {
    if (this.closed) return;
    const end = Date.now() + timeoutMs;
    const tx = (): number =>
      [...this.ports.values()].reduce((a, p) => {
        try {
          return a + p.port.stats().txPackets;
        } catch {
          return a;
        }
      }, 0);
    let last = tx();
    while (Date.now() < end) {
      await new Promise((r) => setTimeout(r, 10));
      const now = tx();
      if (now === last) return;
      last = now;
    }
  }

  /**
   * Releases everything: pipelines, ports (their vhost-user sockets), the pool and the EAL,
   * which removes any hugepage file left under this process's prefix.
   *
   * One exception, for DPDK 22.11's virtio-user PMD: closing such a port frees its device but
   * can leave its link-state callback registered with the EAL interrupt thread (the PMD only
   * unregisters it at stop, which fails while the callback runs, and a peer that reconnected
   * re-registers it on a new socket). The next event on that file descriptor number, or a new
   * file that reuses it, then calls the callback on the released device and the process dies by
   * SIGSEGV (a core dump of the router showed exactly that: virtio_interrupt_handler reading a
   * NULL dev_private of the port closed a moment before). So virtio-user ports are stopped and
   * left open, the EAL is not cleaned up, and the files it could leave (hugepage files, runtime
   * dir, sockets) are removed here; the memory and descriptors go with the process, which is
   * exiting, and the switch sees the sockets close then.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.poller) clearInterval(this.poller);
    // Each release on its own: one that throws (Port.close's PortError when rte_dev_remove
    // fails) must not keep the pod ports, the sockets and the EAL from being released after it.
    const release = (what: string, fields: Record<string, unknown>, fn: () => void): void => {
      try {
        fn();
      } catch (err) {
        this.logger?.warn(`${what} close failed`, { ...fields, err });
      }
    };
    this.pipelines.forEach((p, index) => release('pipeline', { pipeline: index }, () => p.close()));
    const injector = this.injector;
    if (injector) release('frame injector', {}, () => injector.close());
    for (const p of this.internal) release('internal port', { port: p.name }, () => p.close());
    const leftOpen = [...this.ports.values()].filter((p) => p.kind === 'virtio-user');
    for (const p of this.ports.values()) {
      try {
        if (p.kind === 'virtio-user') p.port.stop();
        else p.port.close();
      } catch (err) {
        this.logger?.warn('port close failed', { port: p.name, err });
      }
      if (p.kind === 'virtio-user') removeStaleSocket(p.spec.socketPath);
    }
    const { filePrefix, hugeDir } = this.eal.options;
    if (leftOpen.length === 0) {
      this.leftovers = this.eal.cleanup();
    } else {
      const removed = leftoverFiles(filePrefix, { hugeDir });
      for (const f of removed) rmSync(f, { recursive: true, force: true });
      this.logger?.info('EAL left to process exit', {
        reason: 'DPDK 22.11 virtio-user ports cannot be closed safely; stopped instead',
        ports: leftOpen.map((p) => p.name),
        removed,
      });
    }
    const still = leftoverFiles(filePrefix, { hugeDir });
    if (this.leftovers.length || still.length)
      this.logger?.warn('removed EAL leftovers', { removed: this.leftovers, still });
  }

  /** The stop half of RunningDataplane, bound to this dataplane. */
  running(): {
    dataplane: DataplaneView;
    stopTraffic(): Promise<void>;
    drain(timeoutMs: number): Promise<void>;
    close(): Promise<void>;
  } {
    return {
      dataplane: this.view,
      stopTraffic: () => this.stopTraffic(),
      drain: (ms) => this.drain(ms),
      close: () => this.close(),
    };
  }
}

/** Opens one pod port, trying its devargs in order (AF_XDP, then AF_PACKET for a netdev). */
function openPort(spec: PodPort, pool: Mempool, opts: PodDataplaneOptions, logger?: Logger) {
  const portOpts = {
    rxDescriptors: opts.port?.rxDescriptors ?? 1024,
    txDescriptors: opts.port?.txDescriptors ?? 1024,
    // Rx interrupts (eventfd kick/call) for workers that sleep until the switch kicks; a
    // @flowline/dpdk without RX_INTERRUPTS takes no such option.
    ...(nativeRxInterrupts() && (opts.rxMode ?? 'adaptive') !== 'poll'
      ? { rxInterrupts: true }
      : {}),
  };
  const errors: string[] = [];
  for (const devargs of spec.devargs) {
    if (spec.kind === 'virtio-user') removeStaleSocket(spec.socketPath);
    try {
      const port = Port.open(devargs, pool, portOpts);
      try {
        port.setPromiscuous(opts.port?.promiscuous ?? true);
      } catch {
        // Some PMDs (net_ring, virtio-user without the control queue) have no promiscuous
        // switch; they deliver every frame anyway.
      }
      if (errors.length) logger?.warn('port fell back', { port: spec.name, devargs, errors });
      return { port, devargs };
    } catch (err) {
      if (!(err instanceof PortError)) throw err;
      errors.push(`${devargs}: ${err.message}`);
    }
  }
  throw new PodDeviceError(
    spec.origin,
    `port ${spec.name} could not be opened: ${errors.join('; ')}`,
  );
}

/**
 * Initialises the EAL from the plan, creates the pod's mempool and opens every pod port:
 * virtio-user (server=1) from <ifname>.json, PCI VFs, netdevs over AF_XDP falling back to
 * AF_PACKET, and plain vdevs from the config. A failure releases what was opened so far.
 *
 * A server=1 virtio-user open returns once the switch has connected to its socket.
 */
export function openPodDataplane(
  ctx: { ports: readonly PodPort[]; eal: EalPlan; logger?: Logger },
  opts: PodDataplaneOptions = {},
): PodDataplane {
  const eal = initEal(ealOptionsFor(ctx.eal, ctx.ports, opts.pid, opts.logLevel));
  const opened = new Map<string, OpenPodPort>();
  try {
    const pool = Mempool.create({
      size: opts.mempool?.size ?? 8191,
      ...(opts.mempool?.cacheSize !== undefined ? { cacheSize: opts.mempool.cacheSize } : {}),
      ...(opts.mempool?.dataRoom !== undefined ? { dataRoom: opts.mempool.dataRoom } : {}),
    });
    for (const spec of ctx.ports) {
      ctx.logger?.info('opening port', { port: spec.name, kind: spec.kind, origin: spec.origin });
      const { port, devargs } = openPort(spec, pool, opts, ctx.logger);
      opened.set(spec.name, { name: spec.name, kind: spec.kind, port, devargs, spec });
    }
    const dp = new PodDataplane(eal, pool, opened, ctx.logger, opts.linkPollMs ?? 100);
    dp.rx = rxPlan(opts.rxMode ?? 'adaptive', [...opened.values()], nativeRxInterrupts());
    ctx.logger?.info('rx mode', {
      requested: dp.rx.requested,
      effective: dp.rx.effective,
      ...(dp.rx.reason ? { reason: dp.rx.reason } : {}),
      backoff: dp.rx.backoff,
    });
    return dp;
  } catch (err) {
    eal.cleanup();
    throw err;
  }
}
