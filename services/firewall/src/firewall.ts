/**
 * The firewall network function: boots on nf-runtime, opens the pod's ports on DPDK, runs
 * in ports -> [conntrack] -> ACL -> out port on one worker lcore, and serves
 * flowline.firewall.v1 over the rule store.
 */
import {
  ConfigError,
  type NetworkFunctionDefinition,
  type RunningDataplane,
  type StartContext,
  openPodDataplane,
} from '@flowline/nf-runtime';
import { type FirewallConfig, firewallConfigSchema, initialRuleSet } from './config';
import { FirewallPipeline, TopologyError } from './dataplane';
import { RuleStore } from './rule-store';
import { DEFAULT_ACTION_LABEL } from './rules';
import { firewallService } from './service';

export const FIREWALL_VERSION = '0.1.0';

async function start(ctx: StartContext<FirewallConfig>): Promise<RunningDataplane> {
  const nf = ctx.config.nf;
  const initial = initialRuleSet(nf, ctx.config.configFile);
  const topology = nf.topology ?? (ctx.ports.length === 1 ? 'one-armed' : 'two-armed');
  // EAL, pool and every pod port (a server=1 virtio-user port returns once the switch connected)
  const dp = openPodDataplane(ctx, {
    mempool: { size: nf.poolSize },
    rxMode: ctx.config.runtime.rxMode,
  });
  try {
    const worker = dp.eal.lcores().workers[0];
    if (worker === undefined)
      throw new ConfigError(
        'eal.lcores',
        'default',
        'needs a worker lcore besides the main one (e.g. "0,1")',
      );
    let fw: FirewallPipeline;
    try {
      fw = new FirewallPipeline({
        ports: [...dp.ports.values()].map((p) => ({ name: p.name, port: p.port })),
        topology,
        stateful: nf.mode === 'stateful',
        conntrack: nf.conntrack,
        lcore: worker,
        burst: nf.burst,
        rx: dp.rx.pipeline,
      });
    } catch (err) {
      if (err instanceof TopologyError)
        throw new ConfigError(`nf.${err.field}`, 'file', err.message, ctx.config.configFile);
      throw err;
    }
    dp.attachPipeline(fw.pipeline); // its counters reach metrics; stopTraffic stops it
    const store = new RuleStore(fw, initial);
    await store.init();
    fw.start();
    registerFirewallMetrics(ctx, fw);
    ctx.logger.info('firewall running', {
      mode: nf.mode,
      topology,
      ports: [...dp.ports.values()].map((p) => ({ name: p.name, devargs: p.devargs })),
      rules: initial.rules.length,
      defaultAction: initial.defaultAction,
    });
    return { ...dp.running(), services: [firewallService(store, fw)] };
  } catch (err) {
    await dp.close();
    throw err;
  }
}

function registerFirewallMetrics(ctx: StartContext<FirewallConfig>, dp: FirewallPipeline): void {
  const { meter } = ctx.telemetry;
  const nf = ctx.config.runtime.name;
  const rule = meter.createObservableCounter('flowline_firewall_rule_packets', {
    description: `Packets matched per firewall rule (default action: rule="${DEFAULT_ACTION_LABEL}")`,
  });
  const ct = meter.createObservableGauge('flowline_firewall_conntrack_entries', {
    description: 'Connections tracked now',
  });
  const ctEvents = meter.createObservableCounter('flowline_firewall_conntrack_events', {
    description:
      'Conntrack flows created, expired and evicted, new flows dropped (table full), denials cached',
  });
  meter.addBatchObservableCallback(
    (result) => {
      const c = dp.counters();
      for (const r of c.rules) result.observe(rule, Number(r.packets), { nf, rule: r.id });
      // No rule has this id (validateRule refuses it), so the label names the default alone.
      const label = DEFAULT_ACTION_LABEL;
      result.observe(rule, Number(c.defaultPermitted), { nf, rule: label, action: 'permit' });
      result.observe(rule, Number(c.defaultDenied), { nf, rule: label, action: 'deny' });
      if (c.conntrack) {
        result.observe(ct, Number(c.conntrack.entries), { nf });
        for (const event of [
          'created',
          'expired',
          'evicted',
          'tableFullDrops',
          'denialsCached',
        ] as const)
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
