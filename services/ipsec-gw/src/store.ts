/**
 * The gateway's SAs and policies, and the one order in which they reach the data path: one
 * change at a time; a change the data path refuses leaves everything as it was. Key material is
 * handed to the data path once and wiped here (it is never stored, listed or logged). SA
 * lifetimes in seconds are checked here (the data path counts packets and bytes): past the soft
 * limit the SA is marked for rekeying, past the hard one it leaves the data path, keeping the
 * counters it had there. Ages are measured on a monotonic clock: a step of the wall clock (NTP,
 * an operator's `date`) neither expires an SA early nor keeps one past its hard lifetime.
 */
import { ESP_MAX_POLICY_RULES } from '@flowline/dpdk';
import { IpsecConfigError, IpsecExistsError, IpsecInUseError, IpsecNotFoundError } from './errors';
import type { KeyDirectory } from './keys';
import { type PolicySpec, validatePolicy } from './policy';
import { type Direction, type SaSpec, validateSa } from './sa';
import type { ipsecV1 } from '@flowline/proto';

/** What the data path counts per SA. */
export interface SaDataCounters {
  packets: bigint;
  bytes: bigint;
  authFailures: bigint;
  replays: bigint;
  lifetimeDrops: bigint;
  trailerErrors: bigint;
  errors: bigint;
  sequence: bigint;
  softExpired: boolean;
  hardExpired: boolean;
  cryptoDevice: string;
  cpuCrypto: boolean;
}

/** The data path the store drives (the ESP stages and the policy lookup of the gateway's pipeline). */
export interface IpsecDataplane {
  /** Installs the SA; throws, having changed nothing, when it is refused. */
  addSa(sa: SaSpec): Promise<void> | void;
  /** Takes the SA out; returns its final counters (undefined: the data path has none). */
  deleteSa(
    direction: Direction,
    spi: number,
  ): Promise<SaDataCounters | undefined> | SaDataCounters | undefined;
  /**
   * Replaces the direction's policies in one step (traffic sees the old or the new set). A
   * protect policy may name an SA that left the data path (hard lifetime): its packets drop.
   */
  applyPolicies(direction: Direction, policies: readonly PolicySpec[]): Promise<void> | void;
  saCounters(direction: Direction, spi: number): SaDataCounters | undefined;
  /** Packets per policy id. */
  policyPackets(direction: Direction): ReadonlyMap<string, bigint>;
}

/** An SA as the store keeps it: its spec without key material. */
export type SaRecord = Omit<SaSpec, 'key' | 'integrityKey'> & {
  /** When it was added, in ms of the store's monotonic clock (not a wall-clock time). */
  addedAt: number;
  softExpired: boolean;
  hardExpired: boolean;
  /** Its counters as it left the data path (hard lifetime), reported from then on. */
  finalCounters?: SaDataCounters;
};

/** The default clock of the store: monotonic milliseconds (wall-clock steps do not move it). */
export const monotonicMs = (): number => performance.now();

const saKey = (d: Direction, spi: number) => `${d}/${spi}`;

/** Native rules a direction's policies take in its ESP stage: one per IP family a policy matches. */
export const policyNativeRules = (policies: readonly PolicySpec[]): number =>
  policies.reduce((n, p) => n + p.match.families.length, 0);

export class IpsecStore {
  private readonly sas = new Map<string, SaRecord>();
  private readonly policies = new Map<string, PolicySpec>();
  private queue: Promise<unknown> = Promise.resolve();
  private gen = 0n;

  constructor(
    private readonly dataplane: IpsecDataplane,
    private readonly keys: KeyDirectory,
    /** Milliseconds on a monotonic clock (injectable for tests); ages and lifetimes use it. */
    private readonly now: () => number = monotonicMs,
  ) {}

  get generation(): bigint {
    return this.gen;
  }

  listSas(): SaRecord[] {
    return [...this.sas.values()];
  }

  listPolicies(): PolicySpec[] {
    return [...this.policies.values()];
  }

  /** An SA's counters: the data path's, or those it had when it hard-expired. */
  saCounters(sa: SaRecord): SaDataCounters | undefined {
    return sa.hardExpired ? sa.finalCounters : this.dataplane.saCounters(sa.direction, sa.spi);
  }

  /** Whole seconds since the SA was added (on the store's monotonic clock). */
  ageSeconds(sa: SaRecord): number {
    return Math.max(0, Math.floor((this.now() - sa.addedAt) / 1000));
  }

  policyPackets(direction: Direction): ReadonlyMap<string, bigint> {
    return this.dataplane.policyPackets(direction);
  }

  addSa(sa: ipsecV1.SecurityAssociation | null | undefined, at = 'sa'): Promise<bigint> {
    return this.serial(async () => {
      const spec = validateSa(sa, this.keys, at);
      try {
        if (this.sas.has(saKey(spec.direction, spec.spi)))
          throw new IpsecConfigError(
            `${at}.spi`,
            `SPI ${spec.spi} is in use by another ${spec.direction.toUpperCase()} SA`,
          );
        await this.dataplane.addSa(spec);
      } finally {
        spec.key.fill(0);
        spec.integrityKey?.fill(0);
      }
      const { key: _k, integrityKey: _i, ...kept } = spec;
      this.sas.set(saKey(spec.direction, spec.spi), {
        ...kept,
        addedAt: this.now(),
        softExpired: false,
        hardExpired: false,
      });
      return ++this.gen;
    });
  }

  deleteSa(direction: Direction, spi: number): Promise<bigint> {
    return this.serial(async () => {
      const rec = this.sas.get(saKey(direction, spi));
      if (!rec) throw new IpsecNotFoundError(`no ${direction.toUpperCase()} SA has SPI ${spi}`);
      const users = [...this.policies.values()].filter(
        (p) => p.action === 'protect' && p.direction === direction && p.saSpi === spi,
      );
      if (users.length)
        throw new IpsecInUseError(
          `SA ${spi} is used by policy ${users.map((p) => p.id).join(', ')}: point it at another SA (UpdatePolicy) or delete it first`,
        );
      if (!rec.hardExpired) await this.dataplane.deleteSa(direction, spi);
      this.sas.delete(saKey(direction, spi));
      return ++this.gen;
    });
  }

  addPolicy(p: ipsecV1.Policy | null | undefined, at = 'policy'): Promise<bigint> {
    return this.serial(async () => {
      const spec = this.validPolicy(p, at);
      if (this.policies.has(spec.id))
        throw new IpsecExistsError(`policy ${spec.id} exists: UpdatePolicy replaces it`);
      return this.commitPolicies(spec.direction, spec, undefined, at);
    });
  }

  updatePolicy(p: ipsecV1.Policy | null | undefined, at = 'policy'): Promise<bigint> {
    return this.serial(async () => {
      const spec = this.validPolicy(p, at);
      const old = this.policies.get(spec.id);
      if (!old) throw new IpsecNotFoundError(`no policy ${spec.id}`);
      if (old.direction !== spec.direction)
        throw new IpsecConfigError(
          `${at}.direction`,
          `policy ${spec.id} is ${old.direction.toUpperCase()}: a policy keeps its direction`,
        );
      return this.commitPolicies(spec.direction, spec, spec.id, at);
    });
  }

  deletePolicy(id: string): Promise<bigint> {
    return this.serial(async () => {
      const old = this.policies.get(id);
      if (!old) throw new IpsecNotFoundError(`no policy ${id}`);
      return this.commitPolicies(old.direction, undefined, id, 'id');
    });
  }

  /**
   * Applies the seconds lifetimes (call about once a second): soft marks an SA for rekeying,
   * hard takes it out of the data path. Returns the SAs whose state changed.
   */
  checkLifetimes(): Promise<SaRecord[]> {
    return this.serial(async () => {
      const changed: SaRecord[] = [];
      const t = this.now();
      for (const rec of this.sas.values()) {
        const age = BigInt(Math.floor((t - rec.addedAt) / 1000));
        const { softSeconds, hardSeconds } = rec.lifetime;
        if (!rec.softExpired && softSeconds && age >= softSeconds) {
          rec.softExpired = true;
          changed.push(rec);
        }
        if (!rec.hardExpired && hardSeconds && age >= hardSeconds) {
          const final = await this.dataplane.deleteSa(rec.direction, rec.spi);
          if (final) rec.finalCounters = final;
          rec.hardExpired = true;
          rec.softExpired = true;
          if (!changed.includes(rec)) changed.push(rec);
        }
      }
      if (changed.length) this.gen++;
      return changed;
    });
  }

  private validPolicy(p: ipsecV1.Policy | null | undefined, at: string): PolicySpec {
    return validatePolicy(
      p,
      (d, spi) => {
        const sa = this.sas.get(saKey(d, spi));
        return sa && !sa.hardExpired ? sa.innerFamily : undefined;
      },
      at,
    );
  }

  /**
   * The direction's policies with `put` added (or replacing `drop`), applied, then kept. `at`
   * names the request's policy when the set would not fit the data path.
   */
  private async commitPolicies(
    direction: Direction,
    put: PolicySpec | undefined,
    drop: string | undefined,
    at: string,
  ): Promise<bigint> {
    const next = new Map(this.policies);
    // An update keeps its place in the listing (Map.set on a present key does).
    if (drop !== undefined && drop !== put?.id) next.delete(drop);
    if (put) next.set(put.id, put);
    const set = [...next.values()]
      .filter((p) => p.direction === direction)
      .sort((a, b) => b.priority - a.priority || a.id.localeCompare(b.id));
    // Checked here, not left to the stage: its refusal would be INTERNAL naming no field.
    const rules = policyNativeRules(set);
    if (rules > ESP_MAX_POLICY_RULES)
      throw new IpsecConfigError(
        at,
        `the ${direction.toUpperCase()} policies would take ${rules} native rules (a policy ` +
          `matching both IP families takes two), over the ${ESP_MAX_POLICY_RULES} a direction holds`,
      );
    await this.dataplane.applyPolicies(direction, set);
    this.policies.clear();
    for (const [k, v] of next) this.policies.set(k, v);
    return ++this.gen;
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }
}
