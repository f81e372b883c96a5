/**
 * The firewall's dataplane on @flowline/dpdk: in ports -> [conntrack] -> ACL -> out port, one
 * worker lcore, run in C. TypeScript swaps the ACL table (built aside, RCU-published, so no
 * packet is lost in a swap), keeps rule counters across swaps, and reads counters.
 */
import {
  type AclRule as DpdkAclRule,
  type ConntrackTimeouts,
  Pipeline,
  type Port,
  type RuleHits,
} from '@flowline/dpdk';
import type { PipelineRx } from '@flowline/nf-runtime';
import type { AclTable } from './rule-store';
import type { AclRule, AclRuleSet, RuleAction } from './rules';
import type { FirewallCounterSource } from './service';

export interface FirewallPipelineOptions {
  /** The ports, in order: two-armed forwards ports[0] <-> ports[1]; one-armed needs one port. */
  ports: { name: string; port: Port }[];
  topology: 'two-armed' | 'one-armed';
  stateful: boolean;
  conntrack?: {
    capacity: number;
    whenFull: 'evict' | 'drop';
    timeouts: ConntrackTimeouts;
    flushOnRuleChange?: boolean;
  };
  /** EAL worker lcore for the one worker. */
  lcore: number;
  /** The worker's tx queue on every port (default 0). */
  txQueue?: number;
  burst?: number;
  /** Idle back-off of the worker (default: the pipeline's). */
  backoff?: { spinPolls?: number; sleepMinUs?: number; sleepMaxUs?: number };
  /** The pod's rx plan for the pipeline (nf-runtime `dp.rx.pipeline`); wins over backoff. */
  rx?: PipelineRx;
}

export class TopologyError extends Error {
  constructor(
    readonly field: string,
    reason: string,
  ) {
    super(`${field}: ${reason}`);
    this.name = 'TopologyError';
  }
}

/** A validated firewall rule in the dpdk ACL's form: its parsed match as it is. */
export function toDpdkRule(rule: AclRule): DpdkAclRule {
  const { families, src, dst, protocol, srcPorts, dstPorts } = rule;
  return {
    id: rule.id,
    action: rule.action,
    priority: rule.priority + 1, // priority 1 is the default action's (see MAX_PRIORITY)
    match: {
      families,
      ...(src ? { src } : {}),
      ...(dst ? { dst } : {}),
      ...(protocol !== undefined ? { protocol } : {}),
      ...(srcPorts ? { srcPorts } : {}),
      ...(dstPorts ? { dstPorts } : {}),
    },
  };
}

/**
 * Hits of the table's rules, without the ACL stage's own catch-all: @flowline/dpdk reports it
 * last, as "default", an id a rule may have too, so it is told apart by where it is.
 */
const ruleHits = (hits: readonly RuleHits[]): readonly RuleHits[] => hits.slice(0, -1);

const sumValues = (r: Record<string, number>): number =>
  Object.values(r).reduce((a, b) => a + b, 0);

export class FirewallPipeline implements AclTable, FirewallCounterSource {
  readonly pipeline: Pipeline;
  private defaultAction: RuleAction = 'deny';
  /**
   * Hits of retired tables, by rule id, so counters survive rule changes; only of rules in the
   * current table (a deleted rule's count goes with it), so fresh ids cannot grow it.
   */
  private retired = new Map<string, bigint>();
  private retiredDefault = { permit: 0n, deny: 0n };

  constructor(private readonly o: FirewallPipelineOptions) {
    const [a, b] = o.ports;
    if (!a) throw new TopologyError('ports', 'the firewall needs at least one port');
    if (o.topology === 'two-armed' && (o.ports.length !== 2 || !b))
      throw new TopologyError(
        'topology',
        `two-armed needs exactly 2 ports, the pod has ${o.ports.length}`,
      );
    if (o.topology === 'one-armed' && o.ports.length !== 1)
      throw new TopologyError(
        'topology',
        `one-armed needs exactly 1 port, the pod has ${o.ports.length}`,
      );
    const forward =
      o.topology === 'two-armed' && b
        ? [
            { from: a.port, to: b.port },
            { from: b.port, to: a.port },
          ]
        : [{ from: a.port, to: a.port }];
    this.pipeline = Pipeline.create({
      layout: [
        {
          lcore: o.lcore,
          txQueue: o.txQueue ?? 0,
          inputs: o.ports.map((p) => ({ port: p.port, queue: 0 })),
        },
      ],
      stages: [
        ...(o.stateful
          ? [
              {
                kind: 'conntrack' as const,
                name: 'conntrack',
                ...(o.conntrack
                  ? {
                      capacity: o.conntrack.capacity,
                      whenFull: o.conntrack.whenFull,
                      timeouts: o.conntrack.timeouts,
                    }
                  : {}),
              },
            ]
          : []),
        { kind: 'acl', name: 'acl', defaultAction: 'deny', nonIp: 'pass', fragments: 'drop' },
        { kind: 'l2fwd', name: 'forward', forward },
      ],
      burst: o.burst ?? 32,
      ...(o.rx ?? (o.backoff ? { backoff: o.backoff } : {})),
    });
  }

  get topology(): FirewallPipelineOptions['topology'] {
    return this.o.topology;
  }

  start(): void {
    this.pipeline.start();
  }

  /** AclTable: builds the new table aside and swaps it in; throws and changes nothing on error. */
  async apply(ruleSet: AclRuleSet): Promise<void> {
    const rules = ruleSet.rules.map(toDpdkRule);
    // The default action is a rule of lowest priority that matches everything, so it swaps
    // atomically with the rest of the table.
    const all: DpdkAclRule[] = [
      ...rules,
      { id: '__default', action: ruleSet.defaultAction, priority: 1 },
    ];
    // Built off the event loop (gRPC keeps answering), swapped in when ready.
    const { retired } = await this.pipeline.updateAcl('acl', all);
    if (this.o.stateful && this.o.conntrack?.flushOnRuleChange)
      this.pipeline.flushConntrack('conntrack');
    const before = this.defaultAction;
    const live = new Set(ruleSet.rules.map((r) => r.id));
    const kept = new Map<string, bigint>();
    for (const r of ruleHits(retired)) {
      if (r.id === '__default') this.retiredDefault[before] += BigInt(r.hits);
      else if (live.has(r.id)) kept.set(r.id, (this.retired.get(r.id) ?? 0n) + BigInt(r.hits));
    }
    this.retired = kept;
    this.defaultAction = ruleSet.defaultAction;
  }

  /** FirewallCounterSource. */
  counters(): ReturnType<FirewallCounterSource['counters']> {
    const hits = this.pipeline.aclHits('acl');
    const rules: { id: string; packets: bigint }[] = [];
    const defaults = { ...this.retiredDefault };
    for (const h of ruleHits(hits)) {
      if (h.id === '__default') defaults[this.defaultAction] += BigInt(h.hits);
      else rules.push({ id: h.id, packets: (this.retired.get(h.id) ?? 0n) + BigInt(h.hits) });
    }
    const c = this.pipeline.counters();
    const dropped: Record<string, bigint> = {};
    const add = (r: Record<string, number>): void => {
      for (const [k, v] of Object.entries(r)) dropped[k] = (dropped[k] ?? 0n) + BigInt(v);
    };
    add(c.drops);
    for (const s of c.stages) add(s.drops);
    delete dropped.acl_deny; // counted per rule and as default_denied
    const ct = this.o.stateful ? this.pipeline.conntrack('conntrack') : undefined;
    return {
      rules,
      defaultPermitted: defaults.permit,
      defaultDenied: defaults.deny,
      droppedByReason: dropped,
      ...(ct
        ? {
            conntrack: {
              entries: BigInt(ct.entries),
              capacity: BigInt(ct.capacity),
              created: BigInt(ct.created),
              expired: BigInt(ct.expired),
              evicted: BigInt(ct.evicted),
              returnPermitted: BigInt(ct.replyHits),
              tableFullDrops: BigInt(ct.tableFull),
              denialsCached: BigInt(ct.denied),
              deniedByCache: BigInt(ct.deniedHits),
            },
          }
        : {}),
    };
  }

  /** Raw conntrack counters (hits in both directions included); undefined when stateless. */
  conntrack(): ReturnType<Pipeline['conntrack']> | undefined {
    return this.o.stateful ? this.pipeline.conntrack('conntrack') : undefined;
  }

  /** Every packet received has been sent, dropped or punted (nothing in flight in the worker). */
  idle(): boolean {
    const c = this.pipeline.counters();
    const fates =
      c.tx +
      sumValues(c.drops) +
      sumValues(c.punts) +
      c.stages.reduce((a, s) => a + sumValues(s.drops), 0);
    return fates >= c.rx;
  }

  stop(): void {
    this.pipeline.stop();
  }

  close(): void {
    this.pipeline.close();
  }
}
