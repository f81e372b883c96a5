import type { Telemetry } from '@flowline/telemetry';
import type { TrafficController } from './service';

/**
 * Per-flow metrics of the current run, beside contract 6's (docs/architecture.md) port and stage counters (which the
 * runtime registers from the DataplaneView). Gauges: a new run starts from zero.
 */
export function registerTrafficMetrics(
  telemetry: Telemetry,
  nf: string,
  ctl: TrafficController,
): void {
  const { meter } = telemetry;
  const gauge = (name: string, description: string, unit?: string) =>
    meter.createObservableGauge(name, { description, ...(unit ? { unit } : {}) });
  const tx = gauge('flowline_trafficgen_flow_tx_packets', 'Packets sent by a flow in this run');
  const rx = gauge('flowline_trafficgen_flow_rx_packets', 'Packets of a flow received in this run');
  const lost = gauge(
    'flowline_trafficgen_flow_lost_packets',
    'Packets of a flow lost (by sequence)',
  );
  const reordered = gauge(
    'flowline_trafficgen_flow_reordered_packets',
    'Packets of a flow that arrived after a later one',
  );
  const latency = gauge(
    'flowline_trafficgen_flow_latency_nanoseconds',
    'Latency of a flow in this run by quantile (0.5, 0.99, 1 = max)',
    'ns',
  );
  meter.addBatchObservableCallback(
    (result) => {
      const run = ctl.run();
      for (const f of run.results?.flows ?? []) {
        const labels = { nf, flow: run.names[f.flow] ?? `flow-${f.flow}`, run: String(run.runId) };
        result.observe(tx, f.txPackets, labels);
        result.observe(rx, f.rxPackets, labels);
        result.observe(lost, f.lost, labels);
        result.observe(reordered, f.reordered, labels);
        if (f.latency) {
          result.observe(latency, f.latency.p50Ns, { ...labels, quantile: '0.5' });
          result.observe(latency, f.latency.p99Ns, { ...labels, quantile: '0.99' });
          result.observe(latency, f.latency.maxNs, { ...labels, quantile: '1' });
        }
      }
    },
    [tx, rx, lost, reordered, latency],
  );
}
