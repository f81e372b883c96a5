export {
  RouterControlPlane,
  type Injector,
  type PuntReason,
  type SlowPathCounters,
} from './control-plane';
export { InvalidRouteError, RouteExistsError, RouteNotFoundError } from './errors';
export { compileFib, type Fib, type FibNextHop, type FibProgrammer, type FibRoute } from './fib';
export {
  connectedInterface,
  localAddress,
  makeInterface,
  type RouterInterface,
} from './interfaces';
export {
  DEFAULT_TIMERS,
  NeighborTable,
  type NeighborEntry,
  type NeighborState,
  type NeighborTimers,
} from './neighbors';
export { MAX_ROUTES, checkRouteCount } from './limits';
export { StaticRoutes, validateRoute, type RouteInput, type StaticRoute } from './routes';
export { routerService, type RouterDataplaneCounters } from './service';
export {
  interfaceConfigSchema,
  routeConfigSchema,
  routerConfigSchema,
  type RouterConfig,
} from './config';
export { RouterPipeline, type PuntHandler, type RouterPipelineOptions } from './dataplane';
export { ROUTER_VERSION, routerDefinition, startRouter } from './router';
