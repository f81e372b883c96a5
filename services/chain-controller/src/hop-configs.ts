import type { chainV1 } from '@flowline/proto';
import type { Logger } from '@flowline/telemetry';
import type { NfDirectory } from './directory';
import { HopConfigConflictError, HopConfigError } from './errors';
import { type NfConfigurator, hasHopConfig } from './nf-config';

/**
 * Takes back one hop's config; `nf` says whose (a hop that comes back gets its config again);
 * `rollback` takes back only what the apply added (NfConfigUndo).
 */
export type HopConfigUndo = (() => Promise<void>) & {
  readonly nf: string;
  readonly rollback: () => Promise<void>;
};

/** One item a hop config gives an NF, as the NF keys it: `<nf> <kind> <key>`. */
function configItems(hops: chainV1.Hop[] | undefined): { item: string; field: string }[] {
  const out: { item: string; field: string }[] = [];
  for (const [i, hop] of (hops ?? []).entries()) {
    // A bare NF name is one of the default namespace (as the directory reads it).
    const nf = hop.nf?.includes('/') ? hop.nf : `default/${hop.nf ?? ''}`;
    const at = `spec.hops[${i}].config`;
    for (const [j, r] of (hop.config?.firewallRules ?? []).entries())
      out.push({ item: `${nf} firewall rule ${r.id ?? ''}`, field: `${at}.firewall_rules[${j}]` });
    for (const [j, r] of (hop.config?.routes ?? []).entries())
      out.push({ item: `${nf} route ${r.prefix ?? ''}`, field: `${at}.routes[${j}]` });
    for (const [j, p] of (hop.config?.ipsecPolicies ?? []).entries())
      out.push({ item: `${nf} IPsec policy ${p.id ?? ''}`, field: `${at}.ipsec_policies[${j}]` });
  }
  return out;
}

/**
 * Refuses a hop config item that one of `others` (chain name → its hops) gives the same NF.
 */
export function checkConfigItemsFree(
  hops: chainV1.Hop[] | undefined,
  others: Iterable<[string, chainV1.Hop[] | undefined]>,
): void {
  const mine = configItems(hops);
  if (mine.length === 0) return;
  const taken = new Map<string, string>();
  for (const [chain, h] of others) for (const { item } of configItems(h)) taken.set(item, chain);
  for (const { item, field } of mine) {
    const chain = taken.get(item);
    if (chain !== undefined)
      throw new HopConfigConflictError(
        field,
        `chain "${chain}" gives ${item.replace(' ', ' its ')} already; give this one another ${item.includes(' route ') ? 'prefix' : 'id'}`,
      );
  }
}

/**
 * A chain's hop configs (contract 5, docs/architecture.md#chaining): each hop's HopConfig goes
 * to its NF, found in the directory, through the configurator (src/nf-config.ts), and comes
 * back off again. All or nothing: a failure takes back what this call applied.
 */
export class HopConfigs {
  constructor(
    private readonly directory: NfDirectory,
    /** Without one a hop config is refused, naming the hop. */
    private readonly configurator?: NfConfigurator,
    private readonly logger?: Logger,
  ) {}

  /** Applies every hop's config, in hop order; resolves to the undos of what it applied. */
  async apply(hops: chainV1.Hop[] | undefined): Promise<HopConfigUndo[]> {
    const undos: HopConfigUndo[] = [];
    const configurator = this.configurator;
    try {
      for (const [i, hop] of (hops ?? []).entries()) {
        if (!hasHopConfig(hop.config)) continue;
        if (!configurator)
          throw new HopConfigError(
            `spec.hops[${i}].config`,
            'this controller has no NF client configured, so hop configs cannot be applied',
          );
        const record = await this.directory.lookup(hop.nf ?? '');
        if (!record?.grpcAddress)
          throw new HopConfigError(
            `spec.hops[${i}].nf`,
            `"${hop.nf}" has no known gRPC address, so its config cannot be applied`,
          );
        const undo = await configurator.apply(
          record.grpcAddress,
          hop.config!,
          `spec.hops[${i}].config`,
          record.workload,
        );
        undos.push(Object.assign(undo, { nf: hop.nf ?? '', rollback: undo.rollback ?? undo }));
      }
    } catch (err) {
      await HopConfigs.rollback(undos);
      throw err;
    }
    return undos;
  }

  /** Takes back, last first, only what the applies of `undos` added (a change that failed). */
  static async rollback(undos: readonly HopConfigUndo[]): Promise<void> {
    for (const undo of [...undos].reverse()) await undo.rollback().catch(() => undefined);
  }

  /** Runs `undos` last first; a failure is logged (naming the chain) and the rest still run. */
  async takeBack(chain: string, undos: readonly HopConfigUndo[]): Promise<void> {
    for (const undo of [...undos].reverse()) {
      await undo().catch((err: unknown) =>
        this.logger?.warn('taking a hop config back failed', { chain, err }),
      );
    }
  }
}
