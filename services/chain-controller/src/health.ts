import * as grpc from '@grpc/grpc-js';
import { type healthV1, loadHealthV1 } from '@flowline/proto';
import type { HealthWatch } from './controller';

/**
 * Watches grpc.health.v1 (service "") of an NF and reports each change of healthy/unhealthy.
 * An unreachable NF (killed, restarting) is unhealthy; the watch retries every `retryMs` and
 * reports healthy again as soon as the NF serves.
 */
export function grpcHealthWatch(retryMs = 500): HealthWatch {
  return (address, onChange) => {
    const Health = loadHealthV1().Health;
    const client = new Health(
      address.startsWith('unix:') ? address : `dns:${address}`,
      grpc.credentials.createInsecure(),
    );
    let stopped = false;
    let last: boolean | undefined;
    let timer: NodeJS.Timeout | undefined;
    let call: grpc.ClientReadableStream<healthV1.HealthCheckResponse__Output> | undefined;
    const report = (healthy: boolean, message: string): void => {
      if (stopped || healthy === last) return;
      last = healthy;
      onChange(healthy, message);
    };
    const open = (): void => {
      if (stopped) return;
      call = client.Watch({ service: '' });
      call.on('data', (r: healthV1.HealthCheckResponse__Output) =>
        report(r.status === 'SERVING', String(r.status)),
      );
      const retry = (why: string): void => {
        report(false, why);
        call?.removeAllListeners();
        if (!stopped) timer = setTimeout(open, retryMs);
      };
      call.on('error', (err: grpc.ServiceError) =>
        retry(`unreachable: ${err.details || err.message}`),
      );
      call.on('end', () => retry('health stream ended'));
    };
    open();
    return () => {
      stopped = true;
      if (timer) clearTimeout(timer);
      call?.cancel();
      client.close();
    };
  };
}
