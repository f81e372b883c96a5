import * as grpc from '@grpc/grpc-js';
import type { firewallV1 } from '@flowline/proto';
import { beforeAll, describe, expect, it } from 'vitest';
import { RuleStore } from './rule-store';
import {
  RecordingTable,
  call,
  noCounters,
  serveFirewall,
  servedRuleStore,
} from '../test/support/grpc';

describe('flowline.firewall.v1 over gRPC', () => {
  const { table, client: served } = servedRuleStore();
  let client: firewallV1.FirewallClient;
  beforeAll(() => {
    client = served();
  });

  const rule = (id: string, extra: Partial<firewallV1.Rule> = {}): firewallV1.Rule => ({
    id,
    priority: 10,
    action: 'PERMIT',
    protocol: 'tcp',
    dstPorts: { first: 80, last: 80 },
    ...extra,
  });

  it('ReplaceRules applies the whole set at once and bumps the generation', async () => {
    const v = await call(client.ReplaceRules.bind(client), {
      ruleSet: {
        rules: [rule('web'), rule('dns', { protocol: 'udp', dstPorts: { first: 53, last: 53 } })],
        defaultAction: 'DENY',
      },
    });
    expect(v).toEqual({ generation: '2', ruleCount: 2 });
    expect(table.applied.at(-1)!.rules.map((r) => r.id)).toEqual(['web', 'dns']);
  });

  it('a bad rule refuses the whole request with INVALID_ARGUMENT naming the field; the old set stays', async () => {
    const before = table.applied.length;
    const err = await call(client.ReplaceRules.bind(client), {
      ruleSet: { rules: [rule('a'), rule('b', { srcPrefix: '10.0.0.1/8' })] },
    }).catch((e: grpc.ServiceError) => e);
    expect((err as grpc.ServiceError).code).toBe(grpc.status.INVALID_ARGUMENT);
    expect((err as grpc.ServiceError).details).toMatch(
      /^rule_set\.rules\[1\]\.src_prefix: .*did you mean 10\.0\.0\.0\/8/,
    );
    expect(table.applied.length).toBe(before);
    const list = await call(client.ListRules.bind(client), {});
    expect(list.ruleSet!.rules.map((r) => r.id)).toEqual(['web', 'dns']);
  });

  it('a rule with id "default" (the default action\'s metric label) is INVALID_ARGUMENT naming the id, in ReplaceRules and AddRule', async () => {
    const before = table.applied.length;
    const replace = (await call(client.ReplaceRules.bind(client), {
      ruleSet: { rules: [rule('a'), rule('default')] },
    }).catch((e: grpc.ServiceError) => e)) as grpc.ServiceError;
    expect(replace.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(replace.details).toMatch(/^rule_set\.rules\[1\]\.id: "default" is reserved/);
    const add = (await call(client.AddRule.bind(client), { rule: rule('default') }).catch(
      (e: grpc.ServiceError) => e,
    )) as grpc.ServiceError;
    expect(add.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(add.details).toMatch(/^rule\.id: "default" is reserved/);
    expect(table.applied.length).toBe(before);
    const list = await call(client.ListRules.bind(client), {});
    expect(list.generation).toBe('2');
    expect(list.ruleSet!.rules.map((r) => r.id)).toEqual(['web', 'dns']);
  });

  it('a table that fails to build leaves the running set and generation in force', async () => {
    table.refuse = true;
    try {
      const err = (await call(client.AddRule.bind(client), {
        rule: rule('ssh', { dstPorts: { first: 22, last: 22 } }),
      }).catch((e: grpc.ServiceError) => e)) as grpc.ServiceError;
      expect(err.code).toBe(grpc.status.INTERNAL);
      expect(err.details).toMatch(/previous one stays in force: rte_acl_build/);
    } finally {
      table.refuse = false;
    }
    const list = await call(client.ListRules.bind(client), {});
    expect(list.generation).toBe('2');
    expect(list.ruleSet!.rules.map((r) => r.id)).toEqual(['web', 'dns']);
  });

  it('AddRule and DeleteRule with ALREADY_EXISTS and NOT_FOUND', async () => {
    expect(
      await call(client.AddRule.bind(client), {
        rule: rule('ssh', { dstPorts: { first: 22, last: 22 } }),
      }),
    ).toEqual({ generation: '3', ruleCount: 3 });
    const dup = (await call(client.AddRule.bind(client), { rule: rule('ssh') }).catch(
      (e: grpc.ServiceError) => e,
    )) as grpc.ServiceError;
    expect(dup.code).toBe(grpc.status.ALREADY_EXISTS);
    expect(await call(client.DeleteRule.bind(client), { id: 'ssh' })).toEqual({
      generation: '4',
      ruleCount: 2,
    });
    const gone = (await call(client.DeleteRule.bind(client), { id: 'ssh' }).catch(
      (e: grpc.ServiceError) => e,
    )) as grpc.ServiceError;
    expect(gone.code).toBe(grpc.status.NOT_FOUND);
    expect(gone.details).toMatch(/rule "ssh" does not exist/);
  });

  it('concurrent changes are serialised: none lost', async () => {
    const ids = Array.from({ length: 10 }, (_, i) => `r${i}`);
    await Promise.all(ids.map((id) => call(client.AddRule.bind(client), { rule: rule(id) })));
    const list = await call(client.ListRules.bind(client), {});
    expect(list.ruleSet!.rules.map((r) => r.id).sort()).toEqual(['dns', 'web', ...ids].sort());
    expect(list.generation).toBe('14');
  });
});

describe('ReplaceRules order', () => {
  const rule = (id: string, extra: Partial<firewallV1.Rule> = {}): firewallV1.Rule => ({
    id,
    priority: 10,
    action: 'PERMIT',
    protocol: 'tcp',
    dstPorts: { first: 80, last: 80 },
    ...extra,
  });

  it('ReplaceRules apply in the order they reach the server, a large set validated in slices included', async () => {
    const table = new RecordingTable();
    const store = new RuleStore(table);
    await store.init();
    let reached!: () => void;
    const bigReached = new Promise<void>((r) => (reached = r));
    const served = await serveFirewall(store, noCounters, (m) => m === 'ReplaceRules' && reached());
    try {
      const { client } = served;
      const big = Array.from({ length: 12_000 }, (_, i) =>
        rule(`b${i}`, { srcPrefix: `10.${(i >> 8) & 255}.${i & 255}.0/24` }),
      );
      const first = call(client.ReplaceRules.bind(client), {
        ruleSet: { rules: big, defaultAction: 'DENY' },
      });
      // Sent once the big set's handler runs (it then validates in slices): it must not overtake.
      await bigReached;
      const second = call(client.ReplaceRules.bind(client), {
        ruleSet: { rules: [rule('small')], defaultAction: 'DENY' },
      });
      const [a, b] = await Promise.all([first, second]);
      expect(BigInt(b.generation)).toBe(BigInt(a.generation) + 1n);
      expect(table.applied.at(-1)!.rules.map((r) => r.id)).toEqual(['small']);
    } finally {
      await served.close();
    }
  });
});
