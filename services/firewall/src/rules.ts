import { type Match, MatchError, matchFields, validateMatch } from '@flowline/packet';
import type { firewallV1 } from '@flowline/proto';
import { MAX_DESCRIPTION_BYTES, MAX_NATIVE_RULES, nativeRules, tableFullReason } from './limits';

export type RuleAction = 'permit' | 'deny';

/**
 * A validated rule in the form the dataplane's ACL is built from: its match is
 * @flowline/packet's (families: the ACL tables the rule goes into).
 */
export interface AclRule extends Match {
  id: string;
  priority: number;
  action: RuleAction;
  description: string;
}

export interface AclRuleSet {
  rules: AclRule[];
  defaultAction: RuleAction;
}

/** A bad rule, naming the proto field path (rule_set.rules[2].src_prefix) and what to fix. */
export class InvalidRuleError extends Error {
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(`${field}: ${reason}`);
    this.name = 'InvalidRuleError';
  }
}

/** One below rte_acl's maximum: the dataplane lifts every rule by one so that the default
 * action, a catch-all rule at the bottom, never ties with a rule. */
export const MAX_PRIORITY = 536_870_910;
const ID = /^[a-z0-9][a-z0-9-]{0,62}$/;

/**
 * The `rule` label of the default action's packets in the rule metrics (firewall.ts). Not a
 * rule id: a rule named so would be counted under the default action's label.
 */
export const DEFAULT_ACTION_LABEL = 'default';

export function actionFromProto(action: string | number | undefined, field: string): RuleAction {
  if (action === 'PERMIT' || action === 1) return 'permit';
  if (action === 'DENY' || action === 2) return 'deny';
  throw new InvalidRuleError(
    field,
    `must be PERMIT or DENY (got ${String(action ?? 'ACTION_UNSPECIFIED')})`,
  );
}

/** Validates one rule from the API; `at` is its field path, e.g. "rule_set.rules[2]". */
export function validateRule(rule: firewallV1.Rule, at: string): AclRule {
  const id = rule.id ?? '';
  if (!ID.test(id))
    throw new InvalidRuleError(
      `${at}.id`,
      `"${id}" must be 1-63 characters of [a-z0-9-], starting with a letter or digit`,
    );
  if (id === DEFAULT_ACTION_LABEL)
    throw new InvalidRuleError(
      `${at}.id`,
      `"${id}" is reserved: the default action's packets are counted as rule="${id}"; pick another id`,
    );
  const priority = Number(rule.priority ?? 0);
  if (!Number.isInteger(priority) || priority < 1 || priority > MAX_PRIORITY) {
    throw new InvalidRuleError(`${at}.priority`, `must be 1-${MAX_PRIORITY} (got ${priority})`);
  }
  const action = actionFromProto(rule.action ?? undefined, `${at}.action`);
  let match: Match;
  try {
    match = validateMatch(rule, at);
  } catch (err) {
    throw err instanceof MatchError ? new InvalidRuleError(err.field, err.reason) : err;
  }
  const description = rule.description ?? '';
  const bytes = Buffer.byteLength(description, 'utf8');
  if (bytes > MAX_DESCRIPTION_BYTES)
    throw new InvalidRuleError(
      `${at}.description`,
      `must be at most ${MAX_DESCRIPTION_BYTES} bytes of UTF-8 (got ${bytes})`,
    );
  return { id, priority, action, ...match, description };
}

/**
 * Validates a whole rule set: every rule, unique ids, and the table's size (limits.ts): the
 * first rule that does not fit is named (rule_set.rules[65536] for rules without a family).
 */
export function validateRuleSet(
  rules: readonly firewallV1.Rule[],
  defaultAction: RuleAction,
  at: string,
): AclRuleSet {
  const steps = validating(rules, defaultAction, at);
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
  }
}

/**
 * validateRuleSet off the critical path: the same checks, yielding to the event loop every
 * VALIDATE_SLICE rules, so that a 50k-rule ReplaceRules does not stall health checks.
 */
export async function validateRuleSetAsync(
  rules: readonly firewallV1.Rule[],
  defaultAction: RuleAction,
  at: string,
): Promise<AclRuleSet> {
  const steps = validating(rules, defaultAction, at);
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

/** Rules validated between two yields (about 10 ms of work here). */
const VALIDATE_SLICE = 2048;

function* validating(
  rules: readonly firewallV1.Rule[],
  defaultAction: RuleAction,
  at: string,
): Generator<void, AclRuleSet> {
  // Every rule takes at least one native rule: refuse a huge set before validating it all.
  if (rules.length > MAX_NATIVE_RULES)
    throw new InvalidRuleError(
      `${at}.rules[${MAX_NATIVE_RULES}]`,
      `the set has ${rules.length} rules, at least as many native ACL rules, ` +
        `over the ${MAX_NATIVE_RULES} one table holds`,
    );
  const seen = new Map<string, number>();
  let total = 0;
  const out: AclRule[] = [];
  for (let i = 0; i < rules.length; i++) {
    if (i > 0 && i % VALIDATE_SLICE === 0) yield;
    const valid = validateRule(rules[i]!, `${at}.rules[${i}]`);
    const before = seen.get(valid.id);
    if (before !== undefined)
      throw new InvalidRuleError(
        `${at}.rules[${i}].id`,
        `"${valid.id}" is also rules[${before}].id`,
      );
    seen.set(valid.id, i);
    total += nativeRules(valid);
    if (total > MAX_NATIVE_RULES)
      throw new InvalidRuleError(`${at}.rules[${i}]`, tableFullReason(total));
    out.push(valid);
  }
  return { rules: out, defaultAction };
}

/** Back to the API's shape, for ListRules. */
export function toProtoRule(rule: AclRule): firewallV1.Rule {
  return {
    id: rule.id,
    priority: rule.priority,
    action: rule.action === 'permit' ? 'PERMIT' : 'DENY',
    ...matchFields(rule),
    description: rule.description,
  };
}
