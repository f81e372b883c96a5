// The chain controller's metrics (contract 6, docs/architecture.md), read at each scrape:
// packets steered into each hop (the switch's OpenFlow rule counters, as in chain status) and
// each hop's health (1 when its grpc.health.v1 says SERVING; else the failure policy applies).
import type { chainV1 } from '@flowline/proto';
import type { Telemetry } from '@flowline/telemetry';

type Meter = Telemetry['meter'];

export interface ChainStatsSource {
  statsSnapshot(): Promise<chainV1.Chain[]>;
}

/** Each hop's labels: the chain, the hop's position and its NF. */
export function hopLabels(chain: chainV1.Chain, i: number): Record<string, string> {
  return { chain: chain.name ?? '', hop: String(i), nf: chain.status?.hops?.[i]?.nf ?? '' };
}

export function registerChainMetrics(meter: Meter, source: ChainStatsSource): void {
  const hopPackets = meter.createObservableCounter('flowline_chain_hop_packets', {
    description: 'Packets steered into each hop of a chain (OpenFlow rule counters)',
  });
  const hopHealthy = meter.createObservableGauge('flowline_chain_hop_healthy', {
    description: "1 when the hop's grpc.health.v1 reports SERVING, else 0",
  });
  const classified = meter.createObservableCounter('flowline_chain_classified_packets', {
    description: "Packets the chain's classifier took from its ingress port",
  });
  meter.addBatchObservableCallback(
    async (result) => {
      for (const chain of await source.statsSnapshot()) {
        result.observe(classified, Number(chain.status?.classifiedPackets ?? 0), {
          chain: chain.name ?? '',
        });
        (chain.status?.hops ?? []).forEach((h, i) => {
          const labels = hopLabels(chain, i);
          result.observe(hopPackets, Number(h.packets ?? 0), labels);
          result.observe(hopHealthy, h.healthy ? 1 : 0, labels);
        });
      }
    },
    [hopPackets, hopHealthy, classified],
  );
}
