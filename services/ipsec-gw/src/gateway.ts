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
    registerGatewayMetrics(ctx, store);
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

/**
 * Per SA and per policy, read at each scrape: packets and inner bytes an SA passed, its drops by
 * reason, packets per policy (labels: nf, direction, spi or policy). Never a key or key name.
 */
function registerGatewayMetrics(ctx: StartContext<GatewayConfig>, store: IpsecStore): void {
  const { meter } = ctx.telemetry;
  const nf = ctx.config.runtime.name;
  const saPackets = meter.createObservableCounter('flowline_ipsec_sa_packets', {
    description: 'Packets an SA encrypted (outbound) or decrypted and accepted (inbound)',
  });
  const saBytes = meter.createObservableCounter('flowline_ipsec_sa_bytes', {
    description: 'Inner IP bytes of those packets',
  });
  const saDrops = meter.createObservableCounter('flowline_ipsec_sa_dropped_packets', {
    description: "An SA's packets dropped, by reason (auth, replay, lifetime, trailer, error)",
  });
  const policyPackets = meter.createObservableCounter('flowline_ipsec_policy_packets', {
    description: 'Packets that matched a policy',
  });
  meter.addBatchObservableCallback(
    (result) => {
      for (const sa of store.listSas()) {
        const c = store.saCounters(sa);
        if (!c) continue;
        const labels = { nf, direction: sa.direction, spi: String(sa.spi) };
        result.observe(saPackets, Number(c.packets), labels);
        result.observe(saBytes, Number(c.bytes), labels);
        for (const [reason, v] of [
          ['auth', c.authFailures],
          ['replay', c.replays],
          ['lifetime', c.lifetimeDrops],
          ['trailer', c.trailerErrors],
          ['error', c.errors],
        ] as const)
          result.observe(saDrops, Number(v), { ...labels, reason });
      }
      for (const direction of ['inbound', 'outbound'] as const) {
        const packets = store.policyPackets(direction);
        for (const p of store.listPolicies())
          if (p.direction === direction)
            result.observe(policyPackets, Number(packets.get(p.id) ?? 0n), {
              nf,
              direction,
              policy: p.id,
            });
      }
    },
    [saPackets, saBytes, saDrops, policyPackets],
  );
}

export const ipsecGatewayDefinition: NetworkFunctionDefinition<GatewayConfig> = {
  kind: 'ipsec-gw',
  version: IPSEC_GW_VERSION,
  nfSchema: gatewayConfigSchema as unknown as NetworkFunctionDefinition<GatewayConfig>['nfSchema'],
  start,
};
