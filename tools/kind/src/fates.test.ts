import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { judge } from './fates';
import { loadPlan } from './plan';

const plan = loadPlan(join(__dirname, '..', 'e2e-plan.json'));
const deniedSent = plan.flows
  .filter((f) => f.expect === 'dropped')
  .reduce((n, f) => n + f.count, 0);
const exact = plan.flows.map((f) => ({
  name: f.name,
  sent: f.count,
  received: f.expect === 'delivered' ? f.count : 0,
}));

describe('judge', () => {
  it('passes when permitted flows arrive whole, denied ones not at all, and the firewall denied the rest', () => {
    const v = judge(plan, exact, deniedSent);
    expect(v.problems).toEqual([]);
    expect(v.ok).toBe(true);
    expect(v.sent).toBe(plan.flows.reduce((n, f) => n + f.count, 0));
    expect(v.sent).toBe(v.received + v.firewallDenied);
  });

  it('names a permitted flow that lost packets and counts them as unaccounted for', () => {
    const lossy = exact.map((o) => (o.name === 'dns' ? { ...o, received: o.received - 3 } : o));
    const v = judge(plan, lossy, deniedSent);
    expect(v.ok).toBe(false);
    expect(v.problems).toContain('dns: permitted, but 3 of 20000 packets did not arrive');
    expect(v.problems.some((p) => /3 unaccounted for/.test(p))).toBe(true);
  });

  it('names a denied flow whose packets got through', () => {
    const leaky = exact.map((o) => (o.name === 'default-denied' ? { ...o, received: 7 } : o));
    const v = judge(plan, leaky, deniedSent - 7);
    expect(v.problems).toEqual([
      'default-denied: denied, but 7 of 20000 packets arrived',
      `firewall denied ${deniedSent - 7} packets; the denied flows sent ${deniedSent}`,
    ]);
  });

  it('catches drops the firewall did not make (a denied flow lost elsewhere)', () => {
    const v = judge(plan, exact, deniedSent - 100);
    expect(v.ok).toBe(false);
    expect(v.problems.join('\n')).toMatch(/100 unaccounted for/);
  });

  it('wants every flow sent in full and no result it did not plan', () => {
    const short = exact.map((o) => (o.name === 'app' ? { ...o, sent: 10, received: 10 } : o));
    expect(judge(plan, short, deniedSent).problems).toContain('app: sent 10 of 20000 packets');
    const missing = exact.filter((o) => o.name !== 'app');
    expect(judge(plan, missing, deniedSent).problems).toContain(
      'app: no result from the traffic generator',
    );
    const extra = [...exact, { name: 'stray', sent: 1, received: 1 }];
    expect(judge(plan, extra, deniedSent).problems).toContain(
      'stray: a result for a flow the plan does not have',
    );
  });
});
