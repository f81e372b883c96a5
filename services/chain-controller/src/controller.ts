import type { Logger } from '@flowline/telemetry';
import type { chainV1 } from '@flowline/proto';
import type { ChainSwitch } from './chain-switch';
import { type ChainEventType, type ChainState, fromStored, toStored } from './chain-state';
import { chainMessage, refreshPhase, withCounters } from './chain-status';
import type { NfDirectory } from './directory';
import { type NfConfigurator, hasHopConfig } from './nf-config';
import {
  ChainExistsError,
  ChainKeyConflictError,
  ChainNotFoundError,
  LimitExceededError,
  StaleGenerationError,
} from './errors';
import { MAX_CHAINS } from './limits';
import { type CompileOptions, type ResolvedChain, chainKey, compileFlows, originOf } from './flows';
import { HopConfigs, type HopConfigUndo, checkConfigItemsFree } from './hop-configs';
import { type HealthWatch, HopHealth, type HopState } from './hop-health';
import { PortResolver, samePorts } from './port-resolver';
import { SerialQueue } from './serial-queue';
import { type ValidChainSpec, validateChainName, validateChainSpec } from './spec';
import type { ChainStore } from './store';

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
 *
 * It orchestrates; the parts do the work: PortResolver (endpoints → OVS ports), HopConfigs (the
 * NFs' hop configs), HopHealth (the hops' health watches), chain-status.ts (phase, API form,
 * counters), chain-state.ts (the chain record and its stored form), SerialQueue (one change at
 * a time).
 */
export class ChainController {
  private readonly chains = new Map<string, ChainState>();
  private readonly listeners = new Set<(type: ChainEventType, chain: chainV1.Chain) => void>();
  private readonly queue = new SerialQueue();
  private readonly now: () => number;
  private readonly maxChains: number;
  private readonly ports: PortResolver;
  private readonly hopConfigs: HopConfigs;
  private readonly hopHealth: HopHealth;
  /** Hops back from down whose hop config was refused: out of the path until it is applied. */
  private readonly unconfigured = new Set<string>();
  /** A hop's health: down when its node is lost, else as its NF last reported. */
  private readonly healthOf = (nf: string): HopState | undefined => {
    const lost = this.nodeLostOf(nf);
    return lost ? { healthy: false, message: lost } : this.hopHealth.of(nf);
  };
  private readonly unwatchNodes: () => void;

  constructor(private readonly options: ChainControllerOptions) {
    this.now = options.now ?? Date.now;
    this.maxChains = options.maxChains ?? MAX_CHAINS;
    this.ports = new PortResolver(options.switch, options.directory);
    this.hopConfigs = new HopConfigs(options.directory, options.nfConfig, options.logger);
    this.hopHealth = new HopHealth({
      directory: options.directory,
      ...(options.health ? { watch: options.health } : {}),
      wanted: () => [...this.chains.values()].flatMap((c) => c.spec.hops.map((h) => h.nf)),
      onReport: (nf, healthy, message) => void this.onHealth(nf, healthy, message),
    });
    this.unwatchNodes =
      options.switch.watchNodes?.(
        (node, up) =>
          void this.onNode(node, up).catch((err: unknown) =>
            this.options.logger?.warn('programming after a node change failed', { node, err }),
          ),
      ) ?? (() => undefined);
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
        this.chains.set(stored.name, fromStored(stored, spec, this.now()));
      }
      await this.resolveAndApply();
      // The NFs get their hop configs again (an item they kept counts as applied).
      for (const state of this.chains.values()) {
        try {
          state.nfUndo = await this.hopConfigs.apply(state.raw.hops);
        } catch (err) {
          this.options.logger?.warn('hop config not applied at start', { chain: state.name, err });
        }
      }
    });
  }

  /** Re-resolves chains that could not be programmed and re-applies the table (e.g. after an OVS restart). */
  reconcile(): Promise<void> {
    return this.serial(async () => {
      await this.retryUnconfigured();
      await this.resolveAndApply();
    });
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
      const key = chainKey(chainName);
      const holder = [...this.chains.keys()].find((c) => chainKey(c) === key);
      if (holder !== undefined) throw new ChainKeyConflictError(chainName, holder, key);
      checkConfigItemsFree(raw?.hops, this.otherChainsHops(chainName));
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
      checkConfigItemsFree(raw?.hops, this.otherChainsHops(chainName));
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
      this.hopHealth.sync();
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

  /**
   * Packet counters from the switch folded into each chain's status: the classified packets,
   * each hop's, and each crossing's between nodes (the chain's path as the switch last
   * programmed it; none on one node) with its packets too long for the tunnel.
   */
  async statsSnapshot(): Promise<chainV1.Chain[]> {
    const sw = this.options.switch;
    const stats = await sw.flowStats();
    const oversize = (await sw.oversizeCounts?.()) ?? [];
    return this.list().map((chain) =>
      withCounters(chain, stats, sw.crossings?.(chain.name ?? '') ?? [], oversize),
    );
  }

  stop(): void {
    this.unwatchNodes();
    this.hopHealth.stop();
    this.listeners.clear();
  }

  /**
   * Watches the NF's health again from a fresh directory lookup (its pod came back at another
   * address). The last reported health stands until the new watch reports.
   */
  restartHealthWatch(nf: string): void {
    this.hopHealth.restart(nf);
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
    return samePorts(now, state.resolved);
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
      if (!previous) return;
      try {
        previous.nfUndo = await this.hopConfigs.apply(previous.raw.hops);
      } catch (err) {
        previous.nfUndo = [];
        this.configsNotRestored(previous, err);
        await this.program(this.chains).catch(() => undefined);
        this.emit('MODIFIED', previous);
      }
    };
    let undos: HopConfigUndo[];
    try {
      undos = await this.hopConfigs.apply(state.raw.hops);
    } catch (err) {
      await restorePrevious();
      throw err;
    }
    const next = new Map(this.chains);
    next.set(state.name, state);
    try {
      await this.applyAndPersist(next);
    } catch (err) {
      await HopConfigs.rollback(undos);
      await restorePrevious();
      throw err;
    }
    state.nfUndo = undos;
    this.chains.set(state.name, state);
    refreshPhase(state, this.healthOf, this.now);
    this.hopHealth.sync();
    this.emit(event, state);
  }

  /** Programs `chains`; persists them; on a persist failure puts the old table back. */
  private async applyAndPersist(chains: Map<string, ChainState>): Promise<void> {
    await this.program(chains);
    try {
      await this.options.store.save([...chains.values()].map(toStored));
    } catch (err) {
      await this.program(this.chains).catch(() => undefined);
      throw new Error(`chain state not saved, the change is undone: ${(err as Error).message}`);
    }
  }

  /**
   * A failed change could not give the old chain's NFs their configs back (apply is all or
   * nothing: none of them has it now). The chain stays on the switch, so its configured hops
   * count as down, and the failure policy applies, until a reconcile configures them again
   * (retryUnconfigured), rather than carry traffic without the chain's rules.
   */
  private configsNotRestored(state: ChainState, err: unknown): void {
    const nfs = [
      ...new Set(
        (state.raw.hops ?? []).filter((h) => hasHopConfig(h.config)).map((h) => h.nf ?? ''),
      ),
    ];
    const message = `its hop config could not be put back after a failed change: ${(err as Error).message}`;
    for (const nf of nfs) {
      this.unconfigured.add(nf);
      this.hopHealth.record(nf, false, message);
    }
    refreshPhase(state, this.healthOf, this.now);
    this.options.logger?.error(
      'hop configs not restored after a failed change; those hops are down',
      {
        chain: state.name,
        nfs,
        err,
      },
    );
  }

  /** Every chain's hops but `name`'s, as chain name → hops. */
  private *otherChainsHops(name: string): Iterable<[string, chainV1.Hop[] | undefined]> {
    for (const [other, state] of this.chains) if (other !== name) yield [other, state.raw.hops];
  }

  /** Takes back the hop configs applied for `state`, if any. */
  private async undoHopConfigs(state: ChainState | undefined): Promise<void> {
    if (!state) return;
    await this.hopConfigs.takeBack(state.name, state.nfUndo ?? []);
    state.nfUndo = [];
  }

  /** The resolved chains, each hop marked with its health (down, too, on a lost node). */
  private resolvedOf(chains: Map<string, ChainState>): ResolvedChain[] {
    const lost = this.options.switch.portLost?.bind(this.options.switch);
    return [...chains.values()].flatMap((c) => {
      if (!c.resolved) return [];
      const marked = this.hopHealth.mark(c.resolved);
      if (!lost) return [marked];
      return [
        {
          ...marked,
          hops: marked.hops.map((h) =>
            h.healthy && (lost(h.ingressPort) ?? lost(h.egressPort)) !== undefined
              ? { ...h, healthy: false }
              : h,
          ),
        },
      ];
    });
  }

  /** Why the node of an NF's ports (in any programmed chain) is lost, if it is. */
  private nodeLostOf(nf: string): string | undefined {
    const lost = this.options.switch.portLost?.bind(this.options.switch);
    if (!lost) return undefined;
    for (const state of this.chains.values())
      for (const h of state.resolved?.hops ?? [])
        if (h.nf === nf) {
          const why = lost(h.ingressPort) ?? lost(h.egressPort);
          if (why !== undefined) return why;
        }
    return undefined;
  }

  /**
   * A node was found lost, or answers again: the chains are programmed again (its hops down
   * or back, as their failure policy says; a node back gets its whole table), and the chains
   * with a hop there are reported.
   */
  private onNode(node: string, up: boolean): Promise<void> {
    return this.serial(async () => {
      this.options.logger?.info(up ? 'node back' : 'node lost', { node });
      await this.program(this.chains);
      for (const state of this.chains.values()) {
        const before = `${state.phase} ${state.message}`;
        refreshPhase(state, this.healthOf, this.now);
        if (`${state.phase} ${state.message}` !== before) this.emit('MODIFIED', state);
      }
    });
  }

  /**
   * Programs the switch for `chains`: one compiled table, or the chains themselves to a switch
   * that compiles per node (ChainSwitch.applyChains: chains across nodes).
   */
  private async program(chains: Map<string, ChainState>): Promise<void> {
    const sw = this.options.switch;
    const compile = this.options.compile ?? { defaultAction: 'normal' };
    if (sw.applyChains) await sw.applyChains(this.resolvedOf(chains), compile);
    else await sw.apply(compileFlows(this.resolvedOf(chains), this.options.compile));
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
    await this.program(this.chains);
    for (const state of this.chains.values()) refreshPhase(state, this.healthOf, this.now);
    this.hopHealth.sync();
  }

  private resolve(state: ChainState): Promise<ResolvedChain> {
    return this.ports.resolve(state.name, state.spec);
  }

  private onHealth(nf: string, healthy: boolean, message: string): Promise<void> {
    return this.serial(async () => {
      if (healthy && this.hopHealth.of(nf)?.healthy === false) {
        // Back from down, often a new instance (its NF restarted) that lost what the chains
        // gave it: it gets its hop configs again before traffic is steered into it, or stays
        // out of the path (the next reconcile tries again) rather than carry a tenant's traffic
        // without the chain's rules.
        const refused = await this.configureReturningHop(nf);
        if (refused) {
          healthy = false;
          message = `serving, but its hop config was not applied: ${refused}`;
        }
      } else if (!healthy) {
        this.unconfigured.delete(nf);
      }
      if (!this.hopHealth.record(nf, healthy, message)) return;
      this.options.logger?.info(healthy ? 'hop healthy' : 'hop down', { nf, message });
      await this.program(this.chains);
      for (const state of this.chains.values()) {
        if (!state.spec.hops.some((h) => h.nf === nf)) continue;
        refreshPhase(state, this.healthOf, this.now);
        this.emit('MODIFIED', state);
      }
    });
  }

  /**
   * Gives a hop that came back the hop configs of every chain it is in; on a refusal, what this
   * call applied is taken back, the NF is remembered for the next reconcile, and the refusal is
   * returned.
   */
  private async configureReturningHop(nf: string): Promise<string | undefined> {
    for (const state of this.chains.values()) {
      const hops = (state.raw.hops ?? []).filter((h) => h.nf === nf);
      if (hops.length === 0) continue;
      try {
        const fresh = await this.hopConfigs.apply(hops);
        state.nfUndo = [...(state.nfUndo ?? []).filter((u) => u.nf !== nf), ...fresh];
      } catch (err) {
        this.unconfigured.add(nf);
        this.options.logger?.warn(
          'hop back, but its config was not applied; kept out of the path',
          {
            chain: state.name,
            nf,
            err,
          },
        );
        return (err as Error).message;
      }
    }
    this.unconfigured.delete(nf);
    return undefined;
  }

  /** Hops that came back but refused their config: tried again at each reconcile. */
  private async retryUnconfigured(): Promise<void> {
    for (const nf of [...this.unconfigured]) {
      if ((await this.configureReturningHop(nf)) !== undefined) continue;
      this.hopHealth.record(nf, true, 'SERVING (hop config applied again)');
      this.options.logger?.info('hop healthy', { nf, message: 'hop config applied again' });
      for (const state of this.chains.values())
        if (state.spec.hops.some((h) => h.nf === nf)) {
          refreshPhase(state, this.healthOf, this.now);
          this.emit('MODIFIED', state);
        }
    }
  }

  private message(state: ChainState): chainV1.Chain {
    return chainMessage(state, this.healthOf);
  }

  private emit(type: ChainEventType, state: ChainState): void {
    const chain = this.message(state);
    for (const l of this.listeners) l(type, chain);
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    return this.queue.run(fn);
  }
}
