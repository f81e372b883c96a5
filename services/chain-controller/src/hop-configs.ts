import type { chainV1 } from '@flowline/proto';
import type { Logger } from '@flowline/telemetry';
import type { NfDirectory } from './directory';
import { HopConfigError } from './errors';
import { type NfConfigurator, hasHopConfig } from './nf-config';

/** Takes back one hop's config; `nf` says whose (a hop that comes back gets its config again). */
export type HopConfigUndo = (() => Promise<void>) & { readonly nf: string };

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
        undos.push(Object.assign(undo, { nf: hop.nf ?? '' }));
      }
    } catch (err) {
      for (const undo of undos.reverse()) await undo().catch(() => undefined);
      throw err;
    }
    return undos;
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
