/**
 * How an NF's workers wait for packets (`rxMode` in the runtime config, FLOWLINE_RX_MODE,
 * --rx-mode), as VPP's rx-mode:
 *
 * - `poll`: busy-poll always (lowest latency; a whole core per worker, even idle).
 * - `adaptive` (default): poll while bursts come in; when idle, arm the ports' rx interrupts and
 *   sleep until the peer kicks (virtio-user / net_vhost queues have eventfd kick/call), then
 *   poll again. Ports without rx interrupts fall back to the timer back-off.
 * - `interrupt`: as adaptive, but sleep as soon as a poll comes back empty.
 *
 * `rxPlan` turns the request into what the workers are given: the mode the native side can do
 * on these ports and a timer back-off (the fallback, and the whole of adaptive until the
 * native workers can wait on rx interrupts: `nativeRxInterrupts`).
 */
import type { PodPortKind } from './pod-devices';

export const RX_MODES = ['poll', 'adaptive', 'interrupt'] as const;
export type RxMode = (typeof RX_MODES)[number];

/** What packages/dpdk's Pipeline and TrafficGenerator take as `backoff`. */
export interface RxBackoff {
  spinPolls: number;
  sleepMinUs: number;
  sleepMaxUs: number;
  /**
   * The worker shares its core with other pollers (a pod's workers and the switch's PMD on a
   * node's few cores): a poll that comes back short yields the CPU (sched_yield) instead of
   * spinning to the end of the scheduler's slice. Off in `poll`, which assumes a core of its own.
   */
  shareCore: boolean;
}

/**
 * What a Pipeline.create spec takes from the plan (spread it in): the back-off, and the rxMode
 * once @flowline/dpdk's workers can wait on rx interrupts.
 */
export interface PipelineRx {
  backoff: RxBackoff;
  rxMode?: RxMode;
}

export interface RxPlan {
  /** What the config asked for. */
  requested: RxMode;
  /** What the workers do: the requested mode, or the timer back-off where it cannot be had. */
  effective: RxMode | 'timer-backoff';
  /** Why effective differs from requested (absent when it does not). */
  reason?: string;
  /** The back-off to give the native worker: the fallback, or busy polling for `poll`. */
  backoff: RxBackoff;
  /** `{ backoff, rxMode? }` for Pipeline.create (rxMode only where the native side has it). */
  pipeline: PipelineRx;
}

/** Port kinds whose queues can raise rx interrupts (eventfd kick/call, or a VF's MSI-X). */
const INTERRUPT_KINDS: ReadonlySet<string> = new Set(['virtio-user', 'vhost', 'pci']);

/** Busy polling: a worker never sleeps (idle polls wrap at 2^32, about an hour). */
export const POLL_BACKOFF: RxBackoff = {
  spinPolls: 0xffffffff,
  sleepMinUs: 1,
  sleepMaxUs: 1,
  shareCore: false,
};
/** The timer back-off: short spin, then sleeps doubling from 10 µs to 500 µs. */
export const TIMER_BACKOFF: RxBackoff = {
  spinPolls: 256,
  sleepMinUs: 10,
  sleepMaxUs: 500,
  shareCore: true,
};

export function rxPlan(
  requested: RxMode,
  ports: readonly { name: string; kind: PodPortKind | string }[],
  nativeRxInterrupts: boolean,
): RxPlan {
  const plan = (effective: RxPlan['effective'], backoff: RxBackoff, reason?: string): RxPlan => ({
    requested,
    effective,
    ...(reason ? { reason } : {}),
    backoff,
    pipeline: {
      backoff,
      ...(nativeRxInterrupts && effective !== 'timer-backoff' ? { rxMode: effective } : {}),
    },
  });
  if (requested === 'poll') return plan('poll', POLL_BACKOFF);
  const without = ports.filter((p) => !INTERRUPT_KINDS.has(p.kind)).map((p) => p.name);
  const reason = !nativeRxInterrupts
    ? 'this build of @flowline/dpdk has no rx-interrupt wait yet'
    : without.length > 0
      ? `ports without rx interrupts: ${without.join(', ')}`
      : undefined;
  if (reason) return plan('timer-backoff', TIMER_BACKOFF, reason);
  return plan(
    requested,
    requested === 'interrupt' ? { ...TIMER_BACKOFF, spinPolls: 0 } : TIMER_BACKOFF,
  );
}
