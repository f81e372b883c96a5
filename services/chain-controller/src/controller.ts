import type { Logger } from '@flowline/telemetry';
import type { FlowStats } from '@flowline/ovs';
import type { chainV1 } from '@flowline/proto';
import type { NfDirectory } from './directory';
import { type NfConfigurator, hasHopConfig } from './nf-config';
import type { NfWorkload } from './nf-identity';
import {
  ChainExistsError,
  HopConfigError,
  ChainNotFoundError,
  LimitExceededError,
  StaleGenerationError,
  UnresolvedPortError,
} from './errors';
import { MAX_CHAINS } from './limits';
import { type CompileOptions, type ResolvedChain, chainKey, compileFlows, originOf } from './flows';
import {
  type Endpoint,
  type ValidChainSpec,
  endpointText,
  validateChainName,
  validateChainSpec,
} from './spec';
import type { ChainStore, StoredChain } from './store';

/** The switch as the controller drives it. */
export interface ChainSwitch {
  /** Makes the bridge's flow table exactly `flows`, atomically (one bundle). */
  apply(flows: string[]): Promise<void>;
  flowStats(): Promise<FlowStats[]>;
  /** Names of the ports on the bridge. */
  portNames(): Promise<Set<string>>;
  /**
   * With a switch per node: the nodes whose bridge has this port (as of the last portNames()),
   * so that a chain spanning nodes is refused naming the endpoint.
   */
  nodesOf?(port: string): string[];
}

/** Reports an NF's grpc.health.v1 status as it changes; returns a function that stops watching. */
export type HealthWatch = (
  address: string,
  onChange: (healthy: boolean, message: string) => void,
  /** Whose identity the NF at `address` must prove (src/nf-identity.ts). */
  workload?: NfWorkload,
) => () => void;

export type ChainPhase = 'PENDING' | 'ACTIVE' | 'DEGRADED' | 'FAILED';
export type ChainEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

interface HopState {
  healthy: boolean;
  message: string;
}

interface ChainState {
  name: string;
  raw: chainV1.ChainSpec;
  spec: ValidChainSpec;
  generation: bigint;
  /** Who manages the chain besides the gRPC API, e.g. "ServiceChain/<namespace>/<name>". */
  owner?: string;
  resolved?: ResolvedChain;
  phase: ChainPhase;
  message: string;
  updatedAt: number;
  /** Undoes the hop configs applied to the NFs for this chain, last first. */
  nfUndo?: (() => Promise<void>)[];
}

export interface ChainControllerOptions {
  store: ChainStore;
  directory: NfDirectory;
  switch: ChainSwitch;
  health?: HealthWatch;
  logger?: Logger;
  compile?: CompileOptions;
  now?: () => number;
  /**
   * Configures hops' NFs through their gRPC APIs (HopConfig): a GrpcNfConfigurator with the
   * controller's transport security. Without one a hop config is refused, naming the hop.
   */
  nfConfig?: NfConfigurator;
  /** How many chains create() accepts (default MAX_CHAINS); stored chains always load. */
  maxChains?: number;
}

/**
 * Keeps br-flowline's flow table equal to the chains: each change resolves the chain's ports,
 * compiles the whole table and applies it as one bundle, then persists the chains. The switch,
 * the in-memory state and the store move together or not at all.
 */
export class ChainController {
  private readonly chains = new Map<string, ChainState>();
  private readonly hopHealth = new Map<string, HopState>();
  private readonly watches = new Map<string, () => void>();
  private readonly listeners = new Set<(type: ChainEventType, chain: chainV1.Chain) => void>();
  private queue: Promise<unknown> = Promise.resolve();
  private readonly now: () => number;
  private readonly maxChains: number;

  constructor(private readonly options: ChainControllerOptions) {
    this.now = options.now ?? Date.now;
    this.maxChains = options.maxChains ?? MAX_CHAINS;
  }

  /** Loads the stored chains and programs every one whose ports resolve. */
  start(): Promise<void> {
    return this.serial(async () => {
      for (const stored of await this.options.store.load()) {
        let spec: ValidChainSpec;
        try {
          spec = validateChainSpec(stored.spec);
        } catch (err) {
          // Not worth a crash loop: the chain is left out, and logged whole so it can be
          // given again (the next save no longer has it).
          this.options.logger?.error('stored chain is not valid; left out', {
            chain: stored.name,
            error: (err as Error).message,
            stored,
          });
          continue;
        }
        this.chains.set(stored.name, {
          name: stored.name,
          raw: stored.spec,
          spec,
          generation: BigInt(stored.generation),
          ...(stored.owner ? { owner: stored.owner } : {}),
          phase: 'PENDING',
          message: 'loaded from the store',
          updatedAt: this.now(),
        });
      }
      await this.resolveAndApply();
      // The NFs get their hop configs again (an item they kept counts as applied).
      for (const state of this.chains.values()) {
        try {
          state.nfUndo = await this.applyHopConfigs(state);
        } catch (err) {
          this.options.logger?.warn('hop config not applied at start', { chain: state.name, err });
        }
      }
    });
  }

  /** Re-resolves chains that could not be programmed and re-applies the table (e.g. after an OVS restart). */
  reconcile(): Promise<void> {
    return this.serial(() => this.resolveAndApply());
  }

  /** Re-applies the table if the switch lost it (ovs-vswitchd restarted: flows vanish). */
  async reconcileIfLost(): Promise<boolean> {
    const expected = [...this.chains.values()].filter((c) => c.resolved);
    if (expected.length === 0) return false;
    const stats = await this.options.switch.flowStats();
    const present = new Set(stats.map((f) => originOf(f.cookie)?.chainKey));
    if (expected.every((c) => present.has(chainKey(c.name)))) return false;
    this.options.logger?.warn('switch lost chain flows; programming them again');
    await this.reconcile();
    return true;
  }

  create(
    name: string | undefined,
    raw: chainV1.ChainSpec | null | undefined,
    owner?: string,
  ): Promise<chainV1.Chain> {
    const chainName = validateChainName(name);
    const spec = validateChainSpec(raw);
    return this.serial(async () => {
      if (this.chains.has(chainName)) throw new ChainExistsError(chainName);
      if (this.chains.size >= this.maxChains)
        throw new LimitExceededError(
          'chains',
          this.maxChains,
          `the controller holds ${this.chains.size} chains, its limit; delete one before creating "${chainName}"`,
        );
      const state: ChainState = {
        name: chainName,
        raw: raw!,
        spec,
        generation: 1n,
        ...(owner ? { owner } : {}),
        phase: 'PENDING',
        message: '',
        updatedAt: this.now(),
      };
      await this.commit(state, 'ADDED');
      return this.message(state);
    });
  }

  update(
    name: string | undefined,
    raw: chainV1.ChainSpec | null | undefined,
    expected?: bigint,
  ): Promise<chainV1.Chain> {
    const chainName = validateChainName(name);
    const spec = validateChainSpec(raw);
    return this.serial(async () => {
      const current = this.chains.get(chainName);
      if (!current) throw new ChainNotFoundError(chainName);
      if (expected !== undefined && expected !== 0n && expected !== current.generation) {
        throw new StaleGenerationError(chainName, expected, current.generation);
      }
      const state: ChainState = {
        name: chainName,
        raw: raw!,
        spec,
        generation: current.generation + 1n,
        ...(current.owner ? { owner: current.owner } : {}),
        phase: 'PENDING',
        message: '',
        updatedAt: this.now(),
      };
      await this.commit(state, 'MODIFIED', current);
      return this.message(state);
    });
  }

  delete(name: string | undefined): Promise<void> {
    const chainName = validateChainName(name);
    return this.serial(async () => {
      const current = this.chains.get(chainName);
      if (!current) throw new ChainNotFoundError(chainName);
      const next = new Map(this.chains);
      next.delete(chainName);
      await this.applyAndPersist(next);
      this.chains.delete(chainName);
      // Traffic no longer reaches the hops: take their config back.
      await this.undoHopConfigs(current);
      this.syncHealthWatches();
      this.emit('DELETED', current);
    });
  }

  get(name: string): chainV1.Chain {
    const state = this.chains.get(name);
    if (!state) throw new ChainNotFoundError(name);
    return this.message(state);
  }

  list(): chainV1.Chain[] {
    return [...this.chains.values()]
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((c) => this.message(c));
  }

  /** Chains created with an owner (kept across restarts), as name → owner. */
  owners(): Map<string, string> {
    return new Map(
      [...this.chains.values()].flatMap((c) => (c.owner ? [[c.name, c.owner] as const] : [])),
    );
  }

  /** Calls back with every chain now (ADDED), then each change. Returns the unsubscribe. */
  watch(listener: (type: ChainEventType, chain: chainV1.Chain) => void): () => void {
    for (const c of this.list()) listener('ADDED', c);
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Hop packet counters from the switch, folded into each chain's status. */
  async statsSnapshot(): Promise<chainV1.Chain[]> {
    const stats = await this.options.switch.flowStats();
    return this.list().map((chain) => this.withCounters(chain, stats));
  }

  stop(): void {
    for (const stop of this.watches.values()) stop();
    this.watches.clear();
    this.listeners.clear();
  }

  private async commit(
    state: ChainState,
    event: ChainEventType,
    previous?: ChainState,
  ): Promise<void> {
    state.resolved = await this.resolve(state);
    // NF configs before the switch steers traffic to them: the old chain's off, the new one's
    // on; any failure puts the old configs and the old flow table back.
    await this.undoHopConfigs(previous);
    const restorePrevious = async (): Promise<void> => {
      if (previous) previous.nfUndo = await this.applyHopConfigs(previous).catch(() => []);
    };
    let undos: (() => Promise<void>)[];
    try {
      undos = await this.applyHopConfigs(state);
    } catch (err) {
      await restorePrevious();
      throw err;
    }
    const next = new Map(this.chains);
    next.set(state.name, state);
    try {
      await this.applyAndPersist(next);
    } catch (err) {
      for (const undo of [...undos].reverse()) await undo().catch(() => undefined);
      await restorePrevious();
      throw err;
    }
    state.nfUndo = undos;
    this.chains.set(state.name, state);
    this.refreshPhase(state);
    this.syncHealthWatches();
    this.emit(event, state);
  }

  /** Programs `chains`; persists them; on a persist failure puts the old table back. */
  private async applyAndPersist(chains: Map<string, ChainState>): Promise<void> {
    const flows = this.flowsFor(chains);
    await this.options.switch.apply(flows);
    try {
      await this.options.store.save(
        [...chains.values()].map((c): StoredChain => ({
          name: c.name,
          spec: c.raw,
          generation: String(c.generation),
          ...(c.owner ? { owner: c.owner } : {}),
        })),
      );
    } catch (err) {
      await this.options.switch.apply(this.flowsFor(this.chains)).catch(() => undefined);
      throw new Error(`chain state not saved, the change is undone: ${(err as Error).message}`);
    }
  }

  /** Applies every hop's HopConfig through its NF's API; on a failure undoes those applied. */
  private async applyHopConfigs(state: ChainState): Promise<(() => Promise<void>)[]> {
    const undos: (() => Promise<void>)[] = [];
    const configurator = this.options.nfConfig;
    try {
      for (const [i, hop] of (state.raw.hops ?? []).entries()) {
        if (!hasHopConfig(hop.config)) continue;
        if (!configurator)
          throw new HopConfigError(
            `spec.hops[${i}].config`,
            'this controller has no NF client configured, so hop configs cannot be applied',
          );
        const record = await this.options.directory.lookup(hop.nf ?? '');
        if (!record?.grpcAddress)
          throw new HopConfigError(
            `spec.hops[${i}].nf`,
            `"${hop.nf}" has no known gRPC address, so its config cannot be applied`,
          );
        undos.push(
          await configurator.apply(
            record.grpcAddress,
            hop.config!,
            `spec.hops[${i}].config`,
            record.workload,
          ),
        );
      }
    } catch (err) {
      for (const undo of undos.reverse()) await undo().catch(() => undefined);
      throw err;
    }
    return undos;
  }

  private async undoHopConfigs(state: ChainState | undefined): Promise<void> {
    for (const undo of (state?.nfUndo ?? []).reverse()) {
      await undo().catch((err: unknown) =>
        this.options.logger?.warn('taking a hop config back failed', { chain: state!.name, err }),
      );
    }
    if (state) state.nfUndo = [];
  }

  private flowsFor(chains: Map<string, ChainState>): string[] {
    const resolved = [...chains.values()].flatMap((c) =>
      c.resolved ? [this.withHealth(c.resolved)] : [],
    );
    return compileFlows(resolved, this.options.compile);
  }

  private withHealth(chain: ResolvedChain): ResolvedChain {
    return {
      ...chain,
      hops: chain.hops.map((h) => ({ ...h, healthy: this.hopHealth.get(h.nf)?.healthy ?? true })),
    };
  }

  private async resolveAndApply(): Promise<void> {
    for (const state of this.chains.values()) {
      try {
        state.resolved = await this.resolve(state);
      } catch (err) {
        delete state.resolved;
        state.phase = 'FAILED';
        state.message = (err as Error).message;
      }
    }
    await this.options.switch.apply(this.flowsFor(this.chains));
    for (const state of this.chains.values()) this.refreshPhase(state);
    this.syncHealthWatches();
  }

  private async resolve(state: ChainState): Promise<ResolvedChain> {
    const ports = await this.options.switch.portNames();
    const port = async (e: Endpoint, field: string): Promise<string> => {
      if (e.kind === 'port') {
        if (!ports.has(e.port))
          throw new UnresolvedPortError(field, `OVS port "${e.port}" is not on the bridge`);
        return e.port;
      }
      const record = await this.options.directory.lookup(e.nf);
      const ovsPort = record?.interfaces[e.iface];
      if (!ovsPort) {
        throw new UnresolvedPortError(
          field,
          `NF "${e.nf}" has no interface ${e.iface} on the switch (is its pod running and wired by the CNI plugin?)`,
        );
      }
      if (!ports.has(ovsPort))
        throw new UnresolvedPortError(
          field,
          `${endpointText(e)} is OVS port "${ovsPort}", which is not on the bridge`,
        );
      return ovsPort;
    };
    const { spec } = state;
    const ingressPort = await port(spec.classifier.ingress, 'spec.classifier.ingress_port');
    const hops: ResolvedChain['hops'] = [];
    for (const [i, h] of spec.hops.entries()) {
      hops.push({
        nf: h.nf,
        ingressPort: await port(
          { kind: 'nf', nf: h.nf, iface: h.ingress },
          `spec.hops[${i}].ingress_interface`,
        ),
        egressPort: await port(
          { kind: 'nf', nf: h.nf, iface: h.egress },
          `spec.hops[${i}].egress_interface`,
        ),
        healthy: true,
      });
    }
    const egressPort = await port(spec.egress, 'spec.egress_port');
    this.checkOneNode([
      ['spec.classifier.ingress_port', ingressPort],
      ...hops.flatMap((h, i): [string, string][] => [
        [`spec.hops[${i}].ingress_interface`, h.ingressPort],
        [`spec.hops[${i}].egress_interface`, h.egressPort],
      ]),
      ['spec.egress_port', egressPort],
    ]);
    return { name: state.name, spec, ingressPort, egressPort, hops };
  }

  /** With a switch per node, every endpoint of a chain must be on one node's bridge. */
  private checkOneNode(endpoints: [field: string, port: string][]): void {
    const nodesOf = this.options.switch.nodesOf?.bind(this.options.switch);
    if (!nodesOf) return;
    let common: string[] | undefined;
    let anchor: [string, string] | undefined;
    for (const [field, p] of endpoints) {
      const nodes = nodesOf(p);
      const next = common ? common.filter((n) => nodes.includes(n)) : nodes;
      if (next.length === 0 && anchor)
        throw new UnresolvedPortError(
          field,
          `OVS port "${p}" is on node ${nodes.join(', ')}, but ${anchor[0]} ("${anchor[1]}") is on ${common!.join(', ')}; a chain is steered within one node's switch: run its NFs and endpoints on one node (e.g. with pod affinity)`,
        );
      common = next;
      anchor ??= [field, p];
    }
  }

  private refreshPhase(state: ChainState): void {
    if (!state.resolved) return;
    const down = state.spec.hops.filter((h) => this.hopHealth.get(h.nf)?.healthy === false);
    const phase: ChainPhase = down.length === 0 ? 'ACTIVE' : 'DEGRADED';
    const message =
      down.length === 0
        ? 'programmed; every hop healthy'
        : `${down.map((h) => h.nf).join(', ')} down: ${state.spec.failurePolicy === 'bypass' ? 'bypassed' : 'traffic dropped (fail-closed)'}`;
    if (phase !== state.phase || message !== state.message) {
      state.phase = phase;
      state.message = message;
      state.updatedAt = this.now();
    }
  }

  /**
   * Watches the NF's health again from a fresh directory lookup (its pod came back at another
   * address). The last reported health stands until the new watch reports.
   */
  restartHealthWatch(nf: string): void {
    const stop = this.watches.get(nf);
    if (!stop) return;
    stop();
    this.watches.delete(nf);
    this.syncHealthWatches();
  }

  /**
   * Whether the chain's endpoints still resolve to the OVS ports it is programmed with (a
   * restarted pod gets new ports from the CNI plugin). False when it is not programmed.
   */
  async isCurrent(name: string): Promise<boolean> {
    const state = this.chains.get(name);
    if (!state?.resolved) return false;
    let now: ResolvedChain;
    try {
      now = await this.resolve(state);
    } catch {
      return false;
    }
    const ports = (c: ResolvedChain) => [
      c.ingressPort,
      c.egressPort,
      ...c.hops.flatMap((h) => [h.ingressPort, h.egressPort]),
    ];
    return ports(now).join('\n') === ports(state.resolved).join('\n');
  }

  /** Watches grpc.health.v1 of every NF some chain uses, and only those. */
  private syncHealthWatches(): void {
    const health = this.options.health;
    if (!health) return;
    const wanted = new Set([...this.chains.values()].flatMap((c) => c.spec.hops.map((h) => h.nf)));
    for (const [nf, stop] of this.watches) {
      if (!wanted.has(nf)) {
        stop();
        this.watches.delete(nf);
        this.hopHealth.delete(nf);
      }
    }
    for (const nf of wanted) {
      if (this.watches.has(nf)) continue;
      const reserved = (): void => undefined; // holds the place while the address is looked up
      this.watches.set(nf, reserved);
      void this.options.directory.lookup(nf).then((record) => {
        if (this.watches.get(nf) !== reserved) return; // stopped or restarted meanwhile
        if (!record?.grpcAddress) {
          this.hopHealth.set(nf, {
            healthy: true,
            message: 'no gRPC address known: health not watched',
          });
          return;
        }
        this.watches.set(
          nf,
          health(
            record.grpcAddress,
            (healthy, message) => void this.onHealth(nf, healthy, message),
            record.workload,
          ),
        );
      });
    }
  }

  private onHealth(nf: string, healthy: boolean, message: string): Promise<void> {
    return this.serial(async () => {
      const before = this.hopHealth.get(nf);
      this.hopHealth.set(nf, { healthy, message });
      if (before?.healthy === healthy) return;
      this.options.logger?.info(healthy ? 'hop healthy' : 'hop down', { nf, message });
      await this.options.switch.apply(this.flowsFor(this.chains));
      for (const state of this.chains.values()) {
        if (!state.spec.hops.some((h) => h.nf === nf)) continue;
        this.refreshPhase(state);
        this.emit('MODIFIED', state);
      }
    });
  }

  private message(state: ChainState): chainV1.Chain {
    return {
      name: state.name,
      spec: state.raw,
      generation: String(state.generation),
      status: {
        phase: state.phase,
        message: state.message,
        updatedUnixNanos: String(BigInt(state.updatedAt) * 1_000_000n),
        hops: state.spec.hops.map((h, i) => ({
          nf: h.nf,
          healthy: this.hopHealth.get(h.nf)?.healthy ?? true,
          message: this.hopHealth.get(h.nf)?.message ?? '',
          ingressOvsPort: state.resolved?.hops[i]?.ingressPort ?? '',
          egressOvsPort: state.resolved?.hops[i]?.egressPort ?? '',
        })),
      },
    };
  }

  private withCounters(chain: chainV1.Chain, stats: FlowStats[]): chainV1.Chain {
    const key = chainKey(chain.name!);
    const byStep = new Map<number, number>();
    for (const f of stats) {
      const o = originOf(f.cookie);
      if (o?.chainKey === key && !o.reverse)
        byStep.set(o.step, (byStep.get(o.step) ?? 0) + f.nPackets);
    }
    return {
      ...chain,
      status: {
        ...chain.status,
        classifiedPackets: String(byStep.get(0) ?? 0),
        hops: (chain.status?.hops ?? []).map((h, i) => ({
          ...h,
          packets: String(byStep.get(i) ?? 0),
        })),
      },
    };
  }

  private emit(type: ChainEventType, state: ChainState): void {
    const chain = this.message(state);
    for (const l of this.listeners) l(type, chain);
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }
}
