import * as grpc from '@grpc/grpc-js';
import { certificatesLoaded, type TransportSecurity } from '@flowline/grpc-auth';
import { OpenFlow, OvsdbClient, VSwitch, switchName, type OvsTls } from '@flowline/ovs';
import { HealthService } from '@flowline/proto';
import { type Telemetry, setupTelemetry } from '@flowline/telemetry';
import { registerChainMetrics } from './metrics';
import { readFileSync } from 'node:fs';
import type { ChainSwitch } from './chain-switch';
import { ChainController } from './controller';
import { AttachmentDirectory, type NfDirectory } from './directory';
import { NodeSwitches, SwitchAttachmentDirectory, tcpNodeConnector } from './node-switches';
import { grpcHealthWatch } from './health';
import { GrpcNfConfigurator } from './nf-config';
import { createChainServer } from './chain-server';
import { OvsChainSwitch } from './ovs-switch';
import { FileChainStore } from './store';
import { loadKube, serviceChainApi } from './kube/client';
import { PodDirectory } from './kube/pod-directory';
import { ServiceChainReconciler } from './kube/reconciler';

/**
 * Where the switch is. 'local': one OVS beside the controller (OVSDB and OpenFlow at unix:
 * or tcp: remotes; NF ports from the CNI plugin's attachment files in socketDir). 'per-node':
 * the bridge of every node NF pods run on, at remotes templated with {nodeIP}
 * (tcp:{nodeIP}:6640), NF ports found by the CNI plugin's external_ids; needs `kubernetes`.
 */
export type SwitchConfig = (
  | { mode: 'local'; ovsdbRemote: string; openflowRemote: string; socketDir: string }
  | { mode: 'per-node'; ovsdbRemote: string; openflowRemote: string }
) & {
  /**
   * Key, certificate and CA for ssl: remotes: this controller's certificate (the one the
   * switches' CA cert trusts, signed by a CA that signs nothing else) and the switches' CA.
   */
  tls?: OvsTls;
  /**
   * 'local' over ssl: the node of that one switch: its certificate must name
   * ovs-switch.<node>. Per node, each node's name comes from its pods.
   */
  switchNode?: string;
};

export interface ChainControllerConfig {
  /** gRPC address: host:port or unix:///path. */
  listen: string;
  /**
   * The ChainService listener's transport (mutual TLS, or plaintext only when configured, and
   * then warned), and the controller's certificate towards the NFs it calls (hop configs,
   * health watches), which must prove their workload's identity (src/nf-identity.ts).
   */
  security: TransportSecurity;
  /** The SPIFFE trust domain of the operator's, the controller's and the NFs' identities. */
  trustDomain: string;
  /**
   * A second, plaintext listener serving grpc.health.v1 alone (host:port), for probes that
   * carry no client certificate (kubelet's gRPC probes). It answers SERVING or NOT_SERVING.
   */
  healthAddress?: string;
  switch: SwitchConfig;
  bridge: string;
  /** Where the chains are kept across restarts. */
  stateFile: string;
  /** JSON file { "<nf>": "<grpc address>" } (re-read on use), for health watching. */
  nfAddressesFile?: string;
  defaultAction: 'normal' | 'drop';
  /** How often the switch is checked for lost flows and failed chains are retried. */
  reconcileMs: number;
  /**
   * The node underlay's MTU: a chain's packets too long for a tunnel between nodes are then
   * dropped and counted per crossing at the sending node (unset: not checked).
   */
  underlayMtu?: number;
  metricsPort: number | false;
  /**
   * In a cluster: reconcile ServiceChain resources, and take NF instances from pods (their
   * OVS ports from the switch config's source). `namespace` "" watches every namespace;
   * `kubeconfig` unset means in-cluster config (or $KUBECONFIG, ~/.kube/config).
   */
  kubernetes?: { namespace: string; kubeconfig?: string };
  /** Lower limits than the defaults (src/limits.ts), e.g. for a small node or a test. */
  maxChains?: number;
  maxWatchStreams?: number;
}

export interface RunningChainController {
  address: string;
  /** The plaintext health-only listener's address, when one was asked for. */
  healthAddress?: string;
  controller: ChainController;
  telemetry: Telemetry;
  stop(): Promise<void>;
}

function readAddresses(file: string | undefined): Record<string, string> {
  if (!file) return {};
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>;
  } catch {
    return {};
  }
}

/** Starts the controller: telemetry, OVSDB, the stored chains, the gRPC server, the reconcile loop. */
export async function startChainController(
  config: ChainControllerConfig,
): Promise<RunningChainController> {
  const telemetry = await setupTelemetry({
    component: 'chain-controller',
    metricsPort: config.metricsPort,
  });
  const log = telemetry.logger;
  const { switch: where } = config;
  let sw: ChainSwitch & { close(): void };
  let directory: NfDirectory;
  let pods: PodDirectory | undefined;
  if (where.mode === 'local') {
    const ssl = [where.ovsdbRemote, where.openflowRemote].some((r) => r.startsWith('ssl:'));
    if (ssl && !where.switchNode)
      log.warn(
        "the switch's certificate is checked against its CA only: give the switch's node (--ovs-switch-node) to check that it is that node's",
        { ovsdbRemote: where.ovsdbRemote, openflowRemote: where.openflowRemote },
      );
    const tls =
      where.tls && where.switchNode
        ? { ...where.tls, peerName: switchName(where.switchNode) }
        : where.tls;
    const client = await OvsdbClient.connect({
      remote: where.ovsdbRemote,
      ...(tls ? { tls } : {}),
      logger: log.child({ part: 'ovsdb' }),
    });
    const local = new OvsChainSwitch(
      new VSwitch(client),
      new OpenFlow({
        bridge: config.bridge,
        remote: where.openflowRemote,
        ...(tls ? { tls } : {}),
      }),
      config.bridge,
    );
    sw = local;
    const attachments = new AttachmentDirectory(
      where.socketDir,
      () => local.ports(),
      () => readAddresses(config.nfAddressesFile),
      log.child({ part: 'attachments' }),
    );
    pods = config.kubernetes ? new PodDirectory(attachments) : undefined;
    directory = pods ?? attachments;
  } else {
    if (!config.kubernetes)
      throw new Error(
        'a switch per node ({nodeIP} in the OVS remotes) needs kubernetes mode: the nodes are those of the NF pods',
      );
    let nodeAddresses = (): string[] => [];
    let nodeNameOf = (_address: string): string | undefined => undefined;
    const fleet = new NodeSwitches(
      () => nodeAddresses(),
      tcpNodeConnector({
        ovsdbRemote: where.ovsdbRemote,
        openflowRemote: where.openflowRemote,
        bridge: config.bridge,
        ...(where.tls ? { tls: where.tls } : {}),
        nodeNameOf: (address) => nodeNameOf(address),
        logger: log.child({ part: 'ovsdb' }),
      }),
      log.child({ part: 'switches' }),
      5000,
      (address) => nodeNameOf(address),
      {},
      config.underlayMtu !== undefined ? { underlayMtu: config.underlayMtu } : {},
    );
    pods = new PodDirectory(new SwitchAttachmentDirectory(fleet));
    const known = pods;
    nodeAddresses = () => known.nodeAddresses();
    nodeNameOf = (address) => known.nodeNameOf(address);
    sw = fleet;
    directory = pods;
  }
  const controller = new ChainController({
    store: new FileChainStore(config.stateFile, log.child({ part: 'state' })),
    ...(config.maxChains !== undefined ? { maxChains: config.maxChains } : {}),
    directory,
    switch: sw,
    health: grpcHealthWatch(config.security, config.trustDomain),
    nfConfig: new GrpcNfConfigurator(config.security, config.trustDomain),
    logger: log,
    compile: { defaultAction: config.defaultAction },
  });
  await controller.start();
  const health = new HealthService({ '': 'SERVING', 'flowline.chain.v1.ChainService': 'SERVING' });
  const { server, credentials: creds } = createChainServer({
    controller,
    security: config.security,
    trustDomain: config.trustDomain,
    log,
    listener: `ChainService ${config.listen}`,
    interceptors: [telemetry.grpcServerInterceptor],
    health,
    service:
      config.maxWatchStreams !== undefined ? { maxWatchStreams: config.maxWatchStreams } : {},
  });
  // Bound only with the certificates in memory: grpc-js drops connections until it has them.
  await certificatesLoaded(config.security);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(config.listen, creds, (err, p) => (err ? reject(err) : resolve(p))),
  );
  let healthServer: grpc.Server | undefined;
  let healthAddress: string | undefined;
  if (config.healthAddress) {
    const alone = await health.listenAlone(config.healthAddress, log);
    healthServer = alone.server;
    healthAddress = alone.address;
  }
  const address = config.listen.startsWith('unix:')
    ? config.listen
    : config.listen.replace(/:\d+$/, `:${port}`);
  /** The pass in progress, awaited by stop() so that it does not outlive the switches. */
  let reconciling: Promise<unknown> | undefined;
  const timer = setInterval(() => {
    if (reconciling) return;
    reconciling = controller
      .reconcileIfLost()
      .then((redone) =>
        redone
          ? undefined
          : controller.list().some((c) => c.status?.phase === 'FAILED')
            ? controller.reconcile()
            : undefined,
      )
      .catch((err: unknown) => log.warn('reconcile failed; retrying', { err }))
      .finally(() => (reconciling = undefined));
  }, config.reconcileMs);
  let reconciler: ServiceChainReconciler | undefined;
  if (config.kubernetes && pods) {
    const k8s = await loadKube();
    const kc = new k8s.KubeConfig();
    if (config.kubernetes.kubeconfig) kc.loadFromFile(config.kubernetes.kubeconfig);
    else kc.loadFromDefault();
    reconciler = new ServiceChainReconciler({
      api: serviceChainApi(k8s, kc, config.kubernetes.namespace),
      controller,
      directory: pods,
      namespace: config.kubernetes.namespace,
      logger: log.child({ part: 'kubernetes' }),
      retryMs: config.reconcileMs,
    });
    // Not awaited: gRPC serves while the apiserver is still being reached.
    reconciler.start().then(
      () => log.info('ServiceChains synced', { namespace: config.kubernetes?.namespace || '*' }),
      (err: unknown) => log.error('ServiceChain reconciler failed', { err }),
    );
  }
  registerChainMetrics(telemetry.meter, controller);
  log.info('serving', {
    address,
    bridge: config.bridge,
    chains: controller.list().length,
    security: config.security.insecure ? 'insecure' : 'mutual TLS',
    trustDomain: config.trustDomain,
    ...(healthAddress ? { healthAddress } : {}),
  });
  return {
    address,
    ...(healthAddress ? { healthAddress } : {}),
    controller,
    telemetry,
    async stop() {
      clearInterval(timer);
      await reconciling;
      await reconciler?.stop();
      health.shutdown();
      healthServer?.forceShutdown();
      controller.stop();
      await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
      sw.close();
      await telemetry.shutdown();
    },
  };
}
