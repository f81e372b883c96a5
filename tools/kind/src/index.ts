export { judge, type FlowOutcome, type Verdict } from './fates';
export {
  loadPlan,
  parsePlan,
  PlanError,
  type Fate,
  type PlannedFlow,
  type TrafficPlan,
} from './plan';
export {
  deniedPackets,
  NfCallError,
  runTrafficStep,
  trafficGenSource,
  waitServing,
  type TrafficSource,
} from './traffic';
