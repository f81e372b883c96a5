// The rule cap, at exactly the cap and one over, counted as the native ACL counts rules.
import * as grpc from '@grpc/grpc-js';
import { compileAcl } from '@flowline/dpdk';
import type { firewallV1 } from '@flowline/proto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { toDpdkRule } from './dataplane';
import { DEFAULT_ACTION_NATIVE_RULES, MAX_NATIVE_RULES, NATIVE_ACL_MAX_RULES } from './limits';
import { InvalidRuleError, validateRuleSet } from './rules';
import { call, servedRuleStore } from '../test/support/grpc';

/** Rules for one family (ip_version 4): one native rule each. */
const oneFamily = (n: number, from = 0): firewallV1.Rule[] =>
  Array.from({ length: n }, (_, i) => ({
    id: `v4-${from + i}`,
    priority: 10,
    action: 'PERMIT',
    ipVersion: 4,
  }));
/** Rules without a family: two native rules each (IPv4 and IPv6). */
const bothFamilies = (n: number): firewallV1.Rule[] =>
  Array.from({ length: n }, (_, i) => ({ id: `any-${i}`, priority: 10, action: 'PERMIT' }));

function refusal(rules: firewallV1.Rule[]): InvalidRuleError {
  try {
    validateRuleSet(rules, 'deny', 'rule_set');
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidRuleError);
    return err as InvalidRuleError;
  }
  throw new Error(`${rules.length} rules were accepted`);
}

describe('rules per table', () => {
  it('fits the native table: at the cap the default action included is within FL_ACL_MAX_RULES', () => {
    const h = readFileSync(join(__dirname, '../../../packages/dpdk/native/fl.h'), 'utf8');
    const m = /#define FL_ACL_MAX_RULES \(1u << (\d+)\)/.exec(h);
    expect(m, 'FL_ACL_MAX_RULES in packages/dpdk/native/fl.h').not.toBeNull();
    expect(NATIVE_ACL_MAX_RULES).toBe(2 ** Number(m![1]));
    expect(MAX_NATIVE_RULES + DEFAULT_ACTION_NATIVE_RULES).toBeLessThanOrEqual(
      NATIVE_ACL_MAX_RULES,
    );
  });

  it('takes exactly the cap of rules without a family, and compiles them to that many native rules', () => {
    const set = validateRuleSet(bothFamilies(MAX_NATIVE_RULES / 2), 'deny', 'rule_set');
    // the dataplane's own mapping (toDpdkRule) and the native compiler (compileAcl) agree
    const native = compileAcl([
      ...set.rules.map(toDpdkRule),
      { id: '__default', action: 'deny', priority: 1 },
    ]);
    expect(native).toHaveLength(MAX_NATIVE_RULES + DEFAULT_ACTION_NATIVE_RULES);
  });

  it('refuses one rule without a family over the cap, naming it', () => {
    const err = refusal(bothFamilies(MAX_NATIVE_RULES / 2 + 1));
    expect(err.field).toBe(`rule_set.rules[${MAX_NATIVE_RULES / 2}]`);
    expect(err.message).toMatch(
      new RegExp(
        `takes the table to ${MAX_NATIVE_RULES + 2} native ACL rules, over the ${MAX_NATIVE_RULES}`,
      ),
    );
  });

  it('takes exactly the cap of one-family rules; one more is refused naming it', () => {
    expect(validateRuleSet(oneFamily(MAX_NATIVE_RULES), 'deny', 'rule_set').rules).toHaveLength(
      MAX_NATIVE_RULES,
    );
    // One more: the first rule that cannot fit is named, before the rest is validated.
    expect(refusal(oneFamily(MAX_NATIVE_RULES + 1)).field).toBe(
      `rule_set.rules[${MAX_NATIVE_RULES}]`,
    );
  });

  it('counts a mixed set natively: the cap less one of one family, then one without a family', () => {
    const rules = [...oneFamily(MAX_NATIVE_RULES - 1), ...bothFamilies(1)];
    expect(refusal(rules).field).toBe(`rule_set.rules[${MAX_NATIVE_RULES - 1}]`);
    rules[MAX_NATIVE_RULES - 1] = { ...rules[MAX_NATIVE_RULES - 1]!, ipVersion: 6 };
    expect(validateRuleSet(rules, 'deny', 'rule_set').rules).toHaveLength(MAX_NATIVE_RULES);
  });
});

describe('the cap over gRPC (INVALID_ARGUMENT naming the field, the table unchanged)', () => {
  const { table, store, client: served } = servedRuleStore();
  let client: firewallV1.FirewallClient;
  beforeAll(() => {
    client = served();
  });

  it('ReplaceRules at the cap is applied; cap + 1 is INVALID_ARGUMENT naming the rule', async () => {
    const atCap = await call(client.ReplaceRules.bind(client), {
      ruleSet: { rules: bothFamilies(MAX_NATIVE_RULES / 2), defaultAction: 'DENY' },
    });
    expect(atCap.ruleCount).toBe(MAX_NATIVE_RULES / 2);
    const applied = table.applied.length;
    const over = (await call(client.ReplaceRules.bind(client), {
      ruleSet: { rules: bothFamilies(MAX_NATIVE_RULES / 2 + 1), defaultAction: 'DENY' },
    }).catch((e: grpc.ServiceError) => e)) as grpc.ServiceError;
    expect(over.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(over.details).toMatch(new RegExp(`^rule_set\\.rules\\[${MAX_NATIVE_RULES / 2}\\]: `));
    expect(table.applied.length).toBe(applied);
  });

  it('AddRule into a full table is INVALID_ARGUMENT naming rule; one native rule short takes a one-family rule', async () => {
    await store.replace({
      rules: validateRuleSet(
        [...bothFamilies(MAX_NATIVE_RULES / 2 - 1), ...oneFamily(1)],
        'deny',
        'rule_set',
      ).rules,
    });
    // one native rule free: a rule without a family (two) does not fit ...
    const two = (await call(client.AddRule.bind(client), {
      rule: { id: 'one-too-many', priority: 5, action: 'DENY' },
    }).catch((e: grpc.ServiceError) => e)) as grpc.ServiceError;
    expect(two.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(two.details).toMatch(/^rule: takes the table to 131073 native ACL rules/);
    // ... a one-family rule does, and fills the table exactly
    const fits = await call(client.AddRule.bind(client), {
      rule: { id: 'last-v6', priority: 5, action: 'DENY', ipVersion: 6 },
    });
    expect(fits.ruleCount).toBe(MAX_NATIVE_RULES / 2 + 1);
    const full = (await call(client.AddRule.bind(client), {
      rule: { id: 'after-full', priority: 5, action: 'DENY', ipVersion: 4 },
    }).catch((e: grpc.ServiceError) => e)) as grpc.ServiceError;
    expect(full.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(full.details).toMatch(/^rule: /);
  });
});
