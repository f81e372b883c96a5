/**
 * The gateway's data path on @flowline/dpdk: one pipeline on one worker for both directions.
 * The protected port's packets meet the outbound ESP stage (policies: protect with an SA,
 * bypass, discard), the unprotected port's the inbound one (ESP decrypted by SPI and checked
 * against the SA's protect policy; clear packets only by a bypass policy); l2fwd sends each to
 * the other port. Each stage takes only its own port's packets. This is the store's
 * `IpsecDataplane`: SAs go to the stage of their direction, policies are replaced whole per
 * direction (RCU: traffic meets the old set or the new one), counters survive policy swaps.
 */
import { type EspSa, type EspSaCounters, Pipeline, PipelineError, type Port } from '@flowline/dpdk';
import type { PipelineRx } from '@flowline/nf-runtime';
import { formatAddress } from '@flowline/packet';
import { IpsecConfigError } from './errors';
import type { PolicySpec } from './policy';
import type { Direction, SaSpec } from './sa';
import type { IpsecDataplane, SaDataCounters } from './store';

export interface GatewayPipelineOptions {
  /** The protected (inner) port: its packets are encrypted or bypass by the outbound policies. */
  protectedPort: Port;
  /** The unprotected (outer) port: ESP is decrypted, clear packets meet the inbound policies. */
  unprotectedPort: Port;
  /** EAL worker lcore of the one worker (rte_ipsec's sequence state has one writer). */
  lcore: number;
  /** The worker's tx queue on both ports (default 0). */
  txQueue?: number;
  burst?: number;
  /** The pod's rx plan (nf-runtime `dp.rx.pipeline`). */
  rx?: PipelineRx;
  /** Idle back-off when there is no rx plan (tests). */
  backoff?: { spinPolls?: number; sleepMinUs?: number; sleepMaxUs?: number };
}

const STAGE: Record<Direction, string> = { outbound: 'esp-out', inbound: 'esp-in' };

/** The API's field for a native SA field (a data-path refusal names the request's field). */
const SA_FIELDS: Record<string, string> = {
  spi: 'spi',
  algorithm: 'algorithm',
  key: 'encryption_key',
  authKey: 'integrity_key',
  innerFamily: 'inner_ip_version',
  'tunnel.src': 'tunnel_src',
  'tunnel.dst': 'tunnel_dst',
  replayWindow: 'replay_window',
  'lifetime.softPackets': 'lifetime.soft_packets',
  'lifetime.hardPackets': 'lifetime.hard_packets',
  'lifetime.softBytes': 'lifetime.soft_bytes',
  'lifetime.hardBytes': 'lifetime.hard_bytes',
};

/** A data-path refusal of an SA as the API's field error (INVALID_ARGUMENT), when it names one. */
export function saFieldError(err: PipelineError): IpsecConfigError | undefined {
  const native = /\.sas\[\d+\]\.(?<f>[\w.]+)$/.exec(err.path)?.groups?.f;
  const field = native !== undefined ? SA_FIELDS[native] : undefined;
  return field === undefined
    ? undefined
    : new IpsecConfigError(`sa.${field}`, err.message.slice(err.path.length + 2));
}

/** A lifetime count the data path takes (a safe integer; 0: none), or the field's error. */
function count(v: bigint, field: string): number | undefined {
  if (v === 0n) return undefined;
  if (v > BigInt(Number.MAX_SAFE_INTEGER))
    throw new IpsecConfigError(
      field,
      `at most ${Number.MAX_SAFE_INTEGER} in this gateway, got ${v}`,
    );
  return Number(v);
}

/** The data path's form of a validated SA (the key Buffers themselves: the store wipes them). */
export function espSaOf(sa: SaSpec, at = 'sa'): EspSa {
  const l = sa.lifetime;
  const lifetime = {
    softPackets: count(l.softPackets, `${at}.lifetime.soft_packets`),
    hardPackets: count(l.hardPackets, `${at}.lifetime.hard_packets`),
    softBytes: count(l.softBytes, `${at}.lifetime.soft_bytes`),
    hardBytes: count(l.hardBytes, `${at}.lifetime.hard_bytes`),
  };
  return {
    spi: sa.spi,
    algorithm: sa.algorithm,
    key: sa.key,
    ...(sa.integrityKey ? { authKey: sa.integrityKey } : {}),
    innerFamily: sa.innerFamily,
    tunnel: {
      src: formatAddress(sa.tunnelSrc.bytes, sa.tunnelSrc.family),
      dst: formatAddress(sa.tunnelDst.bytes, sa.tunnelDst.family),
    },
    esn: sa.esn,
    replayWindow: sa.replayWindow,
    lifetime: Object.fromEntries(Object.entries(lifetime).filter(([, v]) => v !== undefined)),
  };
}

function saCountersOf(c: EspSaCounters): SaDataCounters {
  return {
    packets: BigInt(c.packets),
    bytes: BigInt(c.bytes),
    authFailures: BigInt(c.authFailures),
    replays: BigInt(c.replays),
    lifetimeDrops: BigInt(c.lifetimeDrops),
    trailerErrors: BigInt(c.trailerErrors),
    errors: BigInt(c.errors),
    sequence: c.seq,
    softExpired: c.softExpired,
    hardExpired: c.hardExpired,
    cryptoDevice: c.device,
    cpuCrypto: c.cpuCrypto,
  };
}

export class GatewayPipeline implements IpsecDataplane {
  readonly pipeline: Pipeline;
  /** Packets of retired policy sets, by direction and policy id. */
  private readonly retired: Record<Direction, Map<string, bigint>> = {
    inbound: new Map(),
    outbound: new Map(),
  };

  constructor(o: GatewayPipelineOptions) {
    const inner = o.protectedPort;
    const outer = o.unprotectedPort;
    this.pipeline = Pipeline.create({
      layout: [
        {
          lcore: o.lcore,
          txQueue: o.txQueue ?? 0,
          inputs: [
            { port: inner, queue: 0 },
            { port: outer, queue: 0 },
          ],
        },
      ],
      stages: [
        {
          kind: 'esp',
          name: STAGE.outbound,
          direction: 'outbound',
          inputs: [inner],
          policies: true,
        },
        { kind: 'esp', name: STAGE.inbound, direction: 'inbound', inputs: [outer], policies: true },
        {
          kind: 'l2fwd',
          name: 'forward',
          forward: [
            { from: inner, to: outer },
            { from: outer, to: inner },
          ],
        },
      ],
      burst: o.burst ?? 32,
      ...(o.rx ?? (o.backoff ? { backoff: o.backoff } : {})),
    });
    try {
      // No policy yet: everything from the protected side and every clear packet from the
      // other is discarded (and counted as matching no policy).
      this.pipeline.setEspPolicies(STAGE.outbound, []);
      this.pipeline.setEspPolicies(STAGE.inbound, []);
    } catch (err) {
      this.pipeline.close();
      throw err;
    }
  }

  start(): void {
    this.pipeline.start();
  }

  /** IpsecDataplane: a refusal of the data path names the request's field where it can. */
  addSa(sa: SaSpec): void {
    const esp = espSaOf(sa);
    try {
      this.pipeline.addSa(STAGE[sa.direction], esp);
    } catch (err) {
      throw (err instanceof PipelineError && saFieldError(err)) || err;
    }
  }

  /** IpsecDataplane: the SA's final counters, as the data path returns them on deletion. */
  deleteSa(direction: Direction, spi: number): SaDataCounters {
    return saCountersOf(this.pipeline.deleteSa(STAGE[direction], spi));
  }

  applyPolicies(direction: Direction, policies: readonly PolicySpec[]): void {
    const { retired } = this.pipeline.setEspPolicies(
      STAGE[direction],
      policies.map((p) => ({
        id: p.id,
        action: p.action,
        ...(p.action === 'protect' ? { spi: p.saSpi } : {}),
        match: p.match,
      })),
    );
    const kept = this.retired[direction];
    for (const r of retired.policies) kept.set(r.id, (kept.get(r.id) ?? 0n) + BigInt(r.packets));
  }

  saCounters(direction: Direction, spi: number): SaDataCounters | undefined {
    if (!this.pipeline.sas(STAGE[direction]).includes(spi)) return undefined;
    return saCountersOf(this.pipeline.saCounters(STAGE[direction], spi));
  }

  policyPackets(direction: Direction): ReadonlyMap<string, bigint> {
    const kept = this.retired[direction];
    const out = new Map(kept);
    for (const p of this.pipeline.espPolicyHits(STAGE[direction]).policies)
      out.set(p.id, (kept.get(p.id) ?? 0n) + BigInt(p.packets));
    return out;
  }

  stop(): void {
    this.pipeline.stop();
  }

  close(): void {
    this.pipeline.close();
  }
}
