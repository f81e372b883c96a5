export { ChainController, type ChainControllerOptions } from './controller';
export type { ChainSwitch } from './chain-switch';
export type { ChainEventType, ChainPhase } from './chain-state';
export type { HealthWatch } from './hop-health';
export {
  AttachmentDirectory,
  type NfDirectory,
  type NfRecord,
  type SwitchPortRecord,
} from './directory';
export {
  ChainExistsError,
  ChainKeyConflictError,
  ChainNotFoundError,
  HopConfigConflictError,
  InvalidChainError,
  LimitExceededError,
  StaleGenerationError,
  StateFileError,
  UnresolvedPortError,
} from './errors';
export { MAX_CHAINS, MAX_HOPS, MAX_WATCH_STREAMS } from './limits';
export { WatchOutbox, type ChainEvent, type EventSink } from './watch-outbox';
export {
  chainKey,
  classifierMatches,
  compileFlows,
  cookieOf,
  originOf,
  type CompileOptions,
  type FlowOrigin,
  type ResolvedChain,
} from './flows';
export { grpcHealthWatch } from './health';
export { OvsChainSwitch } from './ovs-switch';
export {
  startChainController,
  type ChainControllerConfig,
  type RunningChainController,
  type SwitchConfig,
} from './server';
export { chainService, toStatus, type ChainServiceOptions } from './service';
export {
  endpointText,
  parseEndpoint,
  portRangeMasks,
  validateChainSpec,
  validateClassifier,
  type Endpoint,
  type FailurePolicy,
  type ValidChainSpec,
} from './spec';
export {
  FileChainStore,
  MemoryChainStore,
  STATE_VERSION,
  parseChainState,
  type ChainStore,
  type StoredChain,
} from './store';
export {
  FINALIZER,
  SERVICECHAIN,
  chainNameFor,
  crField,
  toChainSpec,
  type ServiceChain,
  type ServiceChainSpec,
  type ServiceChainStatus,
} from './kube/servicechain';
export { GRPC_PORT_ANNOTATION, PodDirectory, podInfo, type PodLike } from './kube/pod-directory';
export { ServiceChainReconciler, type ReconcilerOptions } from './kube/reconciler';
export { ListWatcher, type ListWatchSource } from './kube/list-watch';
export { loadKube, serviceChainApi, type ServiceChainApi } from './kube/client';
export { GrpcNfConfigurator, hasHopConfig, type NfConfigurator } from './nf-config';
export { createChainServer, type ChainServerOptions } from './chain-server';
export {
  CHAIN_SERVICE,
  SecurityConfigError,
  chainServicePolicy,
  securityFromSettings,
  type SecuritySettings,
} from './security';
export {
  nfChannelCredentials,
  nfWorkloadOf,
  type NfWorkload,
  type PodIdentitySource,
} from './nf-identity';
