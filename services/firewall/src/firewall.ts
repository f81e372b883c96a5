/**
 * The firewall network function: boots on nf-runtime, opens the pod's ports on DPDK, runs
 * in ports -> [conntrack] -> ACL -> out port on one worker lcore, and serves
 * flowline.firewall.v1 over the rule store.
 */
import { Mempool, Port, initEal, type Eal } from '@flowline/dpdk';
import {
  ConfigError,
  type EalPlan,
  type NetworkFunctionDefinition,
  type PodPort,
  type RunningDataplane,
  type StartContext,
} from '@flowline/nf-runtime';
import { type FirewallConfig, firewallConfigSchema, initialRuleSet } from './config';
import { FirewallPipeline, TopologyError } from './dataplane';
import { RuleStore } from './rule-store';
import { firewallService } from './service';

export const FIREWALL_VERSION = '0.1.0';

/** "0,1" or "0-2,4" as lcore numbers. */
export function parseLcores(list: string): number[] {
  return list.split(',').flatMap((part) => {
    const [lo, hi] = part.split('-').map(Number) as [number, number | undefined];
    return hi === undefined ? [lo] : Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);
  });
}

function openEal(plan: EalPlan): Eal {
  return initEal({
    lcores: parseLcores(plan.lcores),
    memoryMb: plan.memoryMb,
    ...(plan.hugeDir ? { hugeDir: plan.hugeDir } : {}),
    noHuge: plan.noHuge,
    inMemory: plan.inMemory,
    filePrefix: plan.filePrefix,
    pciAllow: plan.pciAllow,
    extraArgs: plan.extraArgs,
  });
}

/** Opens a pod port with the first of its devargs that probes (AF_XDP before AF_PACKET). */
function openPort(p: PodPort, pool: Mempool): { name: string; port: Port; devargs: string } {
  let last: unknown;
  for (const devargs of p.devargs) {
    try {
      return {
        name: p.name,
        port: Port.open(devargs, pool, { rxQueues: 1, txQueues: 1 }),
        devargs,
      };
    } catch (err) {
      last = err;
    }
  }
  throw last instanceof Error ? last : new Error(`port ${p.name} (${p.origin}) did not open`);
}

async function start(ctx: StartContext<FirewallConfig>): Promise<RunningDataplane> {
  const nf = ctx.config.nf;
  const initial = initialRuleSet(nf, ctx.config.configFile);
  const topology = nf.topology ?? (ctx.ports.length === 1 ? 'one-armed' : 'two-armed');
  const eal = openEal(ctx.eal);
  let dp: FirewallPipeline | undefined;
  try {
    const worker = eal.lcores().workers[0];
    if (worker === undefined)
      throw new ConfigError(
        'eal.lcores',
        'default',
        'needs a worker lcore besides the main one (e.g. "0,1")',
      );
    const pool = Mempool.create({ size: nf.poolSize });
    const ports = ctx.ports.map((p) => openPort(p, pool));
    try {
      dp = new FirewallPipeline({
        ports,
        topology,
        stateful: nf.mode === 'stateful',
        conntrack: nf.conntrack,
        lcore: worker,
        burst: nf.burst,
      });
    } catch (err) {
      if (err instanceof TopologyError)
        throw new ConfigError(`nf.${err.field}`, 'file', err.message, ctx.config.configFile);
      throw err;
    }
    const store = new RuleStore(dp, initial);
    await store.init();
    dp.start();
    const firewall = dp;
    registerFirewallMetrics(ctx, firewall);
    ctx.logger.info('firewall running', {
      mode: nf.mode,
      topology,
      ports: ports.map((p) => ({ name: p.name, devargs: p.devargs })),
      rules: initial.rules.length,
      defaultAction: initial.defaultAction,
    });
    return {
      dataplane: firewall,
      services: [firewallService(store, firewall)],
      stopTraffic: () => {
        firewall.stop();
        return Promise.resolve();
      },
      // The worker runs to completion per burst, so once it has stopped nothing is in flight.
      drain: () => Promise.resolve(),
      close: () => {
        firewall.close();
        eal.cleanup();
        return Promise.resolve();
      },
    };
  } catch (err) {
    dp?.close();
    eal.cleanup();
    throw err;
  }
}

function registerFirewallMetrics(ctx: StartContext<FirewallConfig>, dp: FirewallPipeline): void {
  const { meter } = ctx.telemetry;
  const nf = ctx.config.runtime.name;
  const rule = meter.createObservableCounter('flowline_firewall_rule_packets', {
    description: 'Packets matched per firewall rule (default: rule="default")',
  });
  const ct = meter.createObservableGauge('flowline_firewall_conntrack_entries', {
    description: 'Connections tracked now',
  });
  const ctEvents = meter.createObservableCounter('flowline_firewall_conntrack_events', {
    description: 'Conntrack flows created, expired and evicted, and new flows dropped (table full)',
  });
  meter.addBatchObservableCallback(
    (result) => {
      const c = dp.counters();
      for (const r of c.rules) result.observe(rule, Number(r.packets), { nf, rule: r.id });
      result.observe(rule, Number(c.defaultPermitted), { nf, rule: 'default', action: 'permit' });
      result.observe(rule, Number(c.defaultDenied), { nf, rule: 'default', action: 'deny' });
      if (c.conntrack) {
        result.observe(ct, Number(c.conntrack.entries), { nf });
        for (const event of ['created', 'expired', 'evicted', 'tableFullDrops'] as const)
          result.observe(ctEvents, Number(c.conntrack[event]), { nf, event });
      }
    },
    [rule, ct, ctEvents],
  );
}

export const firewallDefinition: NetworkFunctionDefinition<FirewallConfig> = {
  kind: 'firewall',
  version: FIREWALL_VERSION,
  nfSchema:
    firewallConfigSchema as unknown as NetworkFunctionDefinition<FirewallConfig>['nfSchema'],
  start,
};
