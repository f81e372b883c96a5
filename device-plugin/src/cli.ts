#!/usr/bin/env node
import { nonNegativeIntFlag, requiredFlag } from '@flowline/cli-flags';
import { devicePluginV1beta1 as dp } from '@flowline/proto';
import { createLogger, setupTelemetry } from '@flowline/telemetry';
import { parseArgs } from 'node:util';
import { loadConfigFile } from './config';
import { DevicePluginDaemon } from './daemon';
import { DevicePluginError, UsageError } from './errors';
import { planProviders } from './providers';
import { PoolAssigner } from './selectors';
import { Sysfs, discoverHugepages, discoverPfs } from './sysfs';

const USAGE = `flowline-device-plugin — kubelet device plugin for SR-IOV VFs and hugepages

  flowline-device-plugin [serve] --config FILE [options]
      --config FILE         pool config (JSON); env FLOWLINE_DP_CONFIG
      --plugin-dir DIR      kubelet's device plugin dir (${dp.DEFAULT_PLUGIN_DIR}); env FLOWLINE_DP_PLUGIN_DIR
      --sysfs-root DIR      what stands for /sys (/sys); env FLOWLINE_DP_SYSFS_ROOT
      --devinfo-dir DIR     NPWG device-info files (/var/run/k8s.cni.cncf.io/devinfo/dp)
      --cdi-dir DIR         CDI specs for pools with "cdi": true (/var/run/cdi)
      --vfio-dir DIR        host VFIO devices (/dev/vfio)
      --rescan-ms N         host rescan period (500)
      --probe-ms N          self-probe period of the gRPC servers (5000)
      --metrics-port N      Prometheus port (FLOWLINE_METRICS_PORT, else 9464; 0: any free)
  flowline-device-plugin inspect --config FILE [--sysfs-root DIR]
      prints the PFs, VFs, pools and hugepages found, as JSON
`;

const intOption = (value: string | undefined, name: string, fallback: number): number =>
  nonNegativeIntFlag(value, name, fallback, UsageError);

const need = (value: string | undefined, name: string): string =>
  requiredFlag(value, name, USAGE, UsageError);

async function serve(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      config: { type: 'string' },
      'plugin-dir': { type: 'string' },
      'sysfs-root': { type: 'string' },
      'devinfo-dir': { type: 'string' },
      'cdi-dir': { type: 'string' },
      'vfio-dir': { type: 'string' },
      'rescan-ms': { type: 'string' },
      'probe-ms': { type: 'string' },
      'metrics-port': { type: 'string' },
    },
  });
  const env = process.env;
  const configPath = need(values.config ?? env.FLOWLINE_DP_CONFIG, 'config');
  const metricsPort =
    values['metrics-port'] === undefined
      ? undefined
      : intOption(values['metrics-port'], 'metrics-port', 9464);
  const telemetry = await setupTelemetry({
    component: 'device-plugin',
    ...(metricsPort === undefined ? {} : { metricsPort }),
  });
  const log = telemetry.logger;
  const daemon = new DevicePluginDaemon({
    configPath,
    pluginDir: values['plugin-dir'] ?? env.FLOWLINE_DP_PLUGIN_DIR ?? dp.DEFAULT_PLUGIN_DIR,
    sysfsRoot: values['sysfs-root'] ?? env.FLOWLINE_DP_SYSFS_ROOT ?? '/sys',
    devInfoDir: values['devinfo-dir'] ?? '/var/run/k8s.cni.cncf.io/devinfo/dp',
    cdiDir: values['cdi-dir'] ?? '/var/run/cdi',
    vfioDir: values['vfio-dir'] ?? '/dev/vfio',
    rescanMs: intOption(values['rescan-ms'], 'rescan-ms', 500),
    probeMs: intOption(values['probe-ms'], 'probe-ms', 5000),
    logger: log,
    meter: telemetry.meter,
    grpcServerInterceptors: [telemetry.grpcServerInterceptor],
    grpcClientInterceptors: [telemetry.grpcClientInterceptor],
  });
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info('stopping', { signal });
    void daemon
      .stop()
      .then(() => telemetry.shutdown())
      .then(() => process.exit(0));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  try {
    await daemon.start();
  } catch (err) {
    await daemon.stop().catch(() => undefined);
    await telemetry.shutdown();
    throw err;
  }
  log.info('device plugin ready', { metricsUrl: telemetry.metricsUrl, resources: daemon.status() });
}

function inspect(args: string[]): void {
  const { values } = parseArgs({
    args,
    options: { config: { type: 'string' }, 'sysfs-root': { type: 'string' } },
  });
  const sysfs = new Sysfs(values['sysfs-root'] ?? process.env.FLOWLINE_DP_SYSFS_ROOT ?? '/sys');
  const pfs = discoverPfs(sysfs);
  const hugepages = discoverHugepages(sysfs);
  const out: Record<string, unknown> = { sysfsRoot: sysfs.root, pfs, hugepages };
  const configPath = values.config ?? process.env.FLOWLINE_DP_CONFIG;
  if (configPath) {
    const config = loadConfigFile(configPath);
    const host = { vfsByPool: new PoolAssigner().assign(pfs, config.pools), hugepages };
    const settings = { devInfoDir: '/nonexistent', cdiDir: '/nonexistent', vfioDir: '/dev/vfio' };
    const plan = planProviders(
      { ...config, pools: config.pools.map((p) => ({ ...p, cdi: false })) },
      host,
      new Map(),
      settings,
    );
    out.resources = [...plan.providers.values()].map((p) => {
      const error = plan.failures.get(p.resourceName)?.message;
      return { resourceName: p.resourceName, devices: p.devices(), ...(error ? { error } : {}) };
    });
  }
  process.stdout.write(JSON.stringify(out, null, 2) + '\n');
}

async function main(argv: string[]): Promise<void> {
  const [first, ...rest] = argv;
  if (first === '--help' || first === '-h' || first === 'help') {
    process.stdout.write(USAGE);
    return;
  }
  if (first === 'inspect') return inspect(rest);
  if (first === 'emulate')
    throw new UsageError(
      'emulate is not part of the device plugin: emulated NICs are made by flowline-emulate ' +
        '(packages/emulation), e.g. flowline-emulate create --root DIR --pf ens1f0:4:0',
    );
  if (first === 'serve') return serve(rest);
  return serve(argv);
}

main(process.argv.slice(2)).catch((err: unknown) => {
  const log = createLogger('device-plugin');
  if (err instanceof DevicePluginError) log.error(err.message, { error: err.name });
  else log.error('failed', { error: err });
  process.exitCode = err instanceof UsageError ? 64 : 1;
});
