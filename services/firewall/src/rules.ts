import type { firewallV1, matchV1 } from '@flowline/proto';
import { type Prefix, PrefixError, parsePrefix } from '@flowline/packet';
import { MAX_NATIVE_RULES, nativeRules, tableFullReason } from './limits';

export type RuleAction = 'permit' | 'deny';

/** A validated rule in the form the dataplane's ACL is built from. */
export interface AclRule {
  id: string;
  priority: number;
  action: RuleAction;
  /** Which ACL tables the rule goes into. */
  families: (4 | 6)[];
  src?: Prefix;
  dst?: Prefix;
  /** IP protocol number, or undefined for any. */
  protocol?: number;
  srcPorts: [number, number];
  dstPorts: [number, number];
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
const PROTOCOLS: Record<string, number> = { tcp: 6, udp: 17, icmp: 1, icmpv6: 58, sctp: 132 };
const PORTED = new Set([6, 17, 132]);
const ANY_PORT: [number, number] = [0, 65535];

export function actionFromProto(action: string | number | undefined, field: string): RuleAction {
  if (action === 'PERMIT' || action === 1) return 'permit';
  if (action === 'DENY' || action === 2) return 'deny';
  throw new InvalidRuleError(
    field,
    `must be PERMIT or DENY (got ${String(action ?? 'ACTION_UNSPECIFIED')})`,
  );
}

function parseProtocol(text: string, field: string): number | undefined {
  const t = text.trim().toLowerCase();
  if (t === '' || t === 'any') return undefined;
  if (t in PROTOCOLS) return PROTOCOLS[t];
  if (/^\d{1,3}$/.test(t) && Number(t) <= 255) return Number(t);
  throw new InvalidRuleError(
    field,
    `"${text}" is not any, tcp, udp, icmp, icmpv6, sctp or a protocol number 0-255`,
  );
}

function parsePorts(
  range: matchV1.PortRange | null | undefined,
  field: string,
  protocol: number | undefined,
): [number, number] {
  const first = Number(range?.first ?? 0);
  const last = Number(range?.last ?? 0);
  if (first === 0 && last === 0) return ANY_PORT;
  if (protocol === undefined || !PORTED.has(protocol)) {
    throw new InvalidRuleError(field, 'ports need protocol tcp, udp or sctp');
  }
  if (first > 65535 || last > 65535)
    throw new InvalidRuleError(field, `ports must be 0-65535 (got ${first}-${last})`);
  if (first > last) throw new InvalidRuleError(field, `first (${first}) is after last (${last})`);
  return [first, last];
}

function prefix(text: string | undefined, field: string): Prefix | undefined {
  if (!text) return undefined;
  try {
    return parsePrefix(text);
  } catch (err) {
    if (err instanceof PrefixError) throw new InvalidRuleError(field, err.message);
    throw err;
  }
}

/** Validates one rule from the API; `at` is its field path, e.g. "rule_set.rules[2]". */
export function validateRule(rule: firewallV1.Rule, at: string): AclRule {
  const id = rule.id ?? '';
  if (!ID.test(id))
    throw new InvalidRuleError(
      `${at}.id`,
      `"${id}" must be 1-63 characters of [a-z0-9-], starting with a letter or digit`,
    );
  const priority = Number(rule.priority ?? 0);
  if (!Number.isInteger(priority) || priority < 1 || priority > MAX_PRIORITY) {
    throw new InvalidRuleError(`${at}.priority`, `must be 1-${MAX_PRIORITY} (got ${priority})`);
  }
  const action = actionFromProto(rule.action ?? undefined, `${at}.action`);
  const src = prefix(rule.srcPrefix, `${at}.src_prefix`);
  const dst = prefix(rule.dstPrefix, `${at}.dst_prefix`);
  if (src && dst && src.family !== dst.family) {
    throw new InvalidRuleError(
      `${at}.dst_prefix`,
      `is IPv${dst.family} but src_prefix is IPv${src.family}`,
    );
  }
  const version = Number(rule.ipVersion ?? 0);
  if (![0, 4, 6].includes(version))
    throw new InvalidRuleError(`${at}.ip_version`, `must be 0, 4 or 6 (got ${version})`);
  const prefixFamily = (src ?? dst)?.family;
  if (version !== 0 && prefixFamily !== undefined && version !== prefixFamily) {
    throw new InvalidRuleError(
      `${at}.ip_version`,
      `is ${version} but the prefixes are IPv${prefixFamily}`,
    );
  }
  const protocol = parseProtocol(rule.protocol ?? '', `${at}.protocol`);
  const families: (4 | 6)[] = prefixFamily
    ? [prefixFamily]
    : version === 4
      ? [4]
      : version === 6
        ? [6]
        : [4, 6];
  if (protocol === 1 && !families.includes(4))
    throw new InvalidRuleError(`${at}.protocol`, 'icmp is IPv4; use icmpv6 for IPv6');
  if (protocol === 58 && !families.includes(6))
    throw new InvalidRuleError(`${at}.protocol`, 'icmpv6 is IPv6; use icmp for IPv4');
  const only = protocol === 1 ? [4 as const] : protocol === 58 ? [6 as const] : families;
  return {
    id,
    priority,
    action,
    families: only,
    ...(src ? { src } : {}),
    ...(dst ? { dst } : {}),
    ...(protocol !== undefined ? { protocol } : {}),
    srcPorts: parsePorts(rule.srcPorts, `${at}.src_ports`, protocol),
    dstPorts: parsePorts(rule.dstPorts, `${at}.dst_ports`, protocol),
    description: rule.description ?? '',
  };
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
  const ports = ([first, last]: [number, number]) =>
    first === 0 && last === 65535 ? { first: 0, last: 0 } : { first, last };
  const protocolName = Object.entries(PROTOCOLS).find(([, n]) => n === rule.protocol)?.[0];
  return {
    id: rule.id,
    priority: rule.priority,
    action: rule.action === 'permit' ? 'PERMIT' : 'DENY',
    srcPrefix: rule.src?.text ?? '',
    dstPrefix: rule.dst?.text ?? '',
    protocol: rule.protocol === undefined ? 'any' : (protocolName ?? String(rule.protocol)),
    srcPorts: ports(rule.srcPorts),
    dstPorts: ports(rule.dstPorts),
    ipVersion: rule.families.length === 1 ? rule.families[0] : 0,
    description: rule.description,
  };
}
