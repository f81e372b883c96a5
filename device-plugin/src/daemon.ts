import * as grpc from '@grpc/grpc-js';
import { devicePluginV1beta1 as dp } from '@flowline/proto';
import type { Logger } from '@flowline/telemetry';
import { type FSWatcher, mkdirSync, readFileSync, statSync, watch } from 'node:fs';
import { dirname, join } from 'node:path';
import { type PluginConfig, loadConfigFile } from './config';
import { ConfigError } from './errors';
import { PluginMetrics } from './metrics';
import { PLUGIN_OPTIONS, PoolServer } from './plugin-server';
import {
  type AllocationSettings,
  type DeviceProvider,
  type HostSnapshot,
  planProviders,
} from './providers';
import { registerWithKubelet } from './registration';
import { PoolAssigner } from './selectors';
import { Sysfs, discoverHugepages, discoverPfs } from './sysfs';

export interface DaemonOptions extends AllocationSettings {
  configPath: string;
  /** kubelet's device plugin directory, default /var/lib/kubelet/device-plugins */
  pluginDir: string;
  /** what stands for /sys */
  sysfsRoot: string;
  /** host rescan and socket check period; changes show in ListAndWatch within this */
  rescanMs: number;
  /** period of the self-probe that restarts a server that stopped answering */
  probeMs: number;
  logger: Logger;
  meter: PluginMetricsMeter;
  grpcServerInterceptors?: grpc.ServerInterceptor[];
  grpcClientInterceptors?: grpc.Interceptor[];
}

type PluginMetricsMeter = ConstructorParameters<typeof PluginMetrics>[0];

function inodeOf(path: string): number | undefined {
  try {
    return statSync(path).ino;
  } catch {
    return undefined;
  }
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

interface PoolState {
  server: PoolServer;
  /** why it must (re-)register, or undefined when registered */
  pendingRegistration: string | undefined;
  /** bumped whenever a new registration is needed, so a late answer to an older one cannot clear it */
  generation: number;
  inFlight: boolean;
  /** the last start failure, logged once */
  lastStartError?: string | undefined;
  nextAttempt: number;
  failures: number;
}

/**
 * The device plugin daemon: scans sysfs, keeps one DevicePlugin server per resource, registers
 * each with kubelet and keeps all of it true while the host, the config and kubelet change.
 * One loop does every check, serialized, every rescanMs; file watches only make it run sooner.
 */
export class DevicePluginDaemon {
  private readonly sysfs: Sysfs;
  private readonly assigner = new PoolAssigner();
  private readonly log: Logger;
  private readonly metrics: PluginMetrics;
  private config!: PluginConfig;
  private configText: string | undefined;
  private host: HostSnapshot = { vfsByPool: new Map(), hugepages: { system: [], perNode: [] } };
  private providers = new Map<string, DeviceProvider>();
  private readonly pools = new Map<string, PoolState>();
  /** The last error of each pool's update or publish, by `<step> <resource>`: logged once. */
  private readonly poolErrors = new Map<string, string>();
  private kubeletInode: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private probeTimer: NodeJS.Timeout | undefined;
  private watchers: FSWatcher[] = [];
  private running: Promise<void> = Promise.resolve();
  private queued = false;
  private stopped = false;

  constructor(private readonly options: DaemonOptions) {
    this.sysfs = new Sysfs(options.sysfsRoot);
    this.log = options.logger;
    this.metrics = new PluginMetrics(
      options.meter,
      () =>
        [...this.providers.values()].map((p) => {
          const devices = p.devices();
          const unhealthy = devices.filter((d) => d.problem !== undefined).length;
          return { resourceName: p.resourceName, healthy: devices.length - unhealthy, unhealthy };
        }),
      () => [...this.host.hugepages.system, ...this.host.hugepages.perNode],
    );
  }

  get kubeletSocket(): string {
    return join(this.options.pluginDir, dp.KUBELET_SOCKET);
  }

  /** Loads the config (a bad one at start is fatal: there is no last good one), serves, registers. */
  async start(): Promise<void> {
    this.configText = readText(this.options.configPath);
    this.config = loadConfigFile(this.options.configPath);
    mkdirSync(this.options.pluginDir, { recursive: true });
    this.kubeletInode = inodeOf(this.kubeletSocket);
    this.scan(this.config);
    await this.reconcile('start', this.config);
    this.registerPending();
    this.logHugepages();
    this.timer = setInterval(() => this.kick(), this.options.rescanMs);
    this.probeTimer = setInterval(() => this.serialize(() => this.probe()), this.options.probeMs);
    this.watch(this.options.pluginDir);
    this.watch(dirname(this.options.configPath));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    clearInterval(this.probeTimer);
    for (const w of this.watchers) w.close();
    this.watchers = [];
    await this.running;
    for (const state of this.pools.values()) await state.server.stop();
    for (const provider of this.providers.values()) provider.cleanup();
    this.pools.clear();
    this.log.info('stopped; sockets and device-info files removed');
  }

  /** Resources served now and whether each is registered (for tests and `inspect`). */
  status(): Array<{
    resourceName: string;
    endpoint: string;
    registered: boolean;
    devices: number;
  }> {
    return [...this.pools.values()].map((s) => ({
      resourceName: s.server.resourceName,
      endpoint: s.server.endpoint,
      registered: s.pendingRegistration === undefined,
      devices: s.server.provider.devices().length,
    }));
  }

  private watch(dir: string): void {
    try {
      const w = watch(dir, { persistent: false }, () => this.kick());
      w.on('error', (err) =>
        this.log.warn('watch failed; the periodic rescan still runs', { dir, error: err }),
      );
      this.watchers.push(w);
    } catch (err) {
      this.log.warn('cannot watch; the periodic rescan still runs', { dir, error: err });
    }
  }

  /** Runs one pass soon; passes never overlap and a burst of events makes one more pass. */
  private kick(): void {
    if (this.queued || this.stopped) return;
    this.queued = true;
    this.serialize(async () => {
      this.queued = false;
      await this.pass();
    });
  }

  private serialize(task: () => Promise<void>): void {
    this.running = this.running
      .then(() => (this.stopped ? undefined : task()))
      .catch((err: unknown) =>
        this.log.error('pass failed; retrying on the next one', { error: err }),
      );
  }

  private async pass(): Promise<void> {
    const reload = this.readChangedConfig();
    const kubeletInode = inodeOf(this.kubeletSocket);
    if (kubeletInode !== undefined && kubeletInode !== this.kubeletInode) {
      this.log.info('kubelet.sock is new: kubelet restarted; registering again', {
        socket: this.kubeletSocket,
      });
      for (const state of this.pools.values()) this.markForRegistration(state, 'kubelet_restart');
    }
    this.kubeletInode = kubeletInode;
    for (const state of this.pools.values()) {
      if (state.server.socketIntact()) continue;
      await this.restartServer(state, state.lastStartError ? 'start_failed' : 'socket_removed');
    }
    const config = reload?.config ?? this.config;
    let failedPools: string[];
    try {
      this.scan(config);
      failedPools = await this.reconcile('config', config);
    } catch (err) {
      // Not committed: the next pass reads the file again and retries it.
      if (reload) {
        this.metrics.configReloaded('failed');
        this.log.error('config reload failed; retrying on the next pass', {
          file: this.options.configPath,
          error: err,
        });
      }
      throw err;
    }
    if (reload) this.commitConfig(reload.config, reload.text, failedPools);
    this.registerPending();
  }

  /** A config file that changed and parses; not in use until commitConfig. */
  private readChangedConfig(): { config: PluginConfig; text: string } | undefined {
    const text = readText(this.options.configPath);
    if (text === undefined || text === this.configText) return undefined;
    try {
      return { config: loadConfigFile(this.options.configPath), text };
    } catch (err) {
      this.configText = text;
      this.metrics.configReloaded('invalid');
      const fields = err instanceof ConfigError ? { field: err.field } : {};
      this.log.error('config rejected; keeping the last good config', {
        ...fields,
        error: (err as Error).message,
      });
      return undefined;
    }
  }

  /** Makes a reloaded config current once a pass has applied it. */
  private commitConfig(config: PluginConfig, text: string, failedPools: string[]): void {
    this.config = config;
    this.configText = text;
    const fields = { file: this.options.configPath, pools: config.pools.map((p) => p.name) };
    if (failedPools.length === 0) {
      this.metrics.configReloaded('ok');
      this.log.info('config reloaded', fields);
      return;
    }
    this.metrics.configReloaded('partial');
    this.log.warn('config reloaded, but some pools failed to update; they keep their last state', {
      ...fields,
      failedPools,
    });
  }

  private scan(config: PluginConfig): void {
    const pfs = discoverPfs(this.sysfs);
    this.host = {
      vfsByPool: this.assigner.assign(pfs, config.pools),
      hugepages: discoverHugepages(this.sysfs),
    };
  }

  /** Serves what `config` asks for; returns the pools whose update or publish failed. */
  private async reconcile(reason: string, config: PluginConfig): Promise<string[]> {
    const { providers: next, failures } = planProviders(
      config,
      this.host,
      this.providers,
      this.options,
    );
    for (const [name, state] of this.pools) {
      if (next.has(name)) continue;
      this.log.info('resource removed from config; stopping its server', { resource: name });
      await state.server.stop();
      try {
        state.server.provider.cleanup();
      } catch (err) {
        this.log.error('cannot remove the files of a removed resource', {
          resource: name,
          error: err,
        });
      }
      this.pools.delete(name);
      for (const step of ['update', 'publish']) this.poolErrors.delete(`${step} ${name}`);
    }
    this.providers = next;
    const failed: string[] = [];
    for (const [name, provider] of next) {
      let state = this.pools.get(name);
      if (!state) {
        const server = new PoolServer(
          provider,
          this.options.pluginDir,
          this.log,
          this.metrics,
          this.options.grpcServerInterceptors,
        );
        state = {
          server,
          pendingRegistration: reason,
          generation: 0,
          inFlight: false,
          nextAttempt: 0,
          failures: 0,
        };
        this.pools.set(name, state);
        await this.startServer(state);
      }
      let error = failures.get(name);
      this.notePoolError('update', provider, error);
      try {
        state.server.publish();
        this.notePoolError('publish', provider, undefined);
      } catch (err) {
        error = err as Error;
        this.notePoolError('publish', provider, error);
      }
      if (error) failed.push(provider.pool);
    }
    return failed;
  }

  /**
   * Logs a pool's update or publish failure once per distinct error, and its recovery: a pass
   * runs every rescanMs, and one pool failing never stops the others.
   */
  private notePoolError(step: string, provider: DeviceProvider, err: Error | undefined): void {
    const key = `${step} ${provider.resourceName}`;
    const last = this.poolErrors.get(key);
    const fields = { pool: provider.pool, resource: provider.resourceName, step };
    if (err === undefined) {
      if (last === undefined) return;
      this.poolErrors.delete(key);
      this.log.info('pool recovered', fields);
      return;
    }
    if (err.message === last) return;
    this.poolErrors.set(key, err.message);
    this.log.error(
      step === 'update'
        ? 'pool update failed; it keeps its last devices and the other pools still serve'
        : 'cannot send devices to kubelet; the other pools still serve',
      { ...fields, error: err },
    );
  }

  private async startServer(state: PoolState): Promise<void> {
    try {
      await state.server.start();
    } catch (err) {
      const message = (err as Error).message;
      if (message !== state.lastStartError) {
        this.log.error('cannot serve; retrying on every pass', {
          resource: state.server.resourceName,
          error: err,
        });
      }
      state.lastStartError = message;
      await state.server.stop();
      return;
    }
    state.lastStartError = undefined;
  }

  private markForRegistration(state: PoolState, reason: string): void {
    state.pendingRegistration = reason;
    state.generation += 1;
    state.nextAttempt = 0;
    state.failures = 0;
  }

  private async restartServer(state: PoolState, reason: string): Promise<void> {
    if (reason !== 'start_failed') {
      this.log.warn('restarting server', { resource: state.server.resourceName, reason });
    }
    this.metrics.serverRestarted(state.server.resourceName, reason);
    await state.server.stop();
    await this.startServer(state);
    this.markForRegistration(state, 'server_restart');
  }

  /**
   * Starts a registration for every resource that needs one and whose server is up. They run
   * beside the pass loop, so a slow or hung kubelet never delays health and device updates.
   */
  private registerPending(): void {
    if (this.kubeletInode === undefined || this.stopped) return;
    const now = Date.now();
    for (const state of this.pools.values()) {
      const reason = state.pendingRegistration;
      if (reason === undefined || state.inFlight || now < state.nextAttempt) continue;
      if (!state.server.socketIntact()) continue;
      const generation = state.generation;
      const resourceName = state.server.resourceName;
      state.inFlight = true;
      registerWithKubelet(
        this.options.pluginDir,
        {
          version: dp.DEVICE_PLUGIN_API_VERSION,
          endpoint: state.server.endpoint,
          resourceName,
          options: PLUGIN_OPTIONS,
        },
        5000,
        this.options.grpcClientInterceptors,
      ).then(
        () => {
          state.inFlight = false;
          this.metrics.registered(resourceName, reason);
          this.log.info('registered with kubelet', {
            resource: resourceName,
            endpoint: state.server.endpoint,
            reason,
          });
          // A newer reason (kubelet restarted again meanwhile) keeps it pending.
          if (state.generation === generation) {
            state.pendingRegistration = undefined;
            state.failures = 0;
          } else this.kick();
        },
        (err: unknown) => {
          state.inFlight = false;
          state.failures += 1;
          state.nextAttempt = Date.now() + Math.min(500 * 2 ** (state.failures - 1), 5000);
          this.log.warn('registration failed; retrying', {
            resource: resourceName,
            error: (err as Error).message,
            attempt: state.failures,
          });
        },
      );
    }
  }

  /** Calls our own GetDevicePluginOptions; a server that does not answer is restarted. */
  private async probe(): Promise<void> {
    for (const state of this.pools.values()) {
      const ok = await probeServer(state.server.socketPath);
      if (!ok) await this.restartServer(state, 'probe_failed');
    }
    this.registerPending();
  }

  private logHugepages(): void {
    for (const h of [...this.host.hugepages.system, ...this.host.hugepages.perNode]) {
      this.log.info('hugepages', {
        size: h.sizeName,
        numaNode: h.numaNode ?? 'all',
        total: h.total,
        free: h.free,
      });
    }
  }
}

async function probeServer(socketPath: string): Promise<boolean> {
  const { DevicePlugin } = dp.loadDevicePluginV1beta1();
  const client = new DevicePlugin(`unix:${socketPath}`, grpc.credentials.createInsecure());
  try {
    return await new Promise<boolean>((resolve) => {
      client.GetDevicePluginOptions({}, { deadline: Date.now() + 2000 }, (err) => resolve(!err));
    });
  } finally {
    client.close();
  }
}
