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
 *
 * A killed NF's socket closes and the watch ends at once; a node that drops off the network
 * closes nothing, and TCP would take minutes to notice. So the channel pings the NF every
 * `keepaliveMs` while the watch is open (HTTP/2 PING, answered by the NF's HTTP/2 layer; grpc-js
 * servers accept pings at any rate) and gives up on it after `keepaliveMs` without an answer:
 * an unreachable NF is reported within about twice that (issue 19: failover under a second).
 */
export function grpcHealthWatch(
  security: TransportSecurity,
  trustDomain = DEFAULT_TRUST_DOMAIN,
  retryMs = 500,
  keepaliveMs = 400,
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
    const client = new Health(address.startsWith('unix:') ? address : `dns:${address}`, creds, {
      'grpc.keepalive_time_ms': keepaliveMs,
      'grpc.keepalive_timeout_ms': keepaliveMs,
      'grpc.keepalive_permit_without_calls': 1,
    });
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
