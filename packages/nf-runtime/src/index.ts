export {
  CONFIG_HELP,
  loadConfig,
  portSpecSchema,
  runtimeConfigSchema,
  transportSecurityOf,
  type LoadConfigInput,
  type LoadedConfig,
  type PortSpec,
  type RuntimeConfig,
} from './config';
export type { DataplaneView, PortCounters, PortView, StageCounters } from './dataplane';
export { ConfigError, PodDeviceError, type ConfigSource } from './errors';
export {
  main,
  runNetworkFunction,
  type NetworkFunctionDefinition,
  type NetworkFunctionHandle,
  type RunOptions,
  type RunningDataplane,
  type StartContext,
} from './lifecycle';
export {
  discoverPodPorts,
  planEal,
  type EalPlan,
  type PodInterfaceFile,
  type PodPort,
  type PodPortKind,
} from './pod-devices';
export {
  NfServer,
  nfAccessPolicy,
  registerDataplaneMetrics,
  snapshotOf,
  type GrpcServiceRegistration,
  type NfIdentity,
  type NfServerOptions,
} from './server';
export {
  FrameInjector,
  PodDataplane,
  ealOptionsFor,
  nativeRxInterrupts,
  openPodDataplane,
  parseLcores,
  type LinkEvent,
  type OpenPodPort,
  type PodDataplaneOptions,
} from './pod-dataplane';
export {
  POLL_BACKOFF,
  RX_MODES,
  TIMER_BACKOFF,
  rxPlan,
  type PipelineRx,
  type RxBackoff,
  type RxMode,
  type RxPlan,
} from './rx-mode';
