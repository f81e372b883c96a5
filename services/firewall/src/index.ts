export { RuleExistsError, RuleNotFoundError, RuleStore, type AclTable } from './rule-store';
export {
  InvalidRuleError,
  MAX_PRIORITY,
  MAX_RULES,
  toProtoRule,
  validateRule,
  validateRuleSet,
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
