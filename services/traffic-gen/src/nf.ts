import type { NetworkFunctionDefinition } from '@flowline/nf-runtime';
import { z } from 'zod';
import { TrafficDataplane } from './dataplane';
import { registerTrafficMetrics } from './metrics';
import { trafficGenService } from './service';

export const VERSION = '0.1.0';

/** The NF's own settings (`nf:` in the config file). */
export const trafficGenSchema = z
  .object({
    /** Worker lcore of the generator/sink poller; default the first EAL worker. */
    lcore: z.int().min(1).max(1023).optional(),
    /** Mbufs for generated and received frames. */
    poolSize: z.int().min(1023).max(1_048_575).default(16383),
    burst: z.int().min(1).max(256).default(32),
  })
  // A misspelt key is an error naming it, not a default taken in silence.
  .strict();
export type TrafficGenConfig = z.infer<typeof trafficGenSchema>;

/** Boots through the NF runtime: EAL and ports from the pod, the gRPC API, metrics. */
export const trafficGen: NetworkFunctionDefinition<TrafficGenConfig> = {
  kind: 'traffic-gen',
  version: VERSION,
  nfSchema: trafficGenSchema,
  async start({ config, ports, eal, telemetry, logger }) {
    const nf = config.nf;
    const dp = TrafficDataplane.open(
      { eal, ports, logger },
      {
        rxMode: config.runtime.rxMode,
        ...(nf.lcore !== undefined ? { lcore: nf.lcore } : {}),
        poolSize: nf.poolSize,
        burst: nf.burst,
      },
    );
    registerTrafficMetrics(telemetry, config.runtime.name, dp);
    return {
      dataplane: dp,
      services: [trafficGenService(dp)],
      stopTraffic: () => dp.stopTraffic(),
      drain: (ms) => dp.drain(ms),
      close: () => dp.close(),
    };
  },
};
