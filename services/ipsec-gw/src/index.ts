export * from './errors';
export { KeyDirectory, parseHexKey } from './keys';
export { type PolicyAction, type PolicySpec, validatePolicy } from './policy';
export {
  ALGORITHMS,
  type Algorithm,
  DEFAULT_REPLAY_WINDOW,
  type Direction,
  type Lifetime,
  MAX_REPLAY_WINDOW,
  type SaSpec,
  validateSa,
} from './sa';
export { ipsecService, saMessage, sasMessage } from './service';
export { type IpsecDataplane, IpsecStore, type SaDataCounters, type SaRecord } from './store';
export { type GatewayConfig, gatewayConfigSchema, keyDirOf } from './config';
export { GatewayPipeline, type GatewayPipelineOptions, espSaOf } from './dataplane';
export { IPSEC_GW_VERSION, ipsecGatewayDefinition } from './gateway';
