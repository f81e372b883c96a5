import type { NfDirectory } from './directory';
import type { ResolvedChain } from './flows';
import type { NfWorkload } from './nf-identity';

/** Reports an NF's grpc.health.v1 status as it changes; returns a function that stops watching. */
export type HealthWatch = (
  address: string,
  onChange: (healthy: boolean, message: string) => void,
  /** Whose identity the NF at `address` must prove (src/nf-identity.ts). */
  workload?: NfWorkload,
) => () => void;

/** The last health reported for an NF. */
export interface HopState {
  healthy: boolean;
  message: string;
}

export interface HopHealthOptions {
  /** Where an NF's gRPC address and workload are looked up. */
  directory: NfDirectory;
  /** How an NF's health is watched (src/health.ts); without one nothing is watched. */
  watch?: HealthWatch;
  /** The NFs to watch: those some chain uses. */
  wanted: () => Iterable<string>;
  /** Each report of a watch; it counts once the receiver passes it to record(). */
  onReport: (nf: string, healthy: boolean, message: string) => void;
}

/**
 * The health of the hops' NFs: one grpc.health.v1 watch per NF some chain uses, and only those,
 * started from a fresh directory lookup of the NF's gRPC address; the last health each NF
 * reported. An NF nothing has been heard of counts as healthy.
 */
export class HopHealth {
  private readonly states = new Map<string, HopState>();
  private readonly watches = new Map<string, () => void>();

  constructor(private readonly options: HopHealthOptions) {}

  /** What was last recorded for `nf`, if anything. */
  of(nf: string): HopState | undefined {
    return this.states.get(nf);
  }

  /** Healthy unless reported down. */
  healthy(nf: string): boolean {
    return this.states.get(nf)?.healthy ?? true;
  }

  /** Records a report; returns whether the NF's health (healthy or not) changed. */
  record(nf: string, healthy: boolean, message: string): boolean {
    const before = this.states.get(nf);
    this.states.set(nf, { healthy, message });
    return before?.healthy !== healthy;
  }

  /** The chain with each hop marked healthy or not, for compiling its flows. */
  mark(chain: ResolvedChain): ResolvedChain {
    return { ...chain, hops: chain.hops.map((h) => ({ ...h, healthy: this.healthy(h.nf) })) };
  }

  /** Watches every wanted NF and only those: stops (and forgets) the others, starts the new. */
  sync(): void {
    const watch = this.options.watch;
    if (!watch) return;
    const wanted = new Set(this.options.wanted());
    for (const [nf, stop] of this.watches) {
      if (!wanted.has(nf)) {
        stop();
        this.watches.delete(nf);
        this.states.delete(nf);
      }
    }
    for (const nf of wanted) {
      if (this.watches.has(nf)) continue;
      const reserved = (): void => undefined; // holds the place while the address is looked up
      this.watches.set(nf, reserved);
      void this.options.directory.lookup(nf).then(
        (record) => {
          if (this.watches.get(nf) !== reserved) return; // stopped or restarted meanwhile
          if (!record?.grpcAddress) {
            this.states.set(nf, {
              healthy: true,
              message: 'no gRPC address known: health not watched',
            });
            return;
          }
          this.watches.set(
            nf,
            watch(
              record.grpcAddress,
              (healthy, message) => this.options.onReport(nf, healthy, message),
              record.workload,
            ),
          );
        },
        () => {
          // The directory could not answer (a switch unreachable, or closing): the place is freed
          // so that the next sync looks again; an unhandled rejection would end the process.
          if (this.watches.get(nf) === reserved) this.watches.delete(nf);
        },
      );
    }
  }

  /**
   * Watches the NF again from a fresh directory lookup (its pod came back at another address).
   * The last reported health stands until the new watch reports. Nothing when it is not watched.
   */
  restart(nf: string): void {
    const stop = this.watches.get(nf);
    if (!stop) return;
    stop();
    this.watches.delete(nf);
    this.sync();
  }

  /** Stops every watch; the recorded health stays. */
  stop(): void {
    for (const stop of this.watches.values()) stop();
    this.watches.clear();
  }
}
