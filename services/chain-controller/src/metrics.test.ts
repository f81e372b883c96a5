import { setupTelemetry } from '@flowline/telemetry';
import type { chainV1 } from '@flowline/proto';
import { describe, expect, it } from 'vitest';
import { registerChainMetrics } from './metrics';

describe('chain metrics (what the Grafana dashboard queries)', () => {
  it('exports hop packets, hop health and classified packets per chain from the switch counters', async () => {
    const telemetry = await setupTelemetry({
      component: 'chain-metrics-test',
      metricsPort: 0,
      metricsHost: '127.0.0.1',
    });
    try {
      const chains: chainV1.Chain[] = [
        {
          name: 'web',
          status: {
            classifiedPackets: '120',
            hops: [
              { nf: 'default/fw', healthy: true, packets: '120' },
              { nf: 'default/rtr', healthy: false, packets: '77' },
            ],
          },
        },
      ];
      registerChainMetrics(telemetry.meter, { statsSnapshot: async () => chains });
      const body = await (await fetch(telemetry.metricsUrl!)).text();
      expect(body).toMatch(
        /flowline_chain_hop_packets_total\{chain="web",hop="0",nf="default\/fw"\} 120/,
      );
      expect(body).toMatch(
        /flowline_chain_hop_packets_total\{chain="web",hop="1",nf="default\/rtr"\} 77/,
      );
      expect(body).toMatch(/flowline_chain_hop_healthy\{chain="web",hop="0",nf="default\/fw"\} 1/);
      expect(body).toMatch(/flowline_chain_hop_healthy\{chain="web",hop="1",nf="default\/rtr"\} 0/);
      expect(body).toMatch(/flowline_chain_classified_packets_total\{chain="web"\} 120/);
    } finally {
      await telemetry.shutdown();
    }
  });
});
