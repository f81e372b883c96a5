/**
 * The IPsec gateway network function: boots on nf-runtime, opens the pod's ports on DPDK with
 * the software crypto devices, runs protected port <-> ESP stages <-> unprotected port on one
 * worker lcore (GatewayPipeline), and serves flowline.ipsec.v1 over the store. SA lifetimes in
 * seconds are checked on a timer; what changes is logged (never key material).
 */
import { ESP_VDEVS } from '@flowline/dpdk';
import {
  ConfigError,
  type NetworkFunctionDefinition,
  type OpenPodPort,
  type RunningDataplane,
  type StartContext,
  openPodDataplane,
} from '@flowline/nf-runtime';
import { type GatewayConfig, gatewayConfigSchema, keyDirOf } from './config';
import { GatewayPipeline } from './dataplane';
import { KeyDirectory } from './keys';
import { ipsecService } from './service';
import { IpsecStore } from './store';

export const IPSEC_GW_VERSION = '0.1.0';

/** The protected and unprotected ports: by name from the config, else the pod's first two. */
function sides(
  nf: GatewayConfig,
  ports: ReadonlyMap<string, OpenPodPort>,
  origin: string | undefined,
): { inner: OpenPodPort; outer: OpenPodPort } {
  const all = [...ports.values()];
  const pick = (name: string | undefined, i: number, field: string): OpenPodPort => {
    const p = name === undefined ? all[i] : ports.get(name);
    if (!p)
      throw new ConfigError(
        `nf.${field}`,
        name === undefined ? 'default' : 'file',
        name === undefined
          ? `the gateway needs two ports (protected, unprotected), the pod has ${all.length}`
          : `no port "${name}" (ports: ${all.map((x) => x.name).join(', ') || 'none'})`,
        origin,
      );
    return p;
  };
  const inner = pick(nf.protectedPort, 0, 'protectedPort');
  const outer = pick(nf.unprotectedPort, 1, 'unprotectedPort');
  if (inner === outer)
    throw new ConfigError(
      'nf.unprotectedPort',
      'file',
      `"${outer.name}" is the protected port too: the two sides need their own ports`,
      origin,
    );
  return { inner, outer };
}

async function start(ctx: StartContext<GatewayConfig>): Promise<RunningDataplane> {
  const nf = ctx.config.nf;
  const origin = ctx.config.configFile;
  const keyDir = keyDirOf(nf, origin);
  let keys: KeyDirectory;
  try {
    keys = new KeyDirectory(keyDir);
  } catch (err) {
    throw new ConfigError('nf.keyDir', 'file', (err as Error).message, origin);
  }
  // The crypto devices are software PMDs, given to the EAL as vdevs (no PCI is probed).
  const eal = {
    ...ctx.eal,
    extraArgs: [...ctx.eal.extraArgs, ...ESP_VDEVS.flatMap((v) => ['--vdev', v])],
  };
  const dp = openPodDataplane(
    { ports: ctx.ports, eal, logger: ctx.logger },
    { mempool: { size: nf.poolSize }, rxMode: ctx.config.runtime.rxMode },
  );
  let timer: NodeJS.Timeout | undefined;
  try {
    const worker = dp.eal.lcores().workers[0];
    if (worker === undefined)
      throw new ConfigError(
        'eal.lcores',
        'default',
        'needs a worker lcore besides the main one (e.g. "0,1")',
      );
    const { inner, outer } = sides(nf, dp.ports, origin);
    const gw = new GatewayPipeline({
      protectedPort: inner.port,
      unprotectedPort: outer.port,
      lcore: worker,
      burst: nf.burst,
      rx: dp.rx.pipeline,
    });
    dp.attachPipeline(gw.pipeline); // its counters reach metrics; stopTraffic stops it
    const store = new IpsecStore(gw, keys);
    gw.start();
    timer = setInterval(() => {
      store.checkLifetimes().then(
        (changed) => {
          for (const sa of changed)
            ctx.logger.info('sa lifetime', {
              direction: sa.direction,
              spi: sa.spi,
              softExpired: sa.softExpired,
              hardExpired: sa.hardExpired,
            });
        },
        (err: unknown) =>
          ctx.logger.error('sa lifetime check failed', { error: (err as Error).message }),
      );
    }, nf.lifetimeCheckMs);
    timer.unref();
    ctx.logger.info('ipsec gateway running', {
      protectedPort: { name: inner.name, devargs: inner.devargs },
      unprotectedPort: { name: outer.name, devargs: outer.devargs },
      keyDir: keyDir ?? null,
      lcore: worker,
    });
    const running = dp.running();
    return {
      ...running,
      services: [ipsecService(store)],
      async close() {
        clearInterval(timer);
        await running.close();
      },
    };
  } catch (err) {
    clearInterval(timer);
    await dp.close();
    throw err;
  }
}

export const ipsecGatewayDefinition: NetworkFunctionDefinition<GatewayConfig> = {
  kind: 'ipsec-gw',
  version: IPSEC_GW_VERSION,
  nfSchema: gatewayConfigSchema as unknown as NetworkFunctionDefinition<GatewayConfig>['nfSchema'],
  start,
};
