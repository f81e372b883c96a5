/**
 * The traffic generator's dataplane: the pod's DPDK side from the runtime (openPodDataplane:
 * EAL, one mempool, every pod port per contract 3 of docs/architecture.md) and at most one native generator/sink
 * (packages/dpdk TrafficGenerator) per run on a worker lcore. Its DataplaneView is the pod's
 * (ports, link, ethdev stats) plus a "generator" and a "sink" stage whose counters add up
 * over runs.
 */
import { TrafficGenerator, type TrafficResults } from '@flowline/dpdk';
import {
  type DataplaneView,
  type EalPlan,
  type PodDataplane,
  type PodPort,
  type PortCounters,
  type PortView,
  type RxMode,
  type StageCounters,
  openPodDataplane,
} from '@flowline/nf-runtime';
import type { Logger } from '@flowline/telemetry';
import { DataplaneError } from './errors';
import type { RunView } from './results';
import type { StartPlan } from './validation';

export interface TrafficDataplaneOptions {
  /** Worker lcore of the poller; default the first EAL worker. */
  lcore?: number;
  poolSize: number;
  burst: number;
  /** The runtime config's rxMode: how the generator's poller waits when idle. */
  rxMode?: RxMode;
}

const toBig = (n: number): bigint => BigInt(Math.max(0, Math.round(n)));

export class TrafficDataplane implements DataplaneView {
  private gen: TrafficGenerator | undefined;
  private runId = 0;
  private names: string[] = [];
  private startedAt = 0n;
  private stoppedAt: bigint | undefined;
  private last: TrafficResults | undefined;
  /** Counters of finished runs, so the stage counters only ever grow. */
  private readonly base = { tx: 0, rx: 0, untagged: 0, foreign: 0 };
  private closed = false;

  private constructor(
    private readonly pod: PodDataplane,
    readonly lcore: number,
    private readonly options: TrafficDataplaneOptions,
    private readonly logger: Logger,
  ) {}

  /** Opens the pod's dataplane (EAL, pool, ports) and checks the poller's lcore. */
  static open(
    ctx: { eal: EalPlan; ports: readonly PodPort[]; logger: Logger },
    options: TrafficDataplaneOptions,
  ): TrafficDataplane {
    const pod = openPodDataplane(ctx, {
      mempool: { size: options.poolSize },
      ...(options.rxMode ? { rxMode: options.rxMode } : {}),
    });
    const workers = pod.eal.lcores().workers;
    const lcore = options.lcore ?? workers[0];
    if (lcore === undefined || !workers.includes(lcore)) {
      void pod.close();
      throw new DataplaneError(
        'boot',
        `lcore ${String(lcore)} is not an EAL worker (eal.lcores gives workers ${workers.join(',') || 'none'}; give at least two cores, e.g. "0,1")`,
      );
    }
    return new TrafficDataplane(pod, lcore, options, ctx.logger);
  }

  portNames(): string[] {
    return [...this.pod.ports.keys()];
  }

  /**
   * Starts a run of a validated plan. The new generator is built before the old run stops, so
   * a plan the native side refuses leaves the running one untouched.
   */
  start(plan: StartPlan): { runId: number; flowCount: number } {
    if (this.closed) throw new DataplaneError('start', 'the dataplane is closed');
    // Checked here too: a flow's port must be one of the pod's (validation names the field).
    for (const name of [...plan.flows.map((f) => f.txPort), ...plan.rxPorts])
      if (!this.pod.ports.has(name)) throw new DataplaneError('start', `no port ${name}`);
    const runId = (this.runId % 255) + 1;
    let next: TrafficGenerator;
    try {
      next = TrafficGenerator.create({
        lcore: this.lcore,
        pool: this.pod.pool,
        burst: this.options.burst,
        backoff: this.pod.rx.backoff,
        run: runId,
        acceptAnyRun: plan.countAnyRun,
        flows: plan.flows.map((f) => ({
          port: this.pod.port(f.txPort),
          protocol: f.protocol,
          srcIp: f.srcIp,
          dstIp: f.dstIp,
          srcPort: f.srcPort,
          dstPort: f.dstPort,
          ...(f.srcMac ? { srcMac: f.srcMac } : {}),
          ...(f.dstMac ? { dstMac: f.dstMac } : {}),
          size: f.size,
          ratePps: f.ratePps,
          count: f.count,
          ttl: f.ttl,
          tcpFlags: f.tcpFlags,
        })),
        rx: plan.rxPorts.map((name) => ({ port: this.pod.port(name), queue: 0 })),
      });
    } catch (e) {
      throw new DataplaneError('start', (e as Error).message);
    }
    this.retire();
    try {
      next.start();
    } catch (e) {
      next.close();
      throw new DataplaneError('start', (e as Error).message);
    }
    this.gen = next;
    this.runId = runId;
    this.names = plan.flows.map((f) => f.name);
    this.startedAt = process.hrtime.bigint();
    this.stoppedAt = undefined;
    this.last = undefined;
    this.logger.info('run started', {
      runId,
      flows: plan.flows.length,
      rxPorts: plan.rxPorts,
      lcore: this.lcore,
    });
    return { runId, flowCount: plan.flows.length };
  }

  /** Stops sending and counting; the run's results stay readable. */
  stop(): void {
    if (!this.gen?.running) return;
    this.gen.stop();
    this.stoppedAt = process.hrtime.bigint();
    this.last = this.gen.results();
    this.logger.info('run stopped', { runId: this.runId });
  }

  /** Closes the current generator, keeping its final counts in the stage totals. */
  private retire(): void {
    if (!this.gen) return;
    this.stop();
    const r = this.gen.results({ latency: false });
    this.base.tx += r.flows.reduce((a, f) => a + f.txPackets, 0);
    this.base.rx += r.flows.reduce((a, f) => a + f.rxPackets, 0);
    this.base.untagged += r.rxUntagged;
    this.base.foreign += r.rxForeign;
    this.gen.close();
    this.gen = undefined;
  }

  run(): RunView {
    const g = this.gen;
    const end = this.stoppedAt ?? process.hrtime.bigint();
    const elapsedMs = g ? Number((end - this.startedAt) / 1000n) / 1000 : 0;
    const results = g ? (g.running ? g.results() : (this.last ?? g.results())) : undefined;
    // The histograms are live in native memory until the generator is retired.
    const histograms =
      g && results ? results.flows.map((f) => (f.latency ? g.histogram(f.flow) : [])) : undefined;
    return {
      runId: this.runId,
      state: !g ? 'IDLE' : g.running ? 'RUNNING' : 'STOPPED',
      elapsedMs,
      names: this.names,
      ...(results ? { results } : {}),
      ...(histograms ? { histograms } : {}),
    };
  }

  ports(): PortView[] {
    return this.pod.view.ports();
  }

  workerLcores(): number[] {
    return [this.lcore];
  }

  counters(): { ports: PortCounters[]; stages: StageCounters[] } {
    const { ports, stages } = this.pod.view.counters();
    const r = this.gen && !this.closed ? this.gen.results({ latency: false }) : undefined;
    const tx = this.base.tx + (r?.flows.reduce((a, f) => a + f.txPackets, 0) ?? 0);
    const rx = this.base.rx + (r?.flows.reduce((a, f) => a + f.rxPackets, 0) ?? 0);
    const untagged = this.base.untagged + (r?.rxUntagged ?? 0);
    const foreign = this.base.foreign + (r?.rxForeign ?? 0);
    return {
      ports,
      stages: [
        ...stages,
        {
          name: 'generator',
          packetsIn: 0n,
          packetsOut: toBig(tx),
          punted: 0n,
          droppedByReason: {},
        },
        {
          name: 'sink',
          packetsIn: toBig(rx + untagged + foreign),
          packetsOut: toBig(rx),
          punted: 0n,
          droppedByReason: { untagged: toBig(untagged), foreign_run: toBig(foreign) },
        },
      ],
    };
  }

  /** The stop half of the runtime's RunningDataplane. */
  async stopTraffic(): Promise<void> {
    this.stop();
    await this.pod.running().stopTraffic();
  }

  async drain(timeoutMs: number): Promise<void> {
    await this.pod.running().drain(timeoutMs);
  }

  /** Frees the generator, then the pod's ports, pool and EAL (no hugepage file left). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.retire();
    this.closed = true;
    await this.pod.close();
  }
}
