import { describe, expect, it } from 'vitest';
import {
  InvalidRuleError,
  toProtoRule,
  validateRule,
  validateRuleSet,
  validateRuleSetAsync,
} from './rules';

const base = { id: 'web', priority: 10, action: 'PERMIT' as const };
function fieldOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidRuleError);
    return (err as InvalidRuleError).field;
  }
  throw new Error('expected InvalidRuleError');
}

describe('validateRule', () => {
  it('normalises a TCP rule with port ranges', () => {
    const r = validateRule(
      { ...base, srcPrefix: '10.0.0.0/8', protocol: 'TCP', dstPorts: { first: 80, last: 443 } },
      'rule',
    );
    expect(r).toMatchObject({
      id: 'web',
      action: 'permit',
      families: [4],
      protocol: 6,
      dstPorts: [80, 443],
    });
    expect(r.srcPorts).toBeUndefined(); // any port
  });
  it("names the field of every kind of mistake, the match's as @flowline/packet names them", () => {
    expect(fieldOf(() => validateRule({ ...base, id: 'Bad_Id' }, 'rule'))).toBe('rule.id');
    expect(fieldOf(() => validateRule({ ...base, priority: 0 }, 'rule'))).toBe('rule.priority');
    expect(fieldOf(() => validateRule({ ...base, action: 'ACTION_UNSPECIFIED' }, 'rule'))).toBe(
      'rule.action',
    );
    // Every match mistake is validateMatch's (packages/packet/src/match.test.ts); one shows it
    // comes out as this API's InvalidRuleError under the rule's path.
    expect(
      fieldOf(() => validateRule({ ...base, dstPorts: { first: 80, last: 80 } }, 'rule')),
    ).toBe('rule.dst_ports');
  });
  it('caps a description at 256 bytes of UTF-8, naming the field', () => {
    expect(
      validateRule({ ...base, description: 'x'.repeat(256) }, 'rule').description,
    ).toHaveLength(256);
    expect(validateRule({ ...base, description: 'é'.repeat(128) }, 'rule').description).toBe(
      'é'.repeat(128),
    );
    expect(() => validateRule({ ...base, description: 'é'.repeat(129) }, 'rule')).toThrow(
      'rule.description: must be at most 256 bytes of UTF-8 (got 258)',
    );
    expect(
      fieldOf(() =>
        validateRuleSet(
          [base, { ...base, id: 'b', description: 'x'.repeat(257) }],
          'deny',
          'rule_set',
        ),
      ),
    ).toBe('rule_set.rules[1].description');
  });
  it('round-trips through the API shape', () => {
    const api = {
      ...base,
      srcPrefix: 'fd00::/8',
      protocol: 'udp',
      dstPorts: { first: 53, last: 53 },
      description: 'dns',
    };
    const back = toProtoRule(validateRule(api, 'rule'));
    expect(back).toMatchObject({
      ...api,
      action: 'PERMIT',
      ipVersion: 6,
      srcPorts: { first: 0, last: 0 },
    });
  });
  it('refuses the id "default", the label of the default action\'s packets in the metrics', () => {
    expect(fieldOf(() => validateRule({ ...base, id: 'default' }, 'rule'))).toBe('rule.id');
    expect(() => validateRule({ ...base, id: 'default' }, 'rule')).toThrow(
      /^rule\.id: "default" is reserved: the default action's packets are counted as rule="default"/,
    );
    expect(
      fieldOf(() =>
        validateRuleSet(
          [base, { ...base, id: 'b' }, { ...base, id: 'default' }],
          'deny',
          'rule_set',
        ),
      ),
    ).toBe('rule_set.rules[2].id');
    // only the exact label: ids that merely contain it stay valid
    expect(validateRule({ ...base, id: 'default-web' }, 'rule').id).toBe('default-web');
  });
});

describe('validateRuleSet', () => {
  it('refuses duplicate ids, naming both places', () => {
    const err = (() => {
      try {
        validateRuleSet([base, { ...base, priority: 2 }], 'deny', 'rule_set');
      } catch (e) {
        return e as InvalidRuleError;
      }
    })();
    expect(err?.field).toBe('rule_set.rules[1].id');
    expect(err?.message).toMatch(/also rules\[0\]\.id/);
  });
});

describe('validateRuleSetAsync', () => {
  const many = (n: number, dup?: number) =>
    Array.from({ length: n }, (_, i) => ({
      ...base,
      id: dup !== undefined && i === n - 1 ? `r${dup}` : `r${i}`,
      srcPrefix: `10.${(i >> 8) & 255}.${i & 255}.0/24`,
      protocol: 'tcp',
      dstPorts: { first: 80, last: 90 },
    }));

  it('gives what the synchronous check gives, yielding to the event loop between slices', async () => {
    const rules = many(10_000);
    let ticks = 0;
    let ticking = true;
    const tick = (): void => {
      ticks += 1;
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    const valid = await validateRuleSetAsync(rules, 'deny', 'rule_set');
    ticking = false;
    expect(valid).toEqual(validateRuleSet(rules, 'deny', 'rule_set'));
    // 10,000 rules in slices of 2,048: the loop ran between them.
    expect(ticks).toBeGreaterThanOrEqual(4);
  });

  it('names the same field as the synchronous check', async () => {
    const rules = many(5000, 7);
    await expect(validateRuleSetAsync(rules, 'deny', 'rule_set')).rejects.toMatchObject({
      field: 'rule_set.rules[4999].id',
    });
    expect(fieldOf(() => validateRuleSet(rules, 'deny', 'rule_set'))).toBe(
      'rule_set.rules[4999].id',
    );
  });
});
