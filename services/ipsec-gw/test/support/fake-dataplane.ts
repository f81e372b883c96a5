/** Records what reaches the data path and can refuse (as the native stage refusing an SA). */
import type { PolicySpec } from '../../src/policy';
import type { Direction, SaSpec } from '../../src/sa';
import type { IpsecDataplane, SaDataCounters } from '../../src/store';

export class RecordingDataplane implements IpsecDataplane {
  readonly sas = new Map<string, { spec: SaSpec; key: string; integrityKey?: string }>();
  readonly policies: Record<Direction, PolicySpec[]> = { inbound: [], outbound: [] };
  readonly calls: string[] = [];
  refuse = false;
  /** The SaSpec objects handed over (their keys must be wiped after the call). */
  readonly handed: SaSpec[] = [];
  /** Packets an SA counted, by "direction/spi" (default: its SPI). */
  readonly packets = new Map<string, bigint>();

  addSa(sa: SaSpec): void {
    this.handed.push(sa);
    if (this.refuse) throw new Error('rte_ipsec_sa_init: no crypto device runs it');
    this.calls.push(`addSa ${sa.direction} ${sa.spi}`);
    this.sas.set(`${sa.direction}/${sa.spi}`, {
      spec: sa,
      key: sa.key.toString('hex'),
      ...(sa.integrityKey ? { integrityKey: sa.integrityKey.toString('hex') } : {}),
    });
  }

  /** Returns the SA's final counters, as the data path does. */
  deleteSa(direction: Direction, spi: number): SaDataCounters | undefined {
    if (this.refuse) throw new Error('refused');
    this.calls.push(`deleteSa ${direction} ${spi}`);
    const final = this.saCounters(direction, spi);
    this.sas.delete(`${direction}/${spi}`);
    return final;
  }

  applyPolicies(direction: Direction, policies: readonly PolicySpec[]): void {
    if (this.refuse) throw new Error('rte_acl_build: out of memory');
    this.calls.push(`applyPolicies ${direction} ${policies.map((p) => p.id).join(',')}`);
    this.policies[direction] = [...policies];
  }

  saCounters(direction: Direction, spi: number): SaDataCounters | undefined {
    const key = `${direction}/${spi}`;
    if (!this.sas.has(key)) return undefined;
    const packets = this.packets.get(key) ?? BigInt(spi);
    return {
      packets,
      bytes: packets * 100n,
      authFailures: 1n,
      replays: 2n,
      lifetimeDrops: 0n,
      trailerErrors: 0n,
      errors: 0n,
      sequence: 7n,
      softExpired: false,
      hardExpired: false,
      cryptoDevice: 'crypto_aesni_gcm0',
      cpuCrypto: true,
    };
  }

  policyPackets(direction: Direction): ReadonlyMap<string, bigint> {
    return new Map(this.policies[direction].map((p, i) => [p.id, BigInt(i + 10)]));
  }
}
