import * as grpc from '@grpc/grpc-js';
import type { GrpcServiceRegistration } from '@flowline/nf-runtime';
import { firewallV1, replyFrom, streamEvery } from '@flowline/proto';
import { RuleExistsError, RuleNotFoundError, type RuleStore } from './rule-store';
import {
  InvalidRuleError,
  actionFromProto,
  toProtoRule,
  validateRule,
  validateRuleSetAsync,
} from './rules';

/** Counters the dataplane keeps for the firewall; read without stopping workers. */
export interface FirewallCounterSource {
  counters(): {
    rules: { id: string; packets: bigint }[];
    defaultPermitted: bigint;
    defaultDenied: bigint;
    droppedByReason: Record<string, bigint>;
    conntrack?: Record<
      | 'entries'
      | 'capacity'
      | 'created'
      | 'expired'
      | 'evicted'
      | 'returnPermitted'
      | 'tableFullDrops'
      | 'denialsCached'
      | 'deniedByCache',
      bigint
    >;
  };
}

function toStatus(err: unknown): Partial<grpc.StatusObject> {
  const status = (code: grpc.status, details: string) => ({
    code,
    details,
    metadata: new grpc.Metadata(),
  });
  if (err instanceof InvalidRuleError) return status(grpc.status.INVALID_ARGUMENT, err.message);
  if (err instanceof RuleNotFoundError) return status(grpc.status.NOT_FOUND, err.message);
  if (err instanceof RuleExistsError) return status(grpc.status.ALREADY_EXISTS, err.message);
  // The table refused the set (e.g. rte_acl build failed): nothing changed.
  return status(
    grpc.status.INTERNAL,
    `rule set not applied, the previous one stays in force: ${(err as Error).message}`,
  );
}

export function countersMessage(
  store: RuleStore,
  source: FirewallCounterSource,
): firewallV1.Counters {
  const c = source.counters();
  const ct = c.conntrack;
  return {
    generation: String(store.generation),
    rules: c.rules.map((r) => ({ id: r.id, packets: String(r.packets) })),
    defaultPermitted: String(c.defaultPermitted),
    defaultDenied: String(c.defaultDenied),
    droppedByReason: Object.fromEntries(
      Object.entries(c.droppedByReason).map(([k, v]) => [k, String(v)]),
    ),
    conntrack: ct ? Object.fromEntries(Object.entries(ct).map(([k, v]) => [k, String(v)])) : {},
  };
}

/** flowline.firewall.v1.Firewall over a rule store and the dataplane's counters. */
export function firewallService(
  store: RuleStore,
  source: FirewallCounterSource,
): GrpcServiceRegistration {
  const version = (generation: bigint) => ({
    generation: String(generation),
    ruleCount: store.ruleSet.rules.length,
  });
  const handlers: firewallV1.FirewallHandlers = {
    ReplaceRules: (call, callback) =>
      replyFrom(
        async () => {
          const set = call.request.ruleSet;
          if (!set) throw new InvalidRuleError('rule_set', 'is required');
          return version(
            await store.replaceFrom((current) =>
              validateRuleSetAsync(
                set.rules,
                set.defaultAction === 'ACTION_UNSPECIFIED'
                  ? current.defaultAction
                  : actionFromProto(set.defaultAction, 'rule_set.default_action'),
                'rule_set',
              ),
            ),
          );
        },
        callback,
        toStatus,
      ),
    AddRule: (call, callback) =>
      replyFrom(
        async () => {
          if (!call.request.rule) throw new InvalidRuleError('rule', 'is required');
          return version(await store.add(validateRule(call.request.rule, 'rule')));
        },
        callback,
        toStatus,
      ),
    DeleteRule: (call, callback) =>
      replyFrom(async () => version(await store.delete(call.request.id)), callback, toStatus),
    ListRules: (_call, callback) =>
      callback(null, {
        generation: String(store.generation),
        ruleSet: {
          rules: store.ruleSet.rules.map(toProtoRule),
          defaultAction: store.ruleSet.defaultAction === 'permit' ? 'PERMIT' : 'DENY',
        },
      }),
    GetCounters: (_call, callback) => callback(null, countersMessage(store, source)),
    WatchCounters: (call) =>
      streamEvery(call, call.request.intervalMs, () => countersMessage(store, source)),
  };
  return {
    name: 'flowline.firewall.v1.Firewall',
    definition: firewallV1.loadFirewallV1().Firewall.service,
    implementation: handlers as unknown as grpc.UntypedServiceImplementation,
    // Open to any authenticated peer; the rest only to the chain controller and the operator.
    readOnlyMethods: ['ListRules', 'GetCounters', 'WatchCounters'],
  };
}
