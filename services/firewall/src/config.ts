import { ConfigError } from '@flowline/nf-runtime';
import type { firewallV1 } from '@flowline/proto';
import { z } from 'zod';
import { type AclRuleSet, InvalidRuleError, validateRuleSet } from './rules';

const ms = z.int().min(1).max(0xffffffff);

/** The firewall's own settings: the `nf:` section of the config file. */
export const firewallConfigSchema = z
  .object({
    /** stateless: the ACL alone; stateful: conntrack lets replies of permitted flows pass. */
    mode: z.enum(['stateless', 'stateful']).default('stateless'),
    /**
     * two-armed: traffic from the first port leaves by the second and vice versa; one-armed:
     * back out of the port it came in. Default from the number of ports (1 or 2).
     */
    topology: z.enum(['two-armed', 'one-armed']).optional(),
    defaultAction: z.enum(['permit', 'deny']).default('deny'),
    /** Rules in the API's shape (id, priority, action, srcPrefix, ...), validated like ReplaceRules. */
    rules: z.array(z.record(z.string(), z.unknown())).default([]),
    conntrack: z
      .object({
        capacity: z
          .int()
          .min(64)
          .max(1 << 24)
          // The pipeline's own default: room for about 64k flows of each address family (give ~4x).
          .default(262_144),
        whenFull: z.enum(['evict', 'drop']).default('evict'),
        /**
         * End the flows opened under the previous rules on every rule change (their packets
         * then meet the new rules; TCP connections must open again). Default false: flows
         * live until their timeout.
         */
        flushOnRuleChange: z.boolean().default(false),
        timeouts: z
          .object({
            tcpSynMs: ms.optional(),
            tcpEstablishedMs: ms.optional(),
            tcpClosingMs: ms.optional(),
            udpMs: ms.optional(),
            icmpMs: ms.optional(),
            deniedMs: ms.optional(),
          })
          .strict()
          .default({}),
      })
      .strict()
      .prefault({}),
    /** Packets per rx burst. */
    burst: z.int().min(1).max(256).default(32),
    /** Mbufs in the port pool. */
    poolSize: z.int().min(1024).max(1_048_576).default(8191),
  })
  .strict();

export type FirewallConfig = z.infer<typeof firewallConfigSchema>;

/**
 * The initial rule set from the config. Rules use the API's field names; an error names the
 * config field (nf.rules[2].src_prefix) as a ConfigError, like every other bad setting.
 */
export function initialRuleSet(config: FirewallConfig, origin?: string): AclRuleSet {
  const rules = config.rules.map((r) => {
    const action = typeof r.action === 'string' ? r.action.toUpperCase() : r.action;
    return { ...r, action } as firewallV1.Rule;
  });
  try {
    return validateRuleSet(rules, config.defaultAction, 'nf');
  } catch (err) {
    if (err instanceof InvalidRuleError)
      throw new ConfigError(err.field, 'file', err.reason, origin);
    throw err;
  }
}
