import * as grpc from '@grpc/grpc-js';
import type { HealthHandlers } from './generated/grpc/health/v1/Health';
import type { HealthCheckResponse } from './generated/grpc/health/v1/HealthCheckResponse';
import { loadHealthV1 } from './loader';

export type ServingStatus = 'SERVING' | 'NOT_SERVING';

/** The longest service name a Check or Watch may ask about: a gRPC full service name. */
export const HEALTH_MAX_SERVICE_NAME = 256;
/**
 * Watch streams open at once on one listener, across every name: the plaintext probe listener
 * may be open to anyone, and its callers must not take the places of the mutual-TLS listener's
 * (the chain controller's watch), so each listener (each addTo or listenAlone) counts its own.
 */
export const HEALTH_MAX_WATCHES = 1024;

/**
 * The server side of grpc.health.v1. The empty service name "" stands for the whole process,
 * as the protocol defines. Watch streams the current status at once and then every change; a
 * Watch of a name not (yet) known stays open with SERVICE_UNKNOWN, as the protocol asks. Any
 * peer may reach the health port (kubelet's probes carry no certificate), so what a caller can
 * make it hold is bounded: a name's length, the number of open Watch streams on each listener,
 * and a name's entry goes when its last stream does.
 */
export class HealthService {
  private readonly statuses = new Map<string, ServingStatus>();
  private readonly watchers = new Map<
    string,
    Set<grpc.ServerWritableStream<unknown, HealthCheckResponse>>
  >();
  private watching = 0;

  constructor(initial: Record<string, ServingStatus> = { '': 'SERVING' }) {
    for (const [name, status] of Object.entries(initial)) this.statuses.set(name, status);
  }

  setStatus(service: string, status: ServingStatus): void {
    if (this.statuses.get(service) === status) return;
    this.statuses.set(service, status);
    for (const call of this.watchers.get(service) ?? []) call.write({ status });
  }

  getStatus(service: string): ServingStatus | undefined {
    return this.statuses.get(service);
  }

  /** What open Watch streams hold: the names watched and the streams. */
  watchLoad(): { names: number; streams: number } {
    return { names: this.watchers.size, streams: this.watching };
  }

  /** Marks every service NOT_SERVING, as a process does when it starts draining. */
  shutdown(): void {
    for (const name of [...this.statuses.keys()]) this.setStatus(name, 'NOT_SERVING');
  }

  /** Registers the Health service on a grpc-js server. */
  addTo(server: grpc.Server): void {
    server.addService(loadHealthV1().Health.service, this.handlers());
  }

  /**
   * A listener of its own serving this health service and nothing else, in plaintext: kubelet's
   * gRPC probes carry no client certificate, and all it tells is SERVING or NOT_SERVING. Every
   * other API of the process stays behind mutual TLS. It is only opened when configured, and
   * says so through `log.warn` (a listener without TLS is always announced). Resolves to the
   * server and the address bound (host:port with the port picked when given 0).
   */
  async listenAlone(
    address: string,
    log: { warn(msg: string, fields?: Record<string, unknown>): void },
  ): Promise<{ server: grpc.Server; address: string }> {
    const server = new grpc.Server();
    this.addTo(server);
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
    const bound = address.replace(/:\d+$/, `:${port}`);
    log.warn('gRPC health listener without TLS: it answers grpc.health.v1 only', {
      address: bound,
    });
    return { server, address: bound };
  }

  /** The handlers of one listener: its Watch streams are counted apart from other listeners'. */
  handlers(): HealthHandlers {
    const listener = { watching: 0 };
    return {
      Check: (call, callback) => {
        const bad = badServiceName(call.request.service);
        if (bad) {
          callback(bad);
          return;
        }
        const status = this.statuses.get(call.request.service);
        if (!status) {
          callback({
            code: grpc.status.NOT_FOUND,
            details: `service "${call.request.service}" is not known to this health server`,
          });
          return;
        }
        callback(null, { status });
      },
      List: (_call, callback) => {
        const statuses: Record<string, HealthCheckResponse> = {};
        for (const [name, status] of this.statuses) statuses[name] = { status };
        callback(null, { statuses });
      },
      Watch: (call) => {
        const name = call.request.service;
        const bad = badServiceName(name);
        if (bad) {
          call.emit('error', bad);
          return;
        }
        if (listener.watching >= HEALTH_MAX_WATCHES) {
          call.emit('error', {
            code: grpc.status.RESOURCE_EXHAUSTED,
            details: `${HEALTH_MAX_WATCHES} health Watch streams are open on this listener already`,
          });
          return;
        }
        const stream = call as grpc.ServerWritableStream<unknown, HealthCheckResponse>;
        let set = this.watchers.get(name);
        if (!set) this.watchers.set(name, (set = new Set()));
        set.add(stream);
        this.watching++;
        listener.watching++;
        let forgotten = false;
        const forget = (): void => {
          if (forgotten) return;
          forgotten = true;
          this.watching--;
          listener.watching--;
          set.delete(stream);
          if (set.size === 0 && this.watchers.get(name) === set) this.watchers.delete(name);
        };
        call.on('cancelled', forget);
        call.on('close', forget);
        call.on('error', forget);
        call.write({ status: this.statuses.get(name) ?? 'SERVICE_UNKNOWN' });
      },
    };
  }
}

function badServiceName(service: string): Partial<grpc.StatusObject> | undefined {
  if (Buffer.byteLength(service) <= HEALTH_MAX_SERVICE_NAME) return undefined;
  return {
    code: grpc.status.INVALID_ARGUMENT,
    details: `service: a name of at most ${HEALTH_MAX_SERVICE_NAME} bytes, got ${Buffer.byteLength(service)}`,
  };
}
