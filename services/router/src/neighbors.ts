import { formatAddress } from '@flowline/packet';

/** PERMANENT: configured (static ARP/ND), never aged, probed or overridden by what is learned. */
export type NeighborState = 'INCOMPLETE' | 'REACHABLE' | 'STALE' | 'FAILED' | 'PERMANENT';

export interface NeighborEntry {
  address: string;
  family: 4 | 6;
  iface: string;
  mac?: string;
  state: NeighborState;
  /** When the entry was last confirmed (REACHABLE) or created. */
  confirmedAt: number;
  probes: number;
  nextProbeAt: number;
}

export interface NeighborTimers {
  /** REACHABLE turns STALE after this long without confirmation (RFC 4861 ReachableTime). */
  reachableMs: number;
  /** Between probes of an INCOMPLETE entry (RetransTimer). */
  retransMs: number;
  /** Probes before giving up (MAX_MULTICAST_SOLICIT). */
  maxProbes: number;
  /** STALE entries older than this are re-probed, and dropped if they do not answer. */
  staleProbeMs: number;
  /** FAILED entries are forgotten after this long. */
  failedHoldMs: number;
}

export const DEFAULT_TIMERS: NeighborTimers = {
  reachableMs: 30_000,
  retransMs: 1_000,
  maxProbes: 3,
  staleProbeMs: 60_000,
  failedHoldMs: 5_000,
};

/** What the table asks its owner to do: send a probe, or re-program forwarding. */
export interface NeighborEvents {
  probe(entry: NeighborEntry, unicast: boolean): void;
  changed(): void;
}

const key = (iface: string, address: string) => `${iface}|${address}`;

/**
 * ARP and ND neighbour cache, one state machine for both families, on an explicit clock so
 * aging is testable: INCOMPLETE (probing) → REACHABLE (answered) → STALE (aged, still used) →
 * re-probed → REACHABLE again, or FAILED and forgotten.
 */
export class NeighborTable {
  private readonly entries = new Map<string, NeighborEntry>();

  constructor(
    private readonly events: NeighborEvents,
    private readonly timers: NeighborTimers = DEFAULT_TIMERS,
  ) {}

  list(): NeighborEntry[] {
    return [...this.entries.values()].sort(
      (a, b) => a.iface.localeCompare(b.iface) || a.address.localeCompare(b.address),
    );
  }

  lookup(iface: string, address: string): NeighborEntry | undefined {
    return this.entries.get(key(iface, address));
  }

  /** Starts resolving an address (a glean, a gateway) unless it is known or being resolved. */
  resolve(iface: string, bytes: Uint8Array, now: number): void {
    const family = bytes.length === 4 ? 4 : 6;
    const address = formatAddress(bytes, family);
    const existing = this.entries.get(key(iface, address));
    if (existing && existing.state !== 'FAILED') return;
    if (existing?.state === 'FAILED' && now - existing.confirmedAt < this.timers.failedHoldMs)
      return;
    const entry: NeighborEntry = {
      address,
      family,
      iface,
      state: 'INCOMPLETE',
      confirmedAt: now,
      probes: 1,
      nextProbeAt: now + this.timers.retransMs,
    };
    this.entries.set(key(iface, address), entry);
    this.events.probe(entry, false);
  }

  /** A configured neighbour (like `ip neigh add ... nud permanent`). */
  addPermanent(iface: string, bytes: Uint8Array, mac: string, now: number): void {
    const family = bytes.length === 4 ? 4 : 6;
    const address = formatAddress(bytes, family);
    this.entries.set(key(iface, address), {
      address,
      family,
      iface,
      mac,
      state: 'PERMANENT',
      confirmedAt: now,
      probes: 0,
      nextProbeAt: Number.POSITIVE_INFINITY,
    });
    this.events.changed();
  }

  /**
   * Records a MAC seen for an address. `confirmed` (an ARP reply or a solicited NA) makes it
   * REACHABLE; an address learned from someone's request becomes STALE, as RFC 4861 §7.2.3 says.
   */
  learn(iface: string, bytes: Uint8Array, mac: string, confirmed: boolean, now: number): void {
    const family = bytes.length === 4 ? 4 : 6;
    const address = formatAddress(bytes, family);
    const existing = this.entries.get(key(iface, address));
    if (existing?.state === 'PERMANENT') return;
    const macChanged = existing?.mac !== mac;
    const wasUsable = existing?.mac !== undefined && existing.state !== 'FAILED';
    const state: NeighborState = confirmed
      ? 'REACHABLE'
      : existing?.state === 'REACHABLE' && !macChanged
        ? 'REACHABLE'
        : 'STALE';
    this.entries.set(key(iface, address), {
      address,
      family,
      iface,
      mac,
      state,
      confirmedAt: confirmed || !existing ? now : existing.confirmedAt,
      probes: 0,
      nextProbeAt: Number.POSITIVE_INFINITY,
    });
    if (macChanged || !wasUsable) this.events.changed();
  }

  /** Advances the state machines to `now`; call it about once a second. */
  tick(now: number): void {
    let changed = false;
    for (const [k, e] of this.entries) {
      if (e.state === 'PERMANENT') continue;
      if (e.state === 'REACHABLE' && now - e.confirmedAt >= this.timers.reachableMs) {
        e.state = 'STALE';
      }
      if (
        e.state === 'STALE' &&
        now - e.confirmedAt >= this.timers.staleProbeMs &&
        e.probes === 0
      ) {
        e.probes = 1;
        e.nextProbeAt = now + this.timers.retransMs;
        this.events.probe(e, true);
        continue;
      }
      if (
        (e.state === 'INCOMPLETE' || (e.state === 'STALE' && e.probes > 0)) &&
        now >= e.nextProbeAt
      ) {
        if (e.probes >= this.timers.maxProbes) {
          const hadMac = e.mac !== undefined;
          e.state = 'FAILED';
          delete e.mac;
          e.confirmedAt = now;
          e.nextProbeAt = Number.POSITIVE_INFINITY;
          if (hadMac) changed = true;
        } else {
          e.probes += 1;
          e.nextProbeAt = now + this.timers.retransMs;
          this.events.probe(e, e.state === 'STALE');
        }
      }
      if (e.state === 'FAILED' && now - e.confirmedAt >= this.timers.failedHoldMs)
        this.entries.delete(k);
    }
    if (changed) this.events.changed();
  }
}
