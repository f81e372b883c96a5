import { parsePrefix } from '@flowline/packet';
import { ConfigError } from '@flowline/nf-runtime';
import { describe, expect, it } from 'vitest';
import { firewallConfigSchema, initialRuleSet } from './config';
import { toDpdkRule } from './dataplane';

describe('firewall config', () => {
  it('fills defaults: stateless, deny, no rules, a conntrack table for about 64k flows that evicts', () => {
    const c = firewallConfigSchema.parse({});
    expect(c).toMatchObject({ mode: 'stateless', defaultAction: 'deny', rules: [], burst: 32 });
    expect(c.conntrack).toEqual({
      capacity: 262_144,
      whenFull: 'evict',
      flushOnRuleChange: false,
      timeouts: {},
    });
    expect(c.topology).toBeUndefined();
  });

  it('rejects unknown keys and bad values, naming the path', () => {
    const bad = (v: unknown) => firewallConfigSchema.safeParse(v).error?.issues[0]?.path.join('.');
    expect(bad({ mode: 'stateful-ish' })).toBe('mode');
    expect(bad({ conntrack: { capacity: 10 } })).toBe('conntrack.capacity');
    expect(bad({ conntrack: { timeouts: { udpMs: 0 } } })).toBe('conntrack.timeouts.udpMs');
    expect(bad({ conntrack: { timeouts: { udp: 5 } } })).toBe('conntrack.timeouts');
    expect(bad({ topology: 'three-armed' })).toBe('topology');
  });

  it('validates config rules like ReplaceRules, as a ConfigError naming the rule field', () => {
    const config = firewallConfigSchema.parse({
      defaultAction: 'permit',
      rules: [
        {
          id: 'web',
          priority: 10,
          action: 'permit',
          protocol: 'tcp',
          dstPorts: { first: 80, last: 80 },
        },
        { id: 'v6', priority: 5, action: 'DENY', srcPrefix: '2001:db8::/32' },
      ],
    });
    const set = initialRuleSet(config);
    expect(set.defaultAction).toBe('permit');
    expect(set.rules.map((r) => [r.id, r.action, r.families])).toEqual([
      ['web', 'permit', [4, 6]],
      ['v6', 'deny', [6]],
    ]);
    const broken = firewallConfigSchema.parse({
      rules: [
        { id: 'ok', priority: 1, action: 'permit' },
        { id: 'bad', priority: 1, action: 'permit', srcPrefix: '10.0.0.300/8' },
      ],
    });
    expect(() => initialRuleSet(broken, '/etc/fw.yaml')).toThrow(ConfigError);
    expect(() => initialRuleSet(broken, '/etc/fw.yaml')).toThrow(
      /^nf\.rules\[1\]\.src_prefix \(from \/etc\/fw\.yaml\): /,
    );
  });

  it('refuses a config rule with id "default" (the default action\'s metric label), naming nf.rules[i].id', () => {
    const config = firewallConfigSchema.parse({
      rules: [
        { id: 'web', priority: 10, action: 'permit' },
        { id: 'default', priority: 1, action: 'deny' },
      ],
    });
    expect(() => initialRuleSet(config, '/etc/fw.yaml')).toThrow(ConfigError);
    expect(() => initialRuleSet(config, '/etc/fw.yaml')).toThrow(
      /^nf\.rules\[1\]\.id \(from \/etc\/fw\.yaml\): "default" is reserved/,
    );
  });

  it('translates rules for the dpdk ACL: priority lifted above the default, ports only where they narrow', () => {
    const [web, icmp] = initialRuleSet(
      firewallConfigSchema.parse({
        rules: [
          {
            id: 'web',
            priority: 7,
            action: 'permit',
            protocol: 'tcp',
            srcPrefix: '10.0.0.0/8',
            dstPorts: { first: 8000, last: 8080 },
          },
          { id: 'ping', priority: 3, action: 'deny', protocol: 'icmp' },
        ],
      }),
    ).rules;
    expect(toDpdkRule(web!)).toEqual({
      id: 'web',
      action: 'permit',
      priority: 8,
      match: {
        families: [4],
        protocol: 6,
        src: parsePrefix('10.0.0.0/8'),
        dstPorts: [8000, 8080],
      },
    });
    expect(toDpdkRule(icmp!)).toEqual({
      id: 'ping',
      action: 'deny',
      priority: 4,
      match: { families: [4], protocol: 1 },
    });
  });
});
