/**
 * Frame replay (native/fl_replay.c): a benchmark source that costs its sender as little as a
 * DPDK port allows. The frames are written once into every mbuf of a pool of its own (mbuf k
 * carries frame k % n), so a packet costs an allocation, its length fields and the tx burst;
 * nothing is written into packet data and no reference count is shared. One port at a time is
 * active: its rx queue 0 is drained and freed unread and its tx queue 0 offered a burst on every
 * loop of one worker lcore. Counters per port: offered, sent, received.
 *
 * The frames stay as written only while nobody writes into the mbufs: send them over links
 * that copy (virtio-user, vhost-user, a NIC), and give the ports' rx queues another pool. The
 * pool must outlive the ports (their tx rings hold its mbufs): close the ports first.
 */
import { DpdkError, nativeError } from './errors';
import { requireEal, workerLcore } from './eal';
import { LcorePoller } from './lcore-poller';
import type { Mempool } from './mempool';
import { native, type NativeAddon } from './native';
import type { Port } from './port';

const MAX_PORTS = 16;
const MIN_FRAME = 14;
const COUNTERS = 3;

/** A replay that cannot be made or driven; `path` names the bad field. */
export class FrameReplayError extends DpdkError {
  constructor(
    message: string,
    readonly path: string,
    op = 'frame-replay',
    errno?: number,
  ) {
    super(path ? `${path}: ${message}` : message, op, errno);
  }
}

export interface FrameReplaySpec {
  /** EAL worker lcore of the poller. Default: the first worker. */
  lcore?: number;
  /** Started ports the replay sends on, one at a time (`select`); queue 0 of each is its. */
  ports: readonly Port[];
  /** The replay's own pool, with nothing allocated from it; the ports' rx queues use another. */
  pool: Mempool;
  /** Whole frames without FCS, all of one length (>= 14 bytes). */
  frames: readonly Uint8Array[];
  /** Default 32. */
  burst?: number;
}

export interface FrameReplayCounters {
  /** Packets offered to the tx burst. */
  tried: number;
  /** Packets the tx burst took (the rest went back to the pool). */
  sent: number;
  /** Packets received on the port and freed. */
  received: number;
}

interface ReplayAddon {
  replayCreate(conf: unknown): number;
  replayStart(replay: number): void;
  replaySelect(replay: number, index: number): void;
  replayStop(replay: number): void;
  replayFree(replay: number): void;
  replayCounters(replay: number): Float64Array;
}

function addon(): ReplayAddon {
  return native() as NativeAddon & ReplayAddon;
}

export class FrameReplay extends LcorePoller {
  protected readonly what = 'replay';

  private constructor(
    handle: number,
    lcore: number,
    private readonly ports: readonly Port[],
    pool: Mempool,
  ) {
    super(
      handle,
      lcore,
      {
        start: (h) => addon().replayStart(h),
        stop: (h) => addon().replayStop(h),
        free: (h) => addon().replayFree(h),
      },
      pool,
      ports,
    );
  }

  protected error(message: string, path: string, op?: string, errno?: number): Error {
    return new FrameReplayError(message, path, op, errno);
  }

  static create(spec: FrameReplaySpec): FrameReplay {
    const eal = requireEal();
    eal.assertRunning();
    const lcore = workerLcore(spec.lcore, (why) => new FrameReplayError(why, 'lcore'));
    if (!Array.isArray(spec.ports) || spec.ports.length === 0 || spec.ports.length > MAX_PORTS)
      throw new FrameReplayError(`give 1..${MAX_PORTS} ports`, 'ports');
    spec.ports.forEach((p, i) =>
      FrameReplay.livePort(p, `ports[${i}]`, (m, at) => new FrameReplayError(m, at)),
    );
    const ids = spec.ports.map((p) => p.id);
    const twice = ids.findIndex((id, i) => ids.indexOf(id) !== i);
    if (twice >= 0)
      throw new FrameReplayError(`port ${ids[twice]} is listed twice`, `ports[${twice}]`);
    const burst = spec.burst ?? 32;
    const maxBurst = native().constants.maxBurst;
    if (!Number.isInteger(burst) || burst < 1 || burst > maxBurst)
      throw new FrameReplayError(`${burst}: give an integer 1..${maxBurst}`, 'burst');
    const first = spec.frames[0];
    if (!first) throw new FrameReplayError('give at least one frame', 'frames');
    const length = first.length;
    for (const [i, f] of spec.frames.entries()) {
      if (f.length !== length)
        throw new FrameReplayError(
          `${f.length} bytes where frames[0] has ${length}: every frame has one length`,
          `frames[${i}]`,
        );
    }
    if (length < MIN_FRAME)
      throw new FrameReplayError(`${length} bytes: a frame has at least ${MIN_FRAME}`, 'frames[0]');
    const frames = Buffer.concat(
      spec.frames.map((f) => Buffer.from(f.buffer, f.byteOffset, f.length)),
    );
    try {
      const handle = addon().replayCreate({
        lcore,
        burst,
        pool: spec.pool.handle,
        ports: ids,
        frames,
        frameLength: length,
      });
      return new FrameReplay(handle, lcore, spec.ports, spec.pool);
    } catch (e) {
      const n = nativeError(e);
      throw new FrameReplayError(n.message, '', n.op ?? 'replay_create', n.errno);
    }
  }

  /** Sends on `port` (one of the spec's) from the poller's next loop on; null: on none. */
  select(port: Port | null): void {
    this.assertLive();
    const index = port === null ? -1 : this.ports.indexOf(port);
    if (port !== null && index < 0)
      throw new FrameReplayError(`port ${port.id} is not one of the replay's`, 'port');
    addon().replaySelect(this.handle, index);
  }

  /** Counters now, per port in the order the spec gave them. */
  counters(): FrameReplayCounters[] {
    this.assertLive();
    const v = addon().replayCounters(this.handle);
    return this.ports.map((_, i) => ({
      tried: v[i * COUNTERS] ?? 0,
      sent: v[i * COUNTERS + 1] ?? 0,
      received: v[i * COUNTERS + 2] ?? 0,
    }));
  }
}
