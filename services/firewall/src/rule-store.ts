import { MAX_NATIVE_RULES, nativeRuleCount, nativeRules, tableFullReason } from './limits';
import { type AclRule, type AclRuleSet, InvalidRuleError, type RuleAction } from './rules';

/** Where rule sets take effect: the dataplane's ACL stage builds aside and swaps atomically. */
export interface AclTable {
  apply(ruleSet: AclRuleSet): Promise<void>;
}

export class RuleNotFoundError extends Error {
  constructor(readonly id: string) {
    super(`rule "${id}" does not exist`);
    this.name = 'RuleNotFoundError';
  }
}

export class RuleExistsError extends Error {
  constructor(readonly id: string) {
    super(`rule "${id}" already exists; delete it first or use ReplaceRules`);
    this.name = 'RuleExistsError';
  }
}

/**
 * The firewall's rule set and its generation. Every change builds the complete new set,
 * applies it to the table, and only then becomes current: if applying fails, nothing changes.
 * Changes run one at a time so two callers cannot interleave a read-modify-write.
 */
export class RuleStore {
  private current: AclRuleSet;
  private gen = 0n;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly table: AclTable,
    initial: AclRuleSet = { rules: [], defaultAction: 'deny' },
  ) {
    this.current = initial;
  }

  get ruleSet(): AclRuleSet {
    return this.current;
  }

  get generation(): bigint {
    return this.gen;
  }

  /** Applies the initial set at start-up (generation 1). */
  async init(): Promise<void> {
    await this.commit(this.current);
  }

  replace(ruleSet: { rules: AclRule[]; defaultAction?: RuleAction }): Promise<bigint> {
    return this.replaceFrom(async () => ruleSet);
  }

  /**
   * Replaces the set with what `produce` validates, in the order calls arrive: a large set
   * validated in slices (validateRuleSetAsync) still applies before a small one sent after it.
   */
  replaceFrom(
    produce: (current: AclRuleSet) => Promise<{ rules: AclRule[]; defaultAction?: RuleAction }>,
  ): Promise<bigint> {
    return this.serial(async () => {
      const ruleSet = await produce(this.current);
      return this.commit({
        rules: ruleSet.rules,
        defaultAction: ruleSet.defaultAction ?? this.current.defaultAction,
      });
    });
  }

  add(rule: AclRule): Promise<bigint> {
    return this.serial(() => {
      if (this.current.rules.some((r) => r.id === rule.id)) throw new RuleExistsError(rule.id);
      const total = nativeRuleCount(this.current.rules) + nativeRules(rule);
      if (total > MAX_NATIVE_RULES) throw new InvalidRuleError('rule', tableFullReason(total));
      return this.commit({ ...this.current, rules: [...this.current.rules, rule] });
    });
  }

  delete(id: string): Promise<bigint> {
    return this.serial(() => {
      if (!id) throw new InvalidRuleError('id', 'must name the rule to delete');
      if (!this.current.rules.some((r) => r.id === id)) throw new RuleNotFoundError(id);
      return this.commit({ ...this.current, rules: this.current.rules.filter((r) => r.id !== id) });
    });
  }

  private async commit(next: AclRuleSet): Promise<bigint> {
    await this.table.apply(next);
    this.current = next;
    this.gen += 1n;
    return this.gen;
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }
}
