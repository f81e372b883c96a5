// Live statistics: each NF's WatchStats stream (port and stage counters) and the chain
// controller's hop and crossing counters, turned into rates between two reads and shown as
// tables.
import type * as grpc from '@grpc/grpc-js';
import type { chainV1, nfV1 } from '@flowline/proto';
import {
  type NfClient,
  type OperatorCredentials,
  chainClient,
  grpcMessage,
  nfClient,
  unary,
} from './clients';
import { renderTable } from './table';

interface Sample {
  at: number;
  snapshot: nfV1.StatsSnapshot__Output;
}

export interface PortRow {
  nf: string;
  port: string;
  rxPackets: number;
  txPackets: number;
  rxMpps: number;
  txMpps: number;
  drops: number;
}

export interface HopRow {
  chain: string;
  hop: string;
  healthy: boolean;
  packets: number;
  mpps: number;
}

/** Where a chain crosses from one node's switch to another's (ChainStatus.crossings). */
export interface CrossingRow {
  chain: string;
  from: string;
  to: string;
  /** The chain step that crosses: 0 from the classifier, k >= 1 out of hops[k-1] (0-based). */
  step: number;
  /** The sending node's tunnel port ('' when the controller does not know it). */
  tunnelPort: string;
  /** Received at `to`. */
  packets: number;
  /** Dropped at `from` as too long for the tunnel (0 when the controller does not check). */
  oversizeDrops: number;
  mpps: number;
  /** A bidirectional chain's reverse direction (its steps numbered along that direction). */
  reverse: boolean;
}

export interface StatsView {
  at: number;
  ports: PortRow[];
  drops: Record<string, number>;
  hops: HopRow[];
  crossings: CrossingRow[];
  chains: { name: string; phase: string; classified: number }[];
  /**
   * Who did not answer (an NF's pod key, or `chain-controller`) and why: the last error of its
   * stream or call. An NF whose stream broke has no rows until it answers again (its old samples
   * would read as rates).
   */
  errors: Record<string, string>;
}

/** An NF's stats stream that broke is opened again after this, doubling up to the max. */
const REOPEN_MIN_MS = 500;
const REOPEN_MAX_MS = 8000;

/** Millions per second between two readings of a counter; 0 without an earlier one. */
const mppsBetween = (now: number, before: number | undefined, seconds: number): number =>
  before !== undefined && seconds > 0 ? (now - before) / seconds / 1e6 : 0;

const n = (v: unknown): number => (typeof v === 'string' || typeof v === 'number' ? Number(v) : 0);

/** Counters by key, each turned into Mpps since its previous reading. */
class Rates {
  private readonly last = new Map<string, { at: number; packets: number }>();

  /** Mpps of `key`'s counter since its last reading (0 the first time); keeps this one. */
  mpps(key: string, packets: number, now: number): number {
    const before = this.last.get(key);
    this.last.set(key, { at: now, packets });
    return mppsBetween(packets, before?.packets, before ? (now - before.at) / 1000 : 0);
  }
}

/** Each chain's crossings between nodes, in the chains' order and then the status's (no rates). */
export function crossingRows(chains: readonly chainV1.Chain__Output[]): CrossingRow[] {
  return chains.flatMap((chain) =>
    (chain.status?.crossings ?? []).map((c) => ({
      chain: chain.name,
      from: c.fromNode,
      to: c.toNode,
      step: c.step,
      tunnelPort: c.tunnelPort,
      packets: n(c.packets),
      oversizeDrops: n(c.oversizeDrops),
      mpps: 0,
      reverse: Boolean(c.reverse),
    })),
  );
}

/**
 * The crossings table: from → to (marked for the reverse direction), the step, the tunnel port,
 * packets, those dropped as too long for the tunnel (and Mpps with `rates`).
 */
export function renderCrossings(rows: readonly CrossingRow[], rates: boolean): string {
  return renderTable(
    ['chain', 'crossing', 'step', 'tunnel port', 'packets', 'too long', ...(rates ? ['Mpps'] : [])],
    rows.map((c) => [
      c.chain,
      `${c.from} → ${c.to}${c.reverse ? ' (reverse)' : ''}`,
      c.step,
      c.tunnelPort || '?',
      c.packets,
      c.oversizeDrops,
      ...(rates ? [c.mpps.toFixed(3)] : []),
    ]),
  );
}

/** The errors key of the chain controller's ListChains. */
export const CONTROLLER = 'chain-controller';

export class StatsCollector {
  private readonly samples = new Map<string, Sample[]>();
  private readonly streams = new Map<
    string,
    grpc.ClientReadableStream<nfV1.StatsSnapshot__Output>
  >();
  private readonly clients: NfClient[] = [];
  private readonly errors = new Map<string, string>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private closed = false;
  private readonly rates = new Rates();
  private readonly chain: chainV1.ChainServiceClient | undefined;

  constructor(
    /** name: the pod key (namespace/name), which is also whose identity its NF must prove. */
    nfs: { name: string; grpcAddress: string }[],
    chainAddress: string | undefined,
    creds: OperatorCredentials,
    intervalMs = 1000,
  ) {
    for (const nf of nfs) {
      const client = nfClient(nf.grpcAddress, nf.name, creds);
      this.clients.push(client);
      this.watch(nf.name, client, intervalMs, REOPEN_MIN_MS);
    }
    this.chain = chainAddress ? chainClient(chainAddress, creds) : undefined;
  }

  /** Opens an NF's stats stream; when it breaks (the NF restarting), again after reopenMs. */
  private watch(name: string, client: NfClient, intervalMs: number, reopenMs: number): void {
    const stream = client.WatchStats({ intervalMs });
    this.streams.set(name, stream);
    let answered = false;
    stream.on('data', (snapshot: nfV1.StatsSnapshot__Output) => {
      answered = true;
      this.errors.delete(name);
      const list = this.samples.get(name) ?? [];
      list.push({ at: Date.now(), snapshot });
      if (list.length > 2) list.shift();
      this.samples.set(name, list);
    });
    stream.on('error', (err: unknown) => {
      if (this.closed) return;
      this.errors.set(name, grpcMessage(err));
      this.samples.delete(name);
      // A stream that answered before starts the back-off over.
      const delay = answered ? REOPEN_MIN_MS : reopenMs;
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        if (!this.closed) this.watch(name, client, intervalMs, Math.min(delay * 2, REOPEN_MAX_MS));
      }, delay);
      timer.unref();
      this.timers.add(timer);
    });
  }

  async read(): Promise<StatsView> {
    const now = Date.now();
    const ports: PortRow[] = [];
    const drops: Record<string, number> = {};
    for (const [nf, list] of [...this.samples].sort(([a], [b]) => a.localeCompare(b))) {
      const last = list[list.length - 1]!;
      const prev = list.length > 1 ? list[0]! : undefined;
      const secs = prev ? (last.at - prev.at) / 1000 : 0;
      for (const p of last.snapshot.ports) {
        const before = prev?.snapshot.ports.find((q) => q.name === p.name);
        const rx = n(p.rxPackets);
        const tx = n(p.txPackets);
        ports.push({
          nf,
          port: p.name,
          rxPackets: rx,
          txPackets: tx,
          rxMpps: mppsBetween(rx, before && n(before.rxPackets), secs),
          txMpps: mppsBetween(tx, before && n(before.txPackets), secs),
          drops: n(p.rxMissed) + n(p.rxErrors) + n(p.txErrors),
        });
        if (n(p.rxMissed))
          drops[`${nf}:rx_missed`] = (drops[`${nf}:rx_missed`] ?? 0) + n(p.rxMissed);
      }
      for (const s of last.snapshot.stages) {
        for (const [reason, count] of Object.entries(s.droppedByReason ?? {})) {
          if (n(count) > 0) drops[`${nf}:${s.name}:${reason}`] = n(count);
        }
      }
    }
    const hops: HopRow[] = [];
    const crossings: CrossingRow[] = [];
    const chains: StatsView['chains'] = [];
    if (this.chain) {
      try {
        const c = this.chain;
        const { chains: list } = await unary(
          c.ListChains.bind(c) as Parameters<
            typeof unary<object, { chains: chainV1.Chain__Output[] }>
          >[0],
          {},
          3000,
        );
        for (const chain of list) {
          chains.push({
            name: chain.name,
            phase: String(chain.status?.phase ?? ''),
            classified: n(chain.status?.classifiedPackets),
          });
          for (const hop of chain.status?.hops ?? []) {
            const packets = n(hop.packets);
            hops.push({
              chain: chain.name,
              hop: hop.nf,
              healthy: hop.healthy,
              packets,
              mpps: this.rates.mpps(`hop ${chain.name}/${hop.nf}`, packets, now),
            });
          }
        }
        for (const c of crossingRows(list))
          crossings.push({
            ...c,
            mpps: this.rates.mpps(
              `crossing ${c.chain}/${c.reverse ? 'r' : 'f'}${c.step}/${c.from}/${c.to}`,
              c.packets,
              now,
            ),
          });
        this.errors.delete(CONTROLLER);
      } catch (err) {
        // controller restarting: NF rows only, and why
        this.errors.set(CONTROLLER, grpcMessage(err));
      }
    }
    const errors = Object.fromEntries([...this.errors].sort(([a], [b]) => a.localeCompare(b)));
    return { at: now, ports, drops, hops, crossings, chains, errors };
  }

  close(): void {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const s of this.streams.values()) s.cancel();
    for (const c of this.clients) c.close();
    this.chain?.close();
  }
}

export function renderStats(view: StatsView): string {
  const parts: string[] = [];
  if (view.chains.length) {
    parts.push(
      renderTable(
        ['chain', 'hop', 'healthy', 'packets', 'Mpps'],
        view.hops.map((h) => [
          h.chain,
          h.hop,
          h.healthy ? 'yes' : 'NO',
          h.packets,
          h.mpps.toFixed(3),
        ]),
      ),
    );
  }
  if (view.crossings.length) parts.push(renderCrossings(view.crossings, true));
  parts.push(
    renderTable(
      ['nf', 'port', 'rx pkts', 'tx pkts', 'rx Mpps', 'tx Mpps', 'port drops'],
      view.ports.map((p) => [
        p.nf,
        p.port,
        p.rxPackets,
        p.txPackets,
        p.rxMpps.toFixed(3),
        p.txMpps.toFixed(3),
        p.drops,
      ]),
    ),
  );
  const dropRows = Object.entries(view.drops).sort(([a], [b]) => a.localeCompare(b));
  if (dropRows.length)
    parts.push(
      renderTable(
        ['dropped by', 'packets'],
        dropRows.map(([k, v]) => [k, v]),
      ),
    );
  const errorRows = Object.entries(view.errors);
  if (errorRows.length) parts.push(renderTable(['not answering', 'why'], errorRows));
  return parts.join('\n\n');
}
