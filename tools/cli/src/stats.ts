// Live statistics: each NF's WatchStats stream (port and stage counters) and the chain
// controller's hop counters, turned into rates between two reads and shown as tables.
import type * as grpc from '@grpc/grpc-js';
import type { chainV1, nfV1 } from '@flowline/proto';
import { type NfClient, type OperatorCredentials, chainClient, nfClient, unary } from './clients';
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

export interface StatsView {
  at: number;
  ports: PortRow[];
  drops: Record<string, number>;
  hops: HopRow[];
  chains: { name: string; phase: string; classified: number }[];
}

/** Millions per second between two readings of a counter; 0 without an earlier one. */
const mppsBetween = (now: number, before: number | undefined, seconds: number): number =>
  before !== undefined && seconds > 0 ? (now - before) / seconds / 1e6 : 0;

const n = (v: unknown): number => (typeof v === 'string' || typeof v === 'number' ? Number(v) : 0);

export class StatsCollector {
  private readonly samples = new Map<string, Sample[]>();
  private readonly streams: grpc.ClientReadableStream<nfV1.StatsSnapshot__Output>[] = [];
  private readonly clients: NfClient[] = [];
  private readonly hopHistory = new Map<string, { at: number; packets: number }>();
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
      const stream = client.WatchStats({ intervalMs });
      stream.on('data', (snapshot: nfV1.StatsSnapshot__Output) => {
        const list = this.samples.get(nf.name) ?? [];
        list.push({ at: Date.now(), snapshot });
        if (list.length > 2) list.shift();
        this.samples.set(nf.name, list);
      });
      stream.on('error', () => undefined); // an NF restarting: its rows go stale until it is back
      this.streams.push(stream);
    }
    this.chain = chainAddress ? chainClient(chainAddress, creds) : undefined;
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
            const key = `${chain.name}/${hop.nf}`;
            const packets = n(hop.packets);
            const before = this.hopHistory.get(key);
            const secs = before ? (now - before.at) / 1000 : 0;
            hops.push({
              chain: chain.name,
              hop: hop.nf,
              healthy: hop.healthy,
              packets,
              mpps: mppsBetween(packets, before?.packets, secs),
            });
            this.hopHistory.set(key, { at: now, packets });
          }
        }
      } catch {
        // controller restarting: show NF rows only
      }
    }
    return { at: now, ports, drops, hops, chains };
  }

  close(): void {
    for (const s of this.streams) s.cancel();
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
  return parts.join('\n\n');
}
