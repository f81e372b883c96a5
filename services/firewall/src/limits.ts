/**
 * How many rules one firewall table holds — the one place this is decided (README "Limits").
 *
 * The cap counts native ACL rules, as the dataplane's table holds them: a rule for one family
 * (a prefix, `ip_version`, or `icmp`/`icmpv6`) is one native rule; a rule with neither prefix nor
 * `ip_version` matches both families and is two (`compileAcl`, packages/dpdk/src/acl.ts). The
 * firewall's default action is a catch-all rule of both families: two more.
 *
 * MAX_NATIVE_RULES is 131,072: the 65,536 rules the firewall always accepted, now even when none
 * names a family (or 131,072 rules of one family). With the default action that is at most
 * 131,074 native rules, within NATIVE_ACL_MAX_RULES, the most one native table holds
 * (FL_ACL_MAX_RULES in packages/dpdk/native/fl.h; limits.test.ts reads it from there).
 */
import type { AclRule } from './rules';

/** The most native rules one ACL table holds (FL_ACL_MAX_RULES, packages/dpdk/native/fl.h). */
export const NATIVE_ACL_MAX_RULES = 262_144;
/** The default action: a catch-all rule in both families. */
export const DEFAULT_ACTION_NATIVE_RULES = 2;
/** Native rules the API's rules may take together. */
export const MAX_NATIVE_RULES = 131_072;

/**
 * The longest rule description, in bytes of UTF-8: kept for ListRules for every rule, so
 * unbounded it would let one ReplaceRules hold up to its 4 MB message per table.
 */
export const MAX_DESCRIPTION_BYTES = 256;

/** Native ACL rules a validated rule compiles to: one per family it applies to. */
export const nativeRules = (rule: Pick<AclRule, 'families'>): number => rule.families.length;

/** Native ACL rules a set of validated rules compiles to. */
export const nativeRuleCount = (rules: readonly Pick<AclRule, 'families'>[]): number =>
  rules.reduce((n, r) => n + nativeRules(r), 0);

/** Why a rule does not fit, for InvalidRuleError; `total` counts it in. */
export function tableFullReason(total: number): string {
  return (
    `takes the table to ${total} native ACL rules, over the ${MAX_NATIVE_RULES} it holds ` +
    `(a rule without a prefix or ip_version takes two, one per family)`
  );
}
