import { validateRuleSet } from '@flowline/firewall';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadPlan, parsePlan, PlanError } from './plan';

const shipped = join(__dirname, '..', 'e2e-plan.json');

describe('the traffic plan', () => {
  it('ships a plan with delivered and dropped flows whose rules the firewall itself accepts', () => {
    const plan = loadPlan(shipped);
    expect(plan.flows.map((f) => f.expect)).toEqual(
      expect.arrayContaining(['delivered', 'dropped']),
    );
    const set = validateRuleSet(plan.firewall.rules, 'deny', 'rule_set');
    expect(set.rules.map((r) => r.id)).toEqual(plan.firewall.rules.map((r) => r.id));
  });

  const good = JSON.parse(readFileSync(shipped, 'utf8')) as Record<string, unknown> & {
    flows: Record<string, unknown>[];
    firewall: Record<string, unknown>;
  };
  const withFlow = (change: Record<string, unknown>): unknown => ({
    ...good,
    flows: [{ ...good.flows[0], ...change }, ...good.flows.slice(1)],
  });

  it.each([
    [
      'a flow without a fate',
      withFlow({ expect: 'maybe' }),
      'flows[0].expect',
      /delivered or dropped/,
    ],
    ['an unlimited flow', withFlow({ count: 0 }), 'flows[0].count', /positive packet count/],
    ['a bad address', withFlow({ dstIp: '10.99.0.256' }), 'flows[0].dstIp', /IPv4/],
    ['a port out of range', withFlow({ srcPort: 70000 }), 'flows[0].srcPort', /0-65535/],
    ['a repeated name', withFlow({ name: good.flows[1]!.name }), 'flows[1].name', /used twice/],
    [
      'only delivered flows',
      { ...good, flows: good.flows.filter((f) => f.expect === 'delivered') },
      'flows',
      /no dropped flow/,
    ],
    [
      'a rule without an action',
      { ...good, firewall: { ...good.firewall, rules: [{ id: 'x', priority: 1 }] } },
      'firewall.rules[0].action',
      /PERMIT or DENY/,
    ],
    [
      'a bad route',
      { ...good, routes: [{ prefix: 'somewhere', interface: 'net2' }] },
      'routes[0].prefix',
      /prefix/,
    ],
  ])('refuses %s, naming the field', (_what, plan, field, reason) => {
    let error: unknown;
    try {
      parsePlan(plan, 'p.json');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(PlanError);
    expect((error as PlanError).field).toBe(field);
    expect((error as PlanError).message).toMatch(reason);
    expect((error as PlanError).message.startsWith(`p.json: ${field}: `)).toBe(true);
  });
});
