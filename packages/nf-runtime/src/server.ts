import * as grpc from '@grpc/grpc-js';
import {
  type AccessPolicy,
  anyOfTrustDomain,
  authorizationInterceptor,
  certificatesLoaded,
  controllerId,
  onlyIdentities,
  operatorId,
  serverCredentials,
  type TransportSecurity,
} from '@flowline/grpc-auth';
import { HealthService, loadNetworkFunctionV1, type nfV1, streamEvery } from '@flowline/proto';
import type { Telemetry } from '@flowline/telemetry';
import type { DataplaneView } from './dataplane';

export interface NfIdentity {
  name: string;
  kind: string;
  version: string;
  labels?: Record<string, string>;
}

/** An NF's own gRPC service (flowline.firewall.v1.Firewall, ...), served beside nf.v1. */
export interface GrpcServiceRegistration {
  /** Full service name for grpc.health.v1, e.g. "flowline.firewall.v1.Firewall". */
  name: string;
  definition: grpc.ServiceDefinition;
  implementation: grpc.UntypedServiceImplementation;
  /**
   * Methods (names as in the .proto, e.g. "ListRules") any authenticated peer may call; every
   * other method of the service configures the NF and is open only to the chain controller and
   * the operator.
   */
  readOnlyMethods?: string[];
}

const NF_SERVICE = 'flowline.nf.v1.NetworkFunction';
const HEALTH_SERVICE = 'grpc.health.v1.Health';

/**
 * Who may call what on an NF: its own API's configuration methods only the chain controller and
 * the operator; its read-only methods, flowline.nf.v1 (GetInfo, WatchStats) and health any peer
 * of its trust domain with a certificate from the cluster's CA (another NF, a monitoring client).
 */
export function nfAccessPolicy(
  trustDomain: string,
  services: GrpcServiceRegistration[] = [],
): AccessPolicy {
  const configurers = onlyIdentities(controllerId(trustDomain), operatorId(trustDomain));
  // Readers are the trust domain's own: a CA bundle may hold other domains' roots too.
  const readers = anyOfTrustDomain(trustDomain);
  const policy: AccessPolicy = {
    [`/${NF_SERVICE}/*`]: readers,
    [`/${HEALTH_SERVICE}/*`]: readers,
  };
  for (const s of services) {
    policy[`/${s.name}/*`] = configurers;
    const paths = new Set(Object.values(s.definition).map((m) => m.path));
    for (const m of s.readOnlyMethods ?? []) {
      // A misspelt name would leave the method closed silently: refuse it at start instead.
      if (!paths.has(`/${s.name}/${m}`))
        throw new Error(`readOnlyMethods: ${s.name} has no method ${m}`);
      policy[`/${s.name}/${m}`] = readers;
    }
  }
  return policy;
}

/** Builds a StatsSnapshot from the dataplane's counters (64-bit values as decimal strings). */
export function snapshotOf(
  dataplane: DataplaneView,
  now = process.hrtime.bigint(),
): nfV1.StatsSnapshot {
  const { ports, stages } = dataplane.counters();
  return {
    unixNanos: String(BigInt(Date.now()) * 1_000_000n + (now % 1_000_000n)),
    ports: ports.map((p) => ({
      name: p.name,
      rxPackets: String(p.rxPackets),
      txPackets: String(p.txPackets),
      rxBytes: String(p.rxBytes),
      txBytes: String(p.txBytes),
      rxMissed: String(p.rxMissed),
      rxErrors: String(p.rxErrors),
      txErrors: String(p.txErrors),
    })),
    stages: stages.map((s) => ({
      name: s.name,
      packetsIn: String(s.packetsIn),
      packetsOut: String(s.packetsOut),
      punted: String(s.punted),
      droppedByReason: Object.fromEntries(
        Object.entries(s.droppedByReason).map(([k, v]) => [k, String(v)]),
      ),
    })),
  };
}

/**
 * Contract 6's metrics (docs/architecture.md#metrics), read from the dataplane at each scrape:
 * port rx/tx/dropped (labels nf,
 * port, reason) and per-stage counters. Observable counters: nothing runs between scrapes.
 */
export function registerDataplaneMetrics(
  telemetry: Telemetry,
  nf: string,
  dataplane: DataplaneView,
): void {
  const { meter } = telemetry;
  const rx = meter.createObservableCounter('flowline_port_rx_packets', {
    description: 'Packets received per port',
  });
  const tx = meter.createObservableCounter('flowline_port_tx_packets', {
    description: 'Packets sent per port',
  });
  const dropped = meter.createObservableCounter('flowline_port_dropped_packets', {
    description: 'Packets dropped per port and reason',
  });
  const stageIn = meter.createObservableCounter('flowline_stage_packets_in', {
    description: 'Packets into a stage',
  });
  const stageOut = meter.createObservableCounter('flowline_stage_packets_out', {
    description: 'Packets out of a stage',
  });
  const stagePunted = meter.createObservableCounter('flowline_stage_punted_packets', {
    description: 'Packets a stage handed to the slow path',
  });
  const stageDropped = meter.createObservableCounter('flowline_stage_dropped_packets', {
    description: 'Packets a stage dropped, by reason',
  });
  meter.addBatchObservableCallback(
    (result) => {
      const { ports, stages } = dataplane.counters();
      for (const p of ports) {
        const labels = { nf, port: p.name };
        result.observe(rx, Number(p.rxPackets), labels);
        result.observe(tx, Number(p.txPackets), labels);
        result.observe(dropped, Number(p.rxMissed), { ...labels, reason: 'rx_missed' });
        result.observe(dropped, Number(p.rxErrors), { ...labels, reason: 'rx_error' });
        result.observe(dropped, Number(p.txErrors), { ...labels, reason: 'tx_error' });
      }
      for (const s of stages) {
        const labels = { nf, stage: s.name };
        result.observe(stageIn, Number(s.packetsIn), labels);
        result.observe(stageOut, Number(s.packetsOut), labels);
        result.observe(stagePunted, Number(s.punted), labels);
        for (const [reason, n] of Object.entries(s.droppedByReason)) {
          result.observe(stageDropped, Number(n), { ...labels, reason });
        }
      }
    },
    [rx, tx, dropped, stageIn, stageOut, stagePunted, stageDropped],
  );
}

async function bind(
  server: grpc.Server,
  address: string,
  creds: grpc.ServerCredentials,
): Promise<string> {
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(address, creds, (err, p) => (err ? reject(err) : resolve(p))),
  );
  if (address.startsWith('unix:')) return address;
  return address.replace(/:\d+$/, `:${port}`);
}

export interface NfServerOptions {
  identity: NfIdentity;
  dataplane: DataplaneView;
  telemetry: Telemetry;
  services?: GrpcServiceRegistration[];
  startedAt?: Date;
  /** Mutual TLS (or plaintext, explicitly) for the API listener. */
  security: TransportSecurity;
  /** The SPIFFE trust domain the controller's and operator's identities are in. */
  trustDomain: string;
}

/**
 * The gRPC server every NF runs: flowline.nf.v1.NetworkFunction, grpc.health.v1 and the NF's
 * own API on one address, every call traced. Health starts NOT_SERVING and is switched on by
 * the runtime once the dataplane is up.
 */
export class NfServer {
  readonly health: HealthService;
  private readonly server: grpc.Server;
  private readonly serviceNames: string[];
  private healthServer: grpc.Server | undefined;

  constructor(private readonly options: NfServerOptions) {
    const nf = loadNetworkFunctionV1();
    this.serviceNames = [NF_SERVICE, ...(options.services ?? []).map((s) => s.name)];
    this.health = new HealthService(
      Object.fromEntries(['', ...this.serviceNames].map((n) => [n, 'NOT_SERVING'])),
    );
    const policy = nfAccessPolicy(options.trustDomain, options.services);
    this.server = new grpc.Server({
      interceptors: [
        authorizationInterceptor(policy, { insecure: options.security.insecure === true }),
        options.telemetry.grpcServerInterceptor,
      ],
    });
    this.server.addService(nf.NetworkFunction.service, this.networkFunctionHandlers());
    this.health.addTo(this.server);
    for (const s of options.services ?? []) this.server.addService(s.definition, s.implementation);
  }

  /** Binds the address (host:port, port 0 picks one, or unix:///path); returns what it bound. */
  async listen(address: string): Promise<string> {
    // Bound only with the certificates in memory: grpc-js drops connections until it has them.
    await certificatesLoaded(this.options.security);
    const creds = serverCredentials(
      this.options.security,
      this.options.telemetry.logger,
      `${this.options.identity.kind} API ${address}`,
    );
    return bind(this.server, address, creds);
  }

  /**
   * A second, plaintext listener serving grpc.health.v1 alone, for probes that carry no client
   * certificate (kubelet's gRPC probes). It answers SERVING or NOT_SERVING and nothing else.
   */
  async listenHealth(address: string): Promise<string> {
    const alone = await this.health.listenAlone(address, this.options.telemetry.logger);
    this.healthServer = alone.server;
    return alone.address;
  }

  setServing(serving: boolean): void {
    for (const name of ['', ...this.serviceNames])
      this.health.setStatus(name, serving ? 'SERVING' : 'NOT_SERVING');
  }

  /** Closes both listeners and cancels every call at once (a start that failed half-way). */
  forceStop(): void {
    this.healthServer?.forceShutdown();
    this.server.forceShutdown();
  }

  /** Lets calls in flight finish for up to graceMs, then cancels the rest. */
  async stop(graceMs: number): Promise<void> {
    this.healthServer?.forceShutdown();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, graceMs);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private networkFunctionHandlers(): nfV1.NetworkFunctionHandlers {
    const { identity, dataplane } = this.options;
    const startedAt = this.options.startedAt ?? new Date();
    return {
      GetInfo: (_call, callback) => {
        callback(null, {
          name: identity.name,
          kind: identity.kind,
          version: identity.version,
          labels: identity.labels ?? {},
          ports: dataplane.ports(),
          workerLcores: dataplane.workerLcores(),
          startedUnixNanos: String(BigInt(startedAt.getTime()) * 1_000_000n),
        });
      },
      WatchStats: (call) => streamEvery(call, call.request.intervalMs, () => snapshotOf(dataplane)),
    };
  }
}
