import type { ProtoGrpcType } from './generated/firewall';
import { loadProto } from './loader';

/** flowline.firewall.v1: the Firewall service and its messages. */
export function loadFirewallV1(): ProtoGrpcType['flowline']['firewall']['v1'] {
  return loadProto<ProtoGrpcType>('flowline/firewall/v1/firewall.proto').flowline.firewall.v1;
}

export type { Action } from './generated/flowline/firewall/v1/Action';
export type { Counters, Counters__Output } from './generated/flowline/firewall/v1/Counters';
export type { FirewallClient, FirewallHandlers } from './generated/flowline/firewall/v1/Firewall';
export type { Rule, Rule__Output } from './generated/flowline/firewall/v1/Rule';
export type { RuleSet, RuleSet__Output } from './generated/flowline/firewall/v1/RuleSet';
export type { RuleSetVersion } from './generated/flowline/firewall/v1/RuleSetVersion';
