import { type Logger, type Telemetry, setupTelemetry } from '@flowline/telemetry';
import type { z } from 'zod';
import { CONFIG_HELP, type LoadedConfig, loadConfig, transportSecurityOf } from './config';
import type { DataplaneView } from './dataplane';
import { ConfigError, PodDeviceError } from './errors';
import { type EalPlan, type PodPort, discoverPodPorts, planEal } from './pod-devices';
import { type GrpcServiceRegistration, NfServer, registerDataplaneMetrics } from './server';

export interface StartContext<Nf> {
  config: LoadedConfig<Nf>;
  ports: PodPort[];
  eal: EalPlan;
  telemetry: Telemetry;
  logger: Logger;
}

/** A started NF: its dataplane, its own gRPC services and how to stop it in order. */
export interface RunningDataplane {
  dataplane: DataplaneView;
  services?: GrpcServiceRegistration[];
  /** Stop taking new traffic (stop rx). */
  stopTraffic(): Promise<void>;
  /** Let packets in flight leave, for at most timeoutMs. */
  drain(timeoutMs: number): Promise<void>;
  /** Release everything: workers, ports, mempools, EAL (hugepage files). */
  close(): Promise<void>;
}

export interface NetworkFunctionDefinition<Nf> {
  kind: string;
  version: string;
  nfSchema: z.ZodType<Nf>;
  start(ctx: StartContext<Nf>): Promise<RunningDataplane>;
}

export interface NetworkFunctionHandle {
  grpcAddress: string;
  metricsUrl: string | undefined;
  server: NfServer;
  /** The graceful stop SIGTERM runs; resolves when everything is released. */
  stop(reason: string): Promise<void>;
}

export interface RunOptions {
  argv?: string[];
  env?: NodeJS.ProcessEnv;
  /** Install SIGTERM/SIGINT handlers that stop gracefully and exit 0 (default true). */
  handleSignals?: boolean;
}

/**
 * Boots an NF: config (file, env, flags), telemetry, the pod's ports, the dataplane, then the
 * gRPC server; health turns SERVING only when all of that is up. SIGTERM: health NOT_SERVING,
 * stop rx, drain, stop gRPC, release the dataplane, flush telemetry, exit 0.
 */
export async function runNetworkFunction<Nf>(
  definition: NetworkFunctionDefinition<Nf>,
  options: RunOptions = {},
): Promise<NetworkFunctionHandle> {
  const env = options.env ?? process.env;
  const config = loadConfig({
    kind: definition.kind,
    nfSchema: definition.nfSchema,
    argv: options.argv ?? process.argv.slice(2),
    env,
  });
  const { runtime } = config;
  // Before anything starts: an NF without TLS settings (or an explicit insecure) does not run.
  const security = transportSecurityOf(runtime);
  const telemetry = await setupTelemetry({
    component: definition.kind,
    version: definition.version,
    metricsPort: runtime.metricsPort,
    attributes: { 'service.instance.id': runtime.name },
  });
  const logger = telemetry.logger.child({ nf: runtime.name });
  let running: RunningDataplane | undefined;
  // Outside the try: a start that fails after listen (the health port taken, say) must not leave
  // the API listener bound.
  let server: NfServer | undefined;
  try {
    const ports = discoverPodPorts(runtime, env);
    const eal = planEal(runtime, ports);
    logger.info('starting', {
      kind: definition.kind,
      config: config.configFile,
      sources: config.sources,
      ports: ports.map((p) => ({ name: p.name, kind: p.kind, origin: p.origin })),
    });
    running = await definition.start({ config, ports, eal, telemetry, logger });
    registerDataplaneMetrics(telemetry, runtime.name, running.dataplane);
    const api = (server = new NfServer({
      identity: { name: runtime.name, kind: definition.kind, version: definition.version },
      dataplane: running.dataplane,
      telemetry,
      ...(running.services ? { services: running.services } : {}),
      // Transitional, removed once every launcher passes TLS settings or --insecure.
      security,
      trustDomain: runtime.trustDomain,
    }));
    const grpcAddress = await api.listen(runtime.grpcAddress);
    const healthAddress = runtime.healthAddress
      ? await api.listenHealth(runtime.healthAddress)
      : undefined;
    api.setServing(true);
    logger.info('serving', {
      grpcAddress,
      healthAddress,
      security: runtime.tls ? 'mutual TLS' : 'insecure',
      metricsUrl: telemetry.metricsUrl,
    });

    let stopping: Promise<void> | undefined;
    const dataplane = running;
    // Every step runs whatever the ones before it did: a stopTraffic that throws must not keep
    // the listeners bound or the dataplane's sockets, hugepage files and EAL runtime dir on
    // disk. Each failure is logged with its step; the first is what stop rejects with.
    const stop = (reason: string): Promise<void> =>
      (stopping ??= (async () => {
        logger.info('stopping', { reason });
        const failed: { step: string; err: unknown }[] = [];
        const step = async (name: string, run: () => void | Promise<void>): Promise<void> => {
          try {
            await run();
          } catch (err) {
            failed.push({ step: name, err });
            logger.error('stop step failed', { reason, step: name, err });
          }
        };
        await step('health', () => api.setServing(false));
        await step('stopTraffic', () => dataplane.stopTraffic());
        await step('drain', () => dataplane.drain(runtime.drainTimeoutMs));
        await step('server.stop', () => api.stop(Math.min(runtime.drainTimeoutMs, 2000)));
        await step('close', () => dataplane.close());
        if (failed.length)
          logger.warn('stopped with errors', { reason, failed: failed.map((f) => f.step) });
        else logger.info('stopped', { reason });
        await step('telemetry.shutdown', () => telemetry.shutdown());
        const [first] = failed;
        if (first) throw first.err;
      })());

    if (options.handleSignals ?? true) {
      for (const signal of ['SIGTERM', 'SIGINT'] as const) {
        process.once(signal, () => {
          stop(signal).then(
            () => process.exit(0),
            (err: unknown) => {
              logger.error('stop failed', { err });
              process.exit(1);
            },
          );
        });
      }
    }
    return { grpcAddress, metricsUrl: telemetry.metricsUrl, server: api, stop };
  } catch (err) {
    logger.error('start failed', { err });
    server?.forceStop();
    await running?.close().catch(() => undefined);
    await telemetry.shutdown();
    throw err;
  }
}

/**
 * The main of an NF process: runs it, and on a configuration or device error prints one clear
 * line and exits 2 (1 for anything else) instead of a stack trace.
 */
export function main<Nf>(definition: NetworkFunctionDefinition<Nf>): void {
  if (process.argv.includes('--help')) {
    process.stdout.write(`${definition.kind} ${definition.version}\n\n${CONFIG_HELP}\n`);
    return;
  }
  runNetworkFunction(definition).catch((err: unknown) => {
    const known = err instanceof ConfigError || err instanceof PodDeviceError;
    process.stderr.write(
      JSON.stringify({
        level: 'error',
        component: definition.kind,
        msg: known ? (err as Error).message : 'failed to start',
        err: String(err),
      }) + '\n',
    );
    process.exit(known ? 2 : 1);
  });
}
