import type { AclRule as DpdkAclRule, Port, RuleHits } from '@flowline/dpdk';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { FirewallPipeline } from './dataplane';
import { type AclRuleSet, validateRule } from './rules';

/**
 * The ACL stage as @flowline/dpdk's Pipeline reports it, without EAL or hugepages: per-rule hits
 * of the current table, then the stage's own catch-all as "default"; updateAcl resolves to the
 * replaced table's.
 */
class FakeAclStage {
  ids: string[] = [];
  hits: number[] = [];
  stageDefault = 0;
  hit(id: string, n: number): void {
    this.hits[this.ids.indexOf(id)]! += n;
  }
  report(): RuleHits[] {
    return [
      ...this.ids.map((id, i) => ({ id, hits: this.hits[i]! })),
      { id: 'default', hits: this.stageDefault },
    ];
  }
  updateAcl(_stage: string, rules: DpdkAclRule[]): Promise<{ retired: RuleHits[] }> {
    const retired = this.report();
    this.ids = rules.map((r) => r.id!);
    this.hits = rules.map(() => 0);
    this.stageDefault = 0;
    return Promise.resolve({ retired });
  }
  aclHits(): RuleHits[] {
    return this.report();
  }
  counters() {
    return { rx: 0, tx: 0, drops: {}, punts: {}, stages: [] };
  }
}

let stage: FakeAclStage;
vi.mock('@flowline/dpdk', () => ({ Pipeline: { create: () => stage } }));

const set = (...ids: string[]): AclRuleSet => ({
  rules: ids.map((id) => validateRule({ id, priority: 10, action: 'PERMIT' }, 'rule')),
  defaultAction: 'deny',
});
const packets = (fw: FirewallPipeline) =>
  Object.fromEntries(fw.counters().rules.map((r) => [r.id, r.packets]));

let fw: FirewallPipeline;
beforeEach(() => {
  stage = new FakeAclStage();
  fw = new FirewallPipeline({
    ports: [{ name: 'net1', port: {} as Port }],
    topology: 'one-armed',
    stateful: false,
    lcore: 1,
  });
});

describe('FirewallPipeline counters', () => {
  it('a rule with id "default" keeps its counters across swaps; the stage catch-all is no rule', async () => {
    // validateRule refuses the id "default" (the default action's metric label), but the
    // pipeline does not rely on it: the stage's catch-all is told apart by its place.
    const withDefault = (): AclRuleSet => {
      const s = set('x', 'web');
      return { ...s, rules: [{ ...s.rules[0]!, id: 'default' }, s.rules[1]!] };
    };
    await fw.apply(withDefault());
    stage.hit('default', 5);
    stage.hit('__default', 2);
    stage.stageDefault = 1;
    expect(packets(fw)).toEqual({ default: 5n, web: 0n });
    await fw.apply(withDefault());
    stage.hit('default', 3);
    expect(packets(fw)).toEqual({ default: 8n, web: 0n });
    expect(fw.counters().defaultDenied).toBe(2n);
  });

  it('keeps retired hits only for rules still in the table: fresh ids do not grow it', async () => {
    await fw.apply(set('keep', 'gone'));
    stage.hit('keep', 4);
    stage.hit('gone', 7);
    for (let i = 0; i < 1000; i++) {
      await fw.apply(set('keep', `fresh-${i}`));
      stage.hit(`fresh-${i}`, 1);
    }
    const retired = (fw as unknown as { retired: Map<string, bigint> }).retired;
    expect([...retired.keys()]).toEqual(['keep']);
    expect(packets(fw)).toEqual({ keep: 4n, 'fresh-999': 1n });
    // a deleted rule's count went with it: the id used again starts from 0
    await fw.apply(set('keep', 'gone'));
    expect(packets(fw)).toEqual({ keep: 4n, gone: 0n });
  });
});
