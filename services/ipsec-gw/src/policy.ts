/** A security policy (an SPD entry) from the API, validated; its selector is the one Match. */
import { type Match, MatchError, validateMatch } from '@flowline/packet';
import type { ipsecV1 } from '@flowline/proto';
import { IpsecConfigError } from './errors';
import { type Direction, directionFromProto } from './sa';

export type PolicyAction = 'protect' | 'bypass' | 'discard';

export interface PolicySpec {
  id: string;
  priority: number;
  direction: Direction;
  match: Match;
  action: PolicyAction;
  /** protect: the SA (same direction). */
  saSpi?: number;
}

/** rte_acl's priority range, one below its top (as the firewall's rules). */
export const MAX_PRIORITY = 536_870_910;
const ID = /^[a-z0-9][a-z0-9-]{0,62}$/;

function actionFromProto(a: unknown, field: string): PolicyAction {
  if (a === 'PROTECT' || a === 1) return 'protect';
  if (a === 'BYPASS' || a === 2) return 'bypass';
  if (a === 'DISCARD' || a === 3) return 'discard';
  throw new IpsecConfigError(
    field,
    `must be PROTECT, BYPASS or DISCARD (got ${String(a ?? 'POLICY_ACTION_UNSPECIFIED')})`,
  );
}

/**
 * Validates a policy; `saFamily(direction, spi)` is the inner family of an existing SA, or
 * undefined when there is none (a protect policy must name one that carries what it matches).
 */
export function validatePolicy(
  p: ipsecV1.Policy | null | undefined,
  saFamily: (direction: Direction, spi: number) => 4 | 6 | undefined,
  at: string,
): PolicySpec {
  if (!p) throw new IpsecConfigError(at, 'is required');
  const id = p.id ?? '';
  if (!ID.test(id))
    throw new IpsecConfigError(
      `${at}.id`,
      `"${id.slice(0, 64)}" must be 1-63 characters of [a-z0-9-], starting with a letter or digit`,
    );
  const priority = Number(p.priority ?? 0);
  if (!Number.isInteger(priority) || priority < 1 || priority > MAX_PRIORITY)
    throw new IpsecConfigError(`${at}.priority`, `must be 1-${MAX_PRIORITY} (got ${priority})`);
  const direction = directionFromProto(p.direction, `${at}.direction`);
  let match: Match;
  try {
    match = validateMatch(p.match ?? {}, `${at}.match`);
  } catch (err) {
    throw err instanceof MatchError ? new IpsecConfigError(err.field, err.reason) : err;
  }
  const action = actionFromProto(p.action, `${at}.action`);
  const spi = Number(p.saSpi ?? 0);
  if (action !== 'protect') {
    if (spi)
      throw new IpsecConfigError(
        `${at}.sa_spi`,
        `is for PROTECT policies (this one is ${action.toUpperCase()})`,
      );
    return { id, priority, direction, match, action };
  }
  const family = saFamily(direction, spi);
  if (family === undefined)
    throw new IpsecConfigError(`${at}.sa_spi`, `no ${direction.toUpperCase()} SA has SPI ${spi}`);
  if (match.families.length !== 1 || match.families[0] !== family)
    throw new IpsecConfigError(
      `${at}.match`,
      `SA ${spi} carries IPv${family} only: the selector must match IPv${family} alone (set ip_version or a prefix), it matches ${match.families.map((f) => `IPv${f}`).join(' and ')}`,
    );
  return { id, priority, direction, match, action, saSpi: spi };
}
