export { RuleExistsError, RuleNotFoundError, RuleStore, type AclTable } from './rule-store';
export {
  DEFAULT_ACTION_LABEL,
  InvalidRuleError,
  MAX_PRIORITY,
  toProtoRule,
  validateRule,
  validateRuleSet,
  validateRuleSetAsync,
  type AclRule,
  type AclRuleSet,
  type RuleAction,
} from './rules';
export { countersMessage, firewallService, type FirewallCounterSource } from './service';
export { firewallConfigSchema, initialRuleSet, type FirewallConfig } from './config';
export {
  FirewallPipeline,
  TopologyError,
  toDpdkRule,
  type FirewallPipelineOptions,
} from './dataplane';
export { FIREWALL_VERSION, firewallDefinition } from './firewall';
export {
  DEFAULT_ACTION_NATIVE_RULES,
  MAX_NATIVE_RULES,
  NATIVE_ACL_MAX_RULES,
  nativeRuleCount,
} from './limits';
