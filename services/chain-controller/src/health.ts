import * as grpc from '@grpc/grpc-js';
import { DEFAULT_TRUST_DOMAIN, type TransportSecurity } from '@flowline/grpc-auth';
import { type healthV1, loadHealthV1 } from '@flowline/proto';
import type { HealthWatch } from './hop-health';
import { nfChannelCredentials } from './nf-identity';

/**
 * Watches grpc.health.v1 (service "") of an NF on its main gRPC port and reports each change of
 * healthy/unhealthy. With mutual TLS the controller presents its certificate and the NF must
 * prove the identity of its workload (nfChannelCredentials); an NF proving another identity (or
 * none) is unhealthy, as an unreachable one (killed, restarting) is. The watch retries every
 * `retryMs` and reports healthy again as soon as the NF serves.
 */
export function grpcHealthWatch(
  security: TransportSecurity,
  trustDomain = DEFAULT_TRUST_DOMAIN,
  retryMs = 500,
): HealthWatch {
  return (address, onChange, workload) => {
    let creds: grpc.ChannelCredentials;
    try {
      creds = nfChannelCredentials(security, trustDomain, workload);
    } catch (err) {
      onChange(false, (err as Error).message);
      return () => undefined;
    }
    const Health = loadHealthV1().Health;
    const client = new Health(address.startsWith('unix:') ? address : `dns:${address}`, creds);
    let stopped = false;
    let last: boolean | undefined;
    let lastMessage: string | undefined;
    let timer: NodeJS.Timeout | undefined;
    let call: grpc.ClientReadableStream<healthV1.HealthCheckResponse__Output> | undefined;
    const report = (healthy: boolean, message: string): void => {
      // A down hop's reason is reported as it changes too (unreachable, then "proved another
      // identity"), so that its status says why.
      if (stopped || (healthy === last && (healthy || message === lastMessage))) return;
      last = healthy;
      lastMessage = message;
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
