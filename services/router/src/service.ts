import * as grpc from '@grpc/grpc-js';
import type { GrpcServiceRegistration } from '@flowline/nf-runtime';
import { replyFrom, routerV1 } from '@flowline/proto';
import type { RouterControlPlane } from './control-plane';
import { InvalidRouteError, RouteExistsError, RouteNotFoundError } from './errors';

/** Forwarding counters kept by the dataplane's LPM stage. */
export interface RouterDataplaneCounters {
  counters(): { forwarded: bigint; droppedByReason: Record<string, bigint> };
}

function toStatus(err: unknown): Partial<grpc.StatusObject> {
  if (err instanceof InvalidRouteError)
    return { code: grpc.status.INVALID_ARGUMENT, details: err.message };
  if (err instanceof RouteExistsError)
    return { code: grpc.status.ALREADY_EXISTS, details: err.message };
  if (err instanceof RouteNotFoundError) {
    return {
      code: err.connected ? grpc.status.FAILED_PRECONDITION : grpc.status.NOT_FOUND,
      details: err.message,
    };
  }
  return {
    code: grpc.status.INTERNAL,
    details: `routes not applied, the previous table stays in force: ${(err as Error).message}`,
  };
}

/** flowline.router.v1.Router over the control plane and the dataplane's counters. */
export function routerService(
  cp: RouterControlPlane,
  dataplane: RouterDataplaneCounters,
  now: () => number = Date.now,
): GrpcServiceRegistration {
  const version = (generation: bigint) => ({
    generation: String(generation),
    routeCount: cp.statics.size,
  });
  const handlers: routerV1.RouterHandlers = {
    AddRoute: (call, callback) =>
      replyFrom(
        async () => {
          const route = call.request.route;
          if (!route) throw new InvalidRouteError('route', 'is required');
          return version(
            await cp.addRoute({
              prefix: route.prefix,
              nextHop: route.nextHop,
              iface: route.interface,
            }),
          );
        },
        callback,
        toStatus,
      ),
    DeleteRoute: (call, callback) =>
      replyFrom(async () => version(await cp.deleteRoute(call.request.prefix)), callback, toStatus),
    ListRoutes: (_call, callback) => {
      const connected = cp.interfaces.flatMap((i) =>
        i.addresses.map((a) => ({
          prefix: a.subnet.text,
          nextHop: '',
          interface: i.name,
          origin: 'connected',
        })),
      );
      const statics = cp.statics.list().map((r) => ({
        prefix: r.prefix.text,
        nextHop: r.nextHop?.address ?? '',
        interface: r.iface,
        origin: 'static',
      }));
      callback(null, { routes: [...connected, ...statics], generation: String(cp.generation) });
    },
    ListNeighbors: (_call, callback) => {
      const t = now();
      callback(null, {
        neighbors: cp.neighbors.list().map((n) => ({
          address: n.address,
          mac: n.mac ?? '',
          interface: n.iface,
          state: n.state,
          ageMs: String(Math.max(0, t - n.confirmedAt)),
        })),
      });
    },
    GetCounters: (_call, callback) => {
      const d = dataplane.counters();
      const c = cp.counters;
      // The slow path's drops with the dataplane's: packets too big for their egress MTU that
      // were not fragmented (answered with ICMP, or lost: no MAC for the next hop yet, ...).
      const dropped = { ...d.droppedByReason };
      if (c.tooBig > c.fragmented) dropped.too_big = c.tooBig - c.fragmented;
      callback(null, {
        generation: String(cp.generation),
        forwarded: String(d.forwarded),
        noRoute: String(d.droppedByReason.no_route ?? c.noRoute),
        ttlExpired: String(c.ttlExpired),
        icmpTimeExceededSent: String(c.icmpTimeExceededSent),
        arpRequestsSent: String(c.arpRequestsSent),
        arpRepliesSent: String(c.arpRepliesSent),
        ndSolicitationsSent: String(c.ndSolicitationsSent),
        ndAdvertisementsSent: String(c.ndAdvertisementsSent),
        neighborUnresolved: String(c.neighborUnresolved),
        tooBig: String(c.tooBig),
        icmpTooBigSent: String(c.icmpTooBigSent),
        fragmented: String(c.fragmented),
        fragmentsSent: String(c.fragmentsSent),
        droppedByReason: Object.fromEntries(
          Object.entries(dropped).map(([k, v]) => [k, String(v)]),
        ),
      });
    },
  };
  return {
    name: 'flowline.router.v1.Router',
    definition: routerV1.loadRouterV1().Router.service,
    implementation: handlers as unknown as grpc.UntypedServiceImplementation,
    // Open to any authenticated peer; the rest only to the chain controller and the operator.
    readOnlyMethods: ['ListRoutes', 'ListNeighbors', 'GetCounters'],
  };
}
