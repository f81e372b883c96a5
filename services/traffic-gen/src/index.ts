export { DataplaneError, InvalidArgumentError } from './errors';
export { TrafficDataplane, type TrafficDataplaneOptions } from './dataplane';
export { registerTrafficMetrics } from './metrics';
export { VERSION, trafficGen, trafficGenSchema, type TrafficGenConfig } from './nf';
export {
  flowMessage,
  perSecond,
  resultsMessage,
  totalsOf,
  type RunStateName,
  type RunView,
  type Totals,
} from './results';
export { trafficGenService, type TrafficController } from './service';
export {
  MAX_FLOWS,
  validateStart,
  type FlowInput,
  type PlannedFlow,
  type StartInput,
  type StartPlan,
} from './validation';
