import { isDeepStrictEqual } from 'node:util';
import type { chainV1 } from '@flowline/proto';
import type { Logger } from '@flowline/telemetry';
import type { ChainController } from '../controller';
import {
  ChainKeyConflictError,
  ChainNotFoundError,
  InvalidChainError,
  LimitExceededError,
  UnresolvedPortError,
} from '../errors';
import { type ServiceChainApi, httpStatusOf } from './client';
import { type BackoffOptions, ListWatcher } from './list-watch';
import { type PodDirectory, type PodInfo, type PodLike, podInfo } from './pod-directory';
import {
  FINALIZER,
  type ServiceChain,
  type ServiceChainCondition,
  type ServiceChainPhase,
  type ServiceChainStatus,
  chainNameFor,
  crField,
  toChainSpec,
} from './servicechain';

export interface ReconcilerOptions {
  api: ServiceChainApi;
  controller: ChainController;
  directory: PodDirectory;
  /** The one namespace watched; unset or "" for all. */
  namespace?: string;
  logger?: Logger;
  /** Reconnect backoff of both watches. */
  backoff?: BackoffOptions;
  /** Delay before a chain that could not be programmed (pods not wired yet, switch down) is retried. */
  retryMs?: number;
  now?: () => Date;
}

interface Outcome {
  phase: ServiceChainPhase;
  ready: { status: 'True' | 'False'; reason: string; message: string };
  degraded: { status: 'True' | 'False'; reason: string; message: string };
}

/** The owner a ServiceChain's chain carries in the controller (and its store). */
const OWNER = 'ServiceChain/';
const ownerOf = (key: string): string => `${OWNER}${key}`;

const keyOf = (o: { metadata?: { namespace?: string; name?: string } }): string =>
  `${o.metadata?.namespace ?? 'default'}/${o.metadata?.name ?? ''}`;

/** "spec.hops[0].egress_interface: ..." from the controller → the CR's field name. */
const crMessage = (err: { field: string; reason: string }): string =>
  `${crField(err.field)}: ${err.reason}`;

/**
 * Reconciles ServiceChain resources into the ChainController: a finalizer before anything is
 * programmed, create/update when the spec changes, status (observedGeneration, phase, Ready
 * and Degraded conditions, per-hop health) through the status subresource, and on deletion the
 * chain is removed from the switch before the finalizer. Keys are handled one at a time;
 * failures are retried after `retryMs`; hop health changes refresh the status.
 */
export class ServiceChainReconciler {
  private readonly cache = new Map<string, ServiceChain>();
  private readonly pending = new Set<string>();
  private readonly retries = new Map<string, NodeJS.Timeout>();
  /** Last gRPC address seen per pod ("<ns>/<name>"), kept across its deletion. */
  private readonly addresses = new Map<string, string>();
  private readonly chains: ListWatcher<ServiceChain>;
  private readonly pods: ListWatcher<PodLike>;
  private running: Promise<void> | undefined;
  private ready = false;
  private stopped = false;
  private unwatch: (() => void) | undefined;
  private readonly retryMs: number;
  private readonly now: () => Date;
  /** Set once all pending work is done; tests and shutdown wait on it. */
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly options: ReconcilerOptions) {
    this.retryMs = options.retryMs ?? 2000;
    this.now = options.now ?? (() => new Date());
    const log = options.logger;
    this.chains = new ListWatcher(
      options.api.chains,
      {
        onList: (items) => {
          const before = new Set(this.cache.keys());
          this.cache.clear();
          for (const item of items) this.cache.set(keyOf(item), item);
          // Chains of resources deleted while the controller was down (finalizer stripped).
          for (const owner of options.controller.owners().values()) {
            const key = owner.startsWith(OWNER) ? owner.slice(OWNER.length) : undefined;
            if (key && this.inScope(key)) before.add(key);
          }
          // Changed, new and vanished (deleted while the watch was down) all get a look.
          for (const key of new Set([...before, ...this.cache.keys()])) this.enqueue(key);
        },
        onEvent: (type, obj) => {
          const key = keyOf(obj);
          if (type === 'DELETED') this.cache.delete(key);
          else this.cache.set(key, obj);
          this.enqueue(key);
        },
      },
      options.backoff,
      log?.child({ part: 'servicechains' }),
    );
    this.pods = new ListWatcher(
      options.api.pods,
      {
        onList: (items) => {
          options.directory.replace(items);
          for (const p of items) this.noteAddress(podInfo(p));
          for (const key of this.cache.keys()) this.enqueue(key);
        },
        onEvent: (type, pod) => {
          const info =
            type === 'DELETED' ? options.directory.remove(pod) : options.directory.upsert(pod);
          if (type !== 'DELETED') this.noteAddress(info);
          for (const [key, chain] of this.cache)
            if (this.usesPod(key, chain, info.key)) this.enqueue(key);
        },
      },
      options.backoff,
      log?.child({ part: 'pods' }),
    );
  }

  /** Starts both watches; resolves when both have listed once (reconciling has begun). */
  async start(): Promise<void> {
    this.unwatch = this.options.controller.watch((_type, chain) => {
      // Hop health changed (or a gRPC call touched one of ours): refresh that CR's status.
      const owned = this.ownedNames();
      for (const key of this.cache.keys())
        if (this.chainNameOf(key, owned) === chain.name) this.enqueue(key);
    });
    this.pods.start();
    this.chains.start();
    // Chains are resolved against pods: start once the pods are known.
    await Promise.all([this.pods.synced, this.chains.synced]);
    this.ready = true;
    this.kick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unwatch?.();
    for (const t of this.retries.values()) clearTimeout(t);
    this.retries.clear();
    await Promise.all([this.chains.stop(), this.pods.stop()]);
    await this.running;
  }

  /** Resolves when no key is queued or being reconciled (retries may still be scheduled). */
  idle(): Promise<void> {
    if (!this.running && this.pending.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** How many times each watch listed (the first list, then one per 410 Gone). */
  get lists(): { chains: number; pods: number } {
    return { chains: this.chains.lists, pods: this.pods.lists };
  }

  /** A pod back at another gRPC address (recreated): its health is watched there instead. */
  private noteAddress(info: PodInfo): void {
    const address = `${info.ip ?? ''}:${info.grpcPort ?? ''}`;
    const before = this.addresses.get(info.key);
    this.addresses.set(info.key, address);
    if (before !== undefined && before !== address)
      this.options.controller.restartHealthWatch(info.key);
  }

  private inScope(key: string): boolean {
    const ns = this.options.namespace;
    return !ns || key.startsWith(`${ns}/`);
  }

  private usesPod(key: string, chain: ServiceChain, pod: string): boolean {
    const [namespace] = split(key);
    const s = chain.spec;
    const names = [s?.classifier?.ingress?.nf, s?.egress?.nf, ...(s?.hops ?? []).map((h) => h.nf)];
    return names.some((n) => n !== undefined && `${namespace}/${n}` === pod);
  }

  private enqueue(key: string): void {
    if (this.stopped) return;
    const retry = this.retries.get(key);
    if (retry) {
      clearTimeout(retry);
      this.retries.delete(key);
    }
    this.pending.add(key);
    this.kick();
  }

  private retryLater(key: string): void {
    if (this.stopped || this.retries.has(key)) return;
    this.retries.set(
      key,
      setTimeout(() => {
        this.retries.delete(key);
        this.enqueue(key);
      }, this.retryMs),
    );
  }

  private kick(): void {
    if (!this.ready || this.running || this.stopped) return;
    this.running = this.drain().finally(() => {
      this.running = undefined;
      if (this.pending.size > 0 && !this.stopped) this.kick();
      else for (const w of this.idleWaiters.splice(0)) w();
    });
  }

  private async drain(): Promise<void> {
    while (!this.stopped) {
      const key = this.pending.values().next().value;
      if (key === undefined) return;
      this.pending.delete(key);
      try {
        await this.reconcile(key);
      } catch (err) {
        this.options.logger?.warn('reconcile failed; retrying', { chain: key, err });
        this.retryLater(key);
      }
    }
  }

  /** Owner → chain name of the chains made for ServiceChains. */
  private ownedNames(): Map<string, string> {
    const out = new Map<string, string>();
    for (const [chain, owner] of this.options.controller.owners()) out.set(owner, chain);
    return out;
  }

  /**
   * The chain name of a ServiceChain: the chain made for it, under whatever name it was made
   * (one made before chain names had 64-bit hashes keeps its name, and its traffic its path),
   * else chainNameFor's.
   */
  private chainNameOf(key: string, owned = this.ownedNames()): string {
    return owned.get(ownerOf(key)) ?? chainNameFor(...split(key));
  }

  /** Whether the controller's chain of that name was made for this ServiceChain. */
  private ownedBy(chainName: string, key: string): boolean {
    return this.options.controller.owners().get(chainName) === ownerOf(key);
  }

  private hasChain(name: string): boolean {
    try {
      this.options.controller.get(name);
      return true;
    } catch (err) {
      if (err instanceof ChainNotFoundError) return false;
      throw err;
    }
  }

  private async deleteChain(name: string): Promise<void> {
    if (!this.hasChain(name)) return;
    await this.options.controller.delete(name);
    this.options.logger?.info('chain deleted', { chain: name });
  }

  /** Keeps the cache on the newest object: a write's reply unless the watch already has newer. */
  private remember(key: string, before: ServiceChain, after: ServiceChain): ServiceChain {
    const cached = this.cache.get(key);
    if (cached?.metadata.resourceVersion === before.metadata.resourceVersion) {
      this.cache.set(key, after);
      return after;
    }
    return cached ?? after;
  }

  private async reconcile(key: string): Promise<void> {
    const [namespace, name] = split(key);
    const chainName = this.chainNameOf(key);
    let obj = this.cache.get(key);
    if (!obj) {
      // Gone from the API (its finalizer removed by someone else, or seen only by a re-list).
      // Only its own chain: one made through the API, or for another resource whose name maps
      // to the same chain name, stays.
      if (this.ownedBy(chainName, key)) await this.deleteChain(chainName);
      return;
    }
    const { api, controller } = this.options;
    const finalizers = obj.metadata.finalizers ?? [];
    if (obj.metadata.deletionTimestamp) {
      // Off the switch even when our finalizer is already gone (others may hold the object).
      if (this.ownedBy(chainName, key)) await this.deleteChain(chainName);
      const at = finalizers.indexOf(FINALIZER);
      if (at < 0) return;
      try {
        const after = await api.jsonPatch(namespace, name, [
          { op: 'test', path: `/metadata/finalizers/${at}`, value: FINALIZER },
          { op: 'remove', path: `/metadata/finalizers/${at}` },
        ]);
        this.remember(key, obj, after);
      } catch (err) {
        if (httpStatusOf(err) !== 404) throw err;
      }
      return;
    }
    if (!finalizers.includes(FINALIZER)) {
      // Before anything is programmed: a deletion must wait until the chain is off the switch.
      // An update, so a concurrent change (409) is read again rather than overwritten.
      try {
        const after = await api.replace(namespace, name, {
          ...obj,
          metadata: { ...obj.metadata, finalizers: [...finalizers, FINALIZER] },
        });
        obj = this.remember(key, obj, after);
      } catch (err) {
        if (httpStatusOf(err) === 404) return;
        if (httpStatusOf(err) !== 409) throw err;
        const latest = await api.get(namespace, name);
        this.remember(key, obj, latest);
        this.enqueue(key);
        return;
      }
    }
    let spec: chainV1.ChainSpec;
    try {
      spec = toChainSpec(namespace, obj.spec);
    } catch (err) {
      if (!(err instanceof InvalidChainError)) throw err;
      const message = hasChainNote(this.hasChain(chainName), err.message);
      await this.writeStatus(key, obj, {
        phase: 'Failed',
        ready: { status: 'False', reason: 'InvalidSpec', message },
        degraded: { status: 'False', reason: 'InvalidSpec', message: 'not programmed' },
      });
      return;
    }
    if (this.hasChain(chainName) && !this.ownedBy(chainName, key)) {
      // Another resource's chain, or one made through the API, under this resource's chain name
      // (a long namespace and name cut to fit share it): never changed from here.
      // The status does not say whose: it is readable in this namespace, the holder may be another's.
      const message = `chain "${chainName}" belongs to another ServiceChain or was made through the ChainService API; rename this ServiceChain`;
      if (!hasReason(obj, 'NameConflict'))
        this.options.logger?.warn('ServiceChain maps to a chain it does not own; not programmed', {
          chain: chainName,
          resource: key,
          owner: controller.owners().get(chainName) ?? 'ChainService API',
        });
      await this.writeStatus(key, obj, {
        phase: 'Failed',
        ready: { status: 'False', reason: 'NameConflict', message },
        degraded: { status: 'False', reason: 'NameConflict', message: 'not programmed' },
      });
      this.retryLater(key);
      return;
    }
    let failure: Outcome | undefined;
    try {
      if (!this.hasChain(chainName)) await controller.create(chainName, spec, ownerOf(key));
      else if (
        !isDeepStrictEqual(controller.get(chainName).spec, spec) ||
        // Same spec, but a pod came back with new OVS ports (or was never resolved).
        !(await controller.isCurrent(chainName))
      )
        await controller.update(chainName, spec);
    } catch (err) {
      if (err instanceof ChainKeyConflictError) {
        // Retried: the key is free again once the other chain is deleted. The status does not
        // name the other chain (another namespace's, maybe); the log does.
        if (!hasReason(obj, 'NameConflict'))
          this.options.logger?.warn('ServiceChain not programmed', { resource: key, err });
        const message = `chain "${chainName}" would share its flow key with another chain; rename this ServiceChain`;
        failure = {
          phase: 'Failed',
          ready: { status: 'False', reason: 'NameConflict', message },
          degraded: { status: 'False', reason: 'NameConflict', message: 'not programmed' },
        };
        this.retryLater(key);
      } else if (err instanceof InvalidChainError) {
        failure = {
          phase: 'Failed',
          ready: { status: 'False', reason: 'InvalidSpec', message: crMessage(err) },
          degraded: { status: 'False', reason: 'InvalidSpec', message: 'not programmed' },
        };
      } else if (err instanceof LimitExceededError) {
        // The controller is full: retried, so the chain goes on once another is deleted.
        failure = {
          phase: 'Failed',
          ready: { status: 'False', reason: 'LimitExceeded', message: err.message },
          degraded: { status: 'False', reason: 'LimitExceeded', message: 'not programmed' },
        };
        this.retryLater(key);
      } else if (err instanceof UnresolvedPortError) {
        const message = hasChainNote(this.hasChain(chainName), crMessage(err));
        failure = {
          phase: 'Pending',
          ready: { status: 'False', reason: 'PortsUnresolved', message },
          degraded: { status: 'False', reason: 'PortsUnresolved', message: 'not programmed' },
        };
        this.retryLater(key);
      } else {
        failure = {
          phase: 'Failed',
          ready: { status: 'False', reason: 'ProgrammingFailed', message: (err as Error).message },
          degraded: { status: 'False', reason: 'ProgrammingFailed', message: 'not programmed' },
        };
        this.retryLater(key);
      }
    }
    await this.writeStatus(key, obj, failure ?? this.outcomeOf(chainName), chainName);
  }

  private outcomeOf(chainName: string): Outcome {
    const status = this.options.controller.get(chainName).status;
    const message = status?.message ?? '';
    switch (status?.phase) {
      case 'ACTIVE':
        return {
          phase: 'Active',
          ready: { status: 'True', reason: 'Programmed', message },
          degraded: { status: 'False', reason: 'AllHopsHealthy', message },
        };
      case 'DEGRADED':
        return {
          phase: 'Degraded',
          ready: { status: 'False', reason: 'HopDown', message },
          degraded: { status: 'True', reason: 'HopDown', message },
        };
      case 'FAILED':
        return {
          phase: 'Failed',
          ready: { status: 'False', reason: 'PortsUnresolved', message: crMessageText(message) },
          degraded: { status: 'False', reason: 'PortsUnresolved', message: 'not programmed' },
        };
      default:
        return {
          phase: 'Pending',
          ready: { status: 'False', reason: 'Pending', message },
          degraded: { status: 'False', reason: 'Pending', message },
        };
    }
  }

  private async writeStatus(
    key: string,
    obj: ServiceChain,
    outcome: Outcome,
    chainName?: string,
  ): Promise<void> {
    const [namespace, name] = split(key);
    const generation = obj.metadata.generation ?? 0;
    const old = obj.status ?? {};
    const condition = (
      type: string,
      c: Outcome['ready'] | Outcome['degraded'],
    ): ServiceChainCondition => {
      const before = old.conditions?.find((x) => x.type === type);
      return {
        type,
        status: c.status,
        observedGeneration: generation,
        // Kept while the status holds: it marks when it last changed.
        lastTransitionTime:
          before?.status === c.status ? before.lastTransitionTime : this.now().toISOString(),
        reason: c.reason,
        message: c.message,
      };
    };
    const chain =
      chainName && this.hasChain(chainName) ? this.options.controller.get(chainName) : undefined;
    const status: ServiceChainStatus = {
      observedGeneration: generation,
      phase: outcome.phase,
      hopCount: Array.isArray(obj.spec?.hops) ? obj.spec.hops.length : 0,
      hops: this.hopStatus(namespace, obj, chain),
      conditions: [condition('Ready', outcome.ready), condition('Degraded', outcome.degraded)],
    };
    if (isDeepStrictEqual(stripUndefined(old), stripUndefined(status))) return;
    try {
      const after = await this.options.api.patchStatus(namespace, name, { status });
      this.remember(key, obj, after);
    } catch (err) {
      if (httpStatusOf(err) !== 404) throw err;
    }
  }

  private hopStatus(
    namespace: string,
    obj: ServiceChain,
    chain: chainV1.Chain | undefined,
  ): NonNullable<ServiceChainStatus['hops']> {
    const bypass = obj.spec?.failurePolicy === 'bypass';
    const hops = Array.isArray(obj.spec?.hops) ? obj.spec.hops : [];
    return hops.map((h, i) => {
      const nf = typeof h?.nf === 'string' ? h.nf : '';
      const node = this.options.directory.pod(`${namespace}/${nf}`)?.node;
      // Only a programmed chain whose hops are this spec's reports health and ports.
      const live = chain?.status?.hops?.[i];
      const programmed = live && live.nf === `${namespace}/${nf}` ? live : undefined;
      return {
        nf,
        ...(node ? { node } : {}),
        ...(programmed
          ? {
              healthy: programmed.healthy ?? true,
              bypassed: bypass && programmed.healthy === false,
              ...(programmed.ingressOvsPort ? { ingressPort: programmed.ingressOvsPort } : {}),
              ...(programmed.egressOvsPort ? { egressPort: programmed.egressOvsPort } : {}),
              ...(programmed.message ? { message: programmed.message } : {}),
            }
          : {}),
      };
    });
  }
}

function split(key: string): [string, string] {
  const slash = key.indexOf('/');
  return [key.slice(0, slash), key.slice(slash + 1)];
}

function hasChainNote(programmed: boolean, message: string): string {
  return programmed ? `${message} (the previous spec stays programmed)` : message;
}

/** A controller message that starts with a chain.v1 field ("spec.egress_port: ...") → the CR's. */
function crMessageText(message: string): string {
  const m = /^(spec\.[\w.[\]]+): (.*)$/s.exec(message);
  return m?.[1] ? `${crField(m[1])}: ${m[2]}` : message;
}

function stripUndefined<T>(v: T): T {
  return JSON.parse(JSON.stringify(v ?? {})) as T;
}

/** Whether the resource's Ready condition already gives that reason (a repeat is not logged). */
function hasReason(obj: ServiceChain, reason: string): boolean {
  return obj.status?.conditions?.some((c) => c.type === 'Ready' && c.reason === reason) ?? false;
}
