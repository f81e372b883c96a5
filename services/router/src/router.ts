/**
 * The router NF: its definition for the nf-runtime lifecycle. Boot: the pod's ports on DPDK,
 * the router interfaces on them, the LPM pipeline programmed from the control plane, and the
 * slow path fed from the punt ring; flowline.router.v1 on the runtime's gRPC server.
 */
import { IcmpErrorLimit } from './icmp-limit';
import {
  ConfigError,
  type NetworkFunctionDefinition,
  type RunningDataplane,
  type StartContext,
  openPodDataplane,
} from '@flowline/nf-runtime';
import { RouterControlPlane } from './control-plane';
import { type InterfaceConfig, type RouterConfig, routerConfigSchema } from './config';
import { RouterPipeline } from './dataplane';
import { InvalidRouteError } from './errors';
import { type RouterInterface, makeInterface } from './interfaces';
import { DEFAULT_TIMERS } from './neighbors';
import { routerService } from './service';

export const ROUTER_VERSION = '0.1.0';

function configError(err: unknown, origin: string | undefined): unknown {
  if (err instanceof InvalidRouteError)
    return new ConfigError(`nf.${err.field}`, 'file', err.reason, origin);
  return err;
}

export async function startRouter(ctx: StartContext<RouterConfig>): Promise<RunningDataplane> {
  const nf = ctx.config.nf;
  const origin = ctx.config.configFile;
  const dp = openPodDataplane(ctx, {
    mempool: { size: nf.mempoolSize },
    rxMode: ctx.config.runtime.rxMode,
  });
  const timers: NodeJS.Timeout[] = [];
  let stopped = false;
  try {
    const wanted: InterfaceConfig[] = nf.interfaces ?? ctx.ports.map((p) => ({ name: p.name }));
    if (wanted.length === 0)
      throw new ConfigError('nf.interfaces', 'file', 'the router has no ports', origin);
    const interfaces: RouterInterface[] = wanted.map((cfg, i) => {
      const at = `interfaces[${i}]`;
      const spec = ctx.ports.find((p) => p.name === cfg.name);
      if (!spec)
        throw new ConfigError(
          `nf.${at}.name`,
          'file',
          `"${cfg.name}" is not a port of this pod (have: ${ctx.ports.map((p) => p.name).join(', ') || 'none'})`,
          origin,
        );
      const port = dp.port(cfg.name);
      if (cfg.mac) {
        try {
          port.setMac(cfg.mac);
        } catch (err) {
          throw new ConfigError(`nf.${at}.mac`, 'file', (err as Error).message, origin);
        }
      }
      const addresses = cfg.addresses ?? spec.ips ?? [];
      return makeInterface(cfg.name, port.mac(), addresses, at, cfg.mtu);
    });

    const rp = new RouterPipeline({
      dataplane: dp,
      interfaces: interfaces.map((i) => i.name),
      logger: ctx.logger,
      rx: dp.rx.pipeline,
    });
    const cp = new RouterControlPlane(
      interfaces,
      rp,
      (port, frame) => rp.inject(port, frame),
      Date.now,
      { ...DEFAULT_TIMERS, ...nf.neighbors },
      new IcmpErrorLimit(nf.icmpErrors),
    );
    nf.staticNeighbors.forEach((n, i) =>
      cp.addStaticNeighbor(
        { address: n.address, mac: n.mac, iface: n.interface },
        `staticNeighbors[${i}]`,
      ),
    );
    await cp.start(
      nf.routes.map((r) => ({ prefix: r.prefix, nextHop: r.nextHop, iface: r.interface })),
    );
    rp.start();
    registerRouterMetrics(ctx, cp);
    ctx.logger.info('router started', {
      interfaces: interfaces.map((i) => ({
        name: i.name,
        mac: i.mac,
        addresses: i.addresses.map((a) => `${a.address}/${a.subnet.length}`),
        mtu: i.mtu,
      })),
      routes: nf.routes.length,
    });

    const handle = cp.handlePunt.bind(cp);
    const fail = (what: string) => (err: unknown) => ctx.logger.error(what, { err });
    // Punts: every puntPollMs while they come, backing off to puntPollIdleMaxMs when idle.
    let puntDelay = nf.puntPollMs;
    let puntTimer: NodeJS.Timeout;
    const pollPunts = (): void => {
      if (stopped) return;
      if (rp.pollPunts(handle) > 0) {
        cp.flush().catch(fail('FIB update failed'));
        puntDelay = nf.puntPollMs;
      } else {
        puntDelay = Math.min(puntDelay * 2, Math.max(nf.puntPollMs, nf.puntPollIdleMaxMs));
      }
      puntTimer = setTimeout(pollPunts, puntDelay);
      timers[0] = puntTimer;
    };
    puntTimer = setTimeout(pollPunts, puntDelay);
    timers.push(
      puntTimer,
      setInterval(() => {
        cp.tick().catch(fail('neighbour tick failed'));
      }, nf.neighborTickMs),
    );
    const base = dp.running();
    return {
      ...base,
      services: [routerService(cp, rp)],
      stopTraffic: async () => {
        stopped = true;
        for (const t of timers) clearInterval(t);
        await base.stopTraffic();
      },
    };
  } catch (err) {
    stopped = true;
    for (const t of timers) clearInterval(t);
    await dp.close();
    throw configError(err, origin);
  }
}

/**
 * The slow path's counters as flowline_router_slow_path_packets_total{nf, event} (contract 6,
 * docs/architecture.md#metrics): one event per counter, in snake case (ttl_expired, too_big,
 * icmp_too_big_sent, fragmented, fragments_sent, arp_requests_sent, ...), as GetCounters has them.
 */
function registerRouterMetrics(ctx: StartContext<RouterConfig>, cp: RouterControlPlane): void {
  const nf = ctx.config.runtime.name;
  const packets = ctx.telemetry.meter.createObservableCounter('flowline_router_slow_path_packets', {
    description:
      'Packets the router slow path took (ARP, ND, expired, too big, ...) or sent, by event',
  });
  packets.addCallback((result) => {
    for (const [counter, value] of Object.entries(cp.counters))
      result.observe(Number(value), {
        nf,
        event: counter.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`),
      });
  });
}

export const routerDefinition: NetworkFunctionDefinition<RouterConfig> = {
  kind: 'router',
  version: ROUTER_VERSION,
  nfSchema: routerConfigSchema as unknown as NetworkFunctionDefinition<RouterConfig>['nfSchema'],
  start: startRouter,
};
