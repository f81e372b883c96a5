export {
  ChainController,
  type ChainControllerOptions,
  type ChainEventType,
  type ChainPhase,
  type ChainSwitch,
  type HealthWatch,
} from './controller';
export { AttachmentDirectory, type NfDirectory, type NfRecord } from './directory';
export {
  ChainExistsError,
  ChainNotFoundError,
  InvalidChainError,
  StaleGenerationError,
  UnresolvedPortError,
} from './errors';
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
} from './server';
export { chainService, toStatus } from './service';
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
export { FileChainStore, MemoryChainStore, type ChainStore, type StoredChain } from './store';
