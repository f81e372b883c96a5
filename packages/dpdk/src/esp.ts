/**
 * The ESP stage (native/fl_stage_esp.c, native/fl_ipsec.c): IPsec ESP in tunnel mode (RFC 4303)
 * on DPDK's rte_ipsec and rte_cryptodev. An `outbound` stage encrypts every IP packet in the
 * newest SA of its family and puts it in that SA's outer header; an `inbound` stage decrypts
 * ESP packets by SPI and outer destination. SAs are added and deleted while the pipeline runs
 * (the stage's SA table is rebuilt and swapped under RCU); a refused SA changes nothing and its
 * PipelineError names the field. Keys are Buffers; the addon wipes its copies once the crypto
 * session holds them. The crypto devices come from the EAL's vdevs (ESP_VDEVS).
 *
 * A gateway runs one pipeline for both directions: an outbound stage taking only its protected
 * port's packets (`inputs`) and an inbound stage taking only its unprotected port's, both with
 * `policies: true` (an SPD, RFC 4301): outbound, the first policy matching a packet protects it
 * with its SA, lets it bypass or discards it; inbound, clear packets pass only by a bypass
 * policy and a decrypted packet must match a protect policy of its SA.
 */
import type { Match } from '@flowline/packet';
import { parseAddress } from '@flowline/packet';

import { compileAcl, packAcl } from './acl';
import { PipelineError, nativeError } from './errors';
import { native } from './native';
import type { Port } from './port';

export type EspAlgorithm =
  'aes-gcm-128' | 'aes-gcm-256' | 'aes-cbc-128-hmac-sha256' | 'aes-cbc-256-hmac-sha256';

/** Native algorithm codes (enum fl_esp_alg) and key lengths in bytes (GCM: key + 4-byte salt). */
export const ESP_ALGORITHMS: Record<EspAlgorithm, { code: number; key: number; authKey: number }> =
  {
    'aes-gcm-128': { code: 1, key: 20, authKey: 0 },
    'aes-gcm-256': { code: 2, key: 36, authKey: 0 },
    'aes-cbc-128-hmac-sha256': { code: 3, key: 16, authKey: 32 },
    'aes-cbc-256-hmac-sha256': { code: 4, key: 32, authKey: 32 },
  };

/**
 * Software crypto devices for EalOptions.vdevs: AES-GCM on crypto_aesni_gcm and AES-CBC + HMAC on
 * crypto_aesni_mb (both synchronous CPU crypto, intel-ipsec-mb), crypto_openssl the fallback
 * (lookaside enqueue/dequeue). An SA takes the first device with CPU crypto that runs its
 * algorithm, else the first that runs it.
 */
export const ESP_VDEVS = ['crypto_aesni_gcm0', 'crypto_aesni_mb0'] as const;

export const ESP_DEFAULT_REPLAY_WINDOW = 64;
export const ESP_MAX_REPLAY_WINDOW = 4096;
export const ESP_MAX_SAS = 1024;

export interface EspStage {
  kind: 'esp';
  name?: string;
  direction: 'outbound' | 'inbound';
  /**
   * The input ports (ids 0..63) whose packets the stage takes; the others pass it untouched.
   * Default: every port.
   */
  inputs?: (Port | number)[];
  /**
   * Policies decide (Pipeline.setEspPolicies): until the first set, outbound discards every
   * packet and inbound every clear one. Default false: outbound, the newest SA of a family
   * takes every packet of that family; inbound, every packet must be ESP.
   */
  policies?: boolean;
}

/** Native policy rules per stage (a policy of both families counts twice). */
export const ESP_MAX_POLICY_RULES = 1024;

/** A policy (SPD entry) of an ESP stage with `policies: true`. */
export interface EspPolicy {
  /** Names its counter. */
  id: string;
  action: 'protect' | 'bypass' | 'discard';
  /** protect: the SA of the stage (one that is gone, or of the other family: packets dropped). */
  spi?: number;
  /** The selector, from validateMatch of @flowline/packet; none: every IP packet. */
  match?: Match;
}

/** Packets per policy, and those no policy matched (dropped, esp_policy). */
export interface EspPolicyHits {
  policies: { id: string; packets: number }[];
  unmatched: number;
}

export interface EspSa {
  /** 256..2^32-1, unique in the stage. */
  spi: number;
  algorithm: EspAlgorithm;
  /** The cipher key; for AES-GCM followed by its 4-byte salt (RFC 4106 keying material). */
  key: Buffer;
  /** AES-CBC: the HMAC-SHA-256 key (32 bytes); none for AES-GCM. */
  authKey?: Buffer;
  /** The family of the packets the tunnel carries. */
  innerFamily: 4 | 6;
  /**
   * The tunnel's outer addresses (one family). Outbound: the outer header's source and
   * destination. Inbound: the destination an ESP packet must be sent to (with the SPI it finds
   * the SA); the source is not checked.
   */
  tunnel: { src: string; dst: string };
  /** 64-bit extended sequence numbers (RFC 4303 2.2.1). Default false. */
  esn?: boolean;
  /** Inbound anti-replay window in packets, 0 (off) .. 4096. Default 64 (ESN: at least 64). */
  replayWindow?: number;
  /**
   * Outbound: the first sequence number sent (default 1). Inbound: the highest taken as seen
   * (default 0). For tests and for taking over an SA; a new SA starts at the defaults.
   */
  seq?: bigint | number;
  /** Outbound: outer TTL / hop limit. Default 64. */
  ttl?: number;
  /**
   * Lifetimes in packets and inner bytes: past a soft limit `softExpired` is set (the control
   * side rekeys); at a hard limit the SA's packets are dropped (esp_lifetime). Seconds are the
   * control side's to check.
   */
  lifetime?: { softPackets?: number; hardPackets?: number; softBytes?: number; hardBytes?: number };
}

export interface EspSaCounters {
  /** Packets encrypted (outbound) or decrypted and accepted (inbound). */
  packets: number;
  /** Their inner IP bytes. */
  bytes: number;
  authFailures: number;
  replays: number;
  /** Packets dropped because the hard lifetime was reached. */
  lifetimeDrops: number;
  /** Decrypted packets with bad padding or the wrong next header. */
  trailerErrors: number;
  /** Too short / not whole blocks for the SA, no room, crypto errors. */
  errors: number;
  /** Outbound: the next sequence number; inbound: the highest accepted. */
  seq: bigint;
  softExpired: boolean;
  hardExpired: boolean;
  /** Synchronous CPU crypto (else lookaside enqueue/dequeue). */
  cpuCrypto: boolean;
  /** The crypto device the SA runs on. */
  device: string;
}

const U32_MAX = 0xffff_ffff;
const U64_MAX = (1n << 64n) - 1n;

function lifetimeValue(v: number | undefined, at: string): number {
  if (v === undefined) return 0;
  if (!Number.isSafeInteger(v) || v < 1)
    throw new PipelineError(`must be a positive integer, got ${String(v)}`, at);
  return v;
}

/** The native SA configuration of sa, or a PipelineError naming the field (under `at`). */
export function espSaConf(sa: EspSa, at: string): Record<string, unknown> {
  if (!Number.isInteger(sa.spi) || sa.spi < 256 || sa.spi > U32_MAX)
    throw new PipelineError(
      `must be an integer 256..${U32_MAX}, got ${String(sa.spi)}`,
      `${at}.spi`,
    );
  const alg = ESP_ALGORITHMS[sa.algorithm];
  if (!alg || !Object.hasOwn(ESP_ALGORITHMS, sa.algorithm))
    throw new PipelineError(
      `unknown algorithm ${JSON.stringify(sa.algorithm)} (one of ${Object.keys(ESP_ALGORITHMS).join(', ')})`,
      `${at}.algorithm`,
    );
  if (!Buffer.isBuffer(sa.key) || sa.key.length !== alg.key)
    throw new PipelineError(
      `${sa.algorithm} takes a ${alg.key}-byte key${alg.authKey ? '' : ' (key, then 4-byte salt)'}, got ${Buffer.isBuffer(sa.key) ? `${sa.key.length} bytes` : typeof sa.key}`,
      `${at}.key`,
    );
  const authKey = sa.authKey ?? Buffer.alloc(0);
  if (!Buffer.isBuffer(authKey) || authKey.length !== alg.authKey)
    throw new PipelineError(
      alg.authKey
        ? `${sa.algorithm} takes a ${alg.authKey}-byte HMAC-SHA-256 key, got ${Buffer.isBuffer(authKey) ? authKey.length : typeof authKey}`
        : `${sa.algorithm} authenticates with its key: give no authKey`,
      `${at}.authKey`,
    );
  if (sa.innerFamily !== 4 && sa.innerFamily !== 6)
    throw new PipelineError(`must be 4 or 6, got ${String(sa.innerFamily)}`, `${at}.innerFamily`);
  const addr = (text: string, f: 'src' | 'dst') => {
    try {
      return parseAddress(text);
    } catch (e) {
      throw new PipelineError((e as Error).message, `${at}.tunnel.${f}`);
    }
  };
  if (!sa.tunnel) throw new PipelineError('an SA needs its tunnel addresses', `${at}.tunnel`);
  const src = addr(sa.tunnel.src, 'src');
  const dst = addr(sa.tunnel.dst, 'dst');
  if (src.family !== dst.family)
    throw new PipelineError(
      `IPv${src.family} source and IPv${dst.family} destination`,
      `${at}.tunnel.dst`,
    );
  const window = sa.replayWindow ?? ESP_DEFAULT_REPLAY_WINDOW;
  if (!Number.isInteger(window) || window < 0 || window > ESP_MAX_REPLAY_WINDOW)
    throw new PipelineError(
      `must be an integer 0..${ESP_MAX_REPLAY_WINDOW}, got ${String(window)}`,
      `${at}.replayWindow`,
    );
  const esn = sa.esn === true;
  let seq: bigint;
  try {
    seq = BigInt(sa.seq ?? 0);
  } catch {
    throw new PipelineError(`must be an integer, got ${String(sa.seq)}`, `${at}.seq`);
  }
  const seqMax = esn ? U64_MAX : BigInt(U32_MAX);
  if (seq < 0n || seq > seqMax)
    throw new PipelineError(`must be 0..${seqMax}${esn ? '' : ' without esn'}`, `${at}.seq`);
  const ttl = sa.ttl ?? 64;
  if (!Number.isInteger(ttl) || ttl < 1 || ttl > 255)
    throw new PipelineError(`must be an integer 1..255, got ${String(ttl)}`, `${at}.ttl`);
  const lt = sa.lifetime ?? {};
  const life = {
    softPackets: lifetimeValue(lt.softPackets, `${at}.lifetime.softPackets`),
    hardPackets: lifetimeValue(lt.hardPackets, `${at}.lifetime.hardPackets`),
    softBytes: lifetimeValue(lt.softBytes, `${at}.lifetime.softBytes`),
    hardBytes: lifetimeValue(lt.hardBytes, `${at}.lifetime.hardBytes`),
  };
  if (life.hardPackets && life.softPackets > life.hardPackets)
    throw new PipelineError('over hardPackets', `${at}.lifetime.softPackets`);
  if (life.hardBytes && life.softBytes > life.hardBytes)
    throw new PipelineError('over hardBytes', `${at}.lifetime.softBytes`);
  return {
    spi: sa.spi,
    alg: alg.code,
    key: sa.key,
    ...(alg.authKey ? { authKey } : {}),
    innerFamily: sa.innerFamily,
    outerFamily: src.family,
    outerSrc: Buffer.from(src.bytes),
    outerDst: Buffer.from(dst.bytes),
    esn,
    replayWindow: window,
    seq,
    ttl,
    ...life,
  };
}

const POLICY_ACTIONS = { discard: 0, bypass: 1, protect: 2 } as const;

/** The native form of policies: selectors (packAcl) and per selector its policy, action, SPI. */
export function espPolicyConf(
  policies: readonly EspPolicy[],
  at: string,
): { selectors: Buffer; actions: Buffer } {
  if (!Array.isArray(policies)) throw new PipelineError('must be an array', at);
  const ids = new Set<string>();
  policies.forEach((p, i) => {
    const where = `${at}[${i}]`;
    if (typeof p?.id !== 'string' || p.id === '' || ids.has(p.id))
      throw new PipelineError(
        `must be a unique non-empty string, got ${String(p?.id)}`,
        `${where}.id`,
      );
    ids.add(p.id);
    if (!Object.hasOwn(POLICY_ACTIONS, p.action))
      throw new PipelineError(
        `must be "protect", "bypass" or "discard", got ${String(p.action)}`,
        `${where}.action`,
      );
    if (p.action === 'protect') {
      if (!Number.isInteger(p.spi) || (p.spi ?? 0) < 256 || (p.spi ?? 0) > U32_MAX)
        throw new PipelineError(
          `must be an SPI 256..${U32_MAX}, got ${String(p.spi)}`,
          `${where}.spi`,
        );
    } else if (p.spi !== undefined)
      throw new PipelineError(`only a protect policy names an SA`, `${where}.spi`);
  });
  const compiled = compileAcl(
    policies.map((p) => ({ action: 'permit' as const, ...(p.match ? { match: p.match } : {}) })),
    at,
  );
  if (compiled.length > ESP_MAX_POLICY_RULES)
    throw new PipelineError(
      `${policies.length} policies compile to ${compiled.length} native rules (a policy of both families counts twice); a stage holds at most ${ESP_MAX_POLICY_RULES}`,
      at,
    );
  const actions = Buffer.alloc(compiled.length * 12);
  compiled.forEach((r, i) => {
    const p = policies[r.owner] as EspPolicy;
    actions.writeUInt32LE(r.owner, i * 12);
    actions[i * 12 + 4] = POLICY_ACTIONS[p.action];
    actions.writeUInt32LE(p.action === 'protect' ? (p.spi ?? 0) : 0, i * 12 + 8);
  });
  return { selectors: packAcl(compiled), actions };
}

function portIds(inputs: EspStage['inputs'], at: string): number[] {
  if (inputs === undefined) return [];
  if (!Array.isArray(inputs) || inputs.length === 0)
    throw new PipelineError('must be a non-empty array of ports', `${at}.inputs`);
  return inputs.map((p, i) => {
    const id = typeof p === 'number' ? p : p.id;
    if (!Number.isInteger(id) || id < 0 || id > 63)
      throw new PipelineError(`must be a port id 0..63, got ${String(id)}`, `${at}.inputs[${i}]`);
    return id;
  });
}

/** Native stage index ops, for Pipeline's ESP methods. */
export const espNative = {
  addStage(pipeline: number, s: EspStage, at: string): number {
    const direction = s.direction;
    if (direction !== 'outbound' && direction !== 'inbound')
      throw new PipelineError(
        `must be "outbound" or "inbound", got ${String(direction)}`,
        `${at}.direction`,
      );
    return native().pipelineAddEsp(pipeline, direction === 'outbound' ? 1 : 0, {
      spd: s.policies === true,
      inPorts: portIds(s.inputs, at),
    });
  },
  setPolicies(
    pipeline: number,
    stage: number,
    stageName: string,
    policies: readonly EspPolicy[],
  ): number[] {
    const at = `stages[${stageName}].policies`;
    const { selectors, actions } = espPolicyConf(policies, at);
    try {
      return [...native().espSetPolicies(pipeline, stage, selectors, actions, policies.length)];
    } catch (e) {
      const n = nativeError(e);
      throw new PipelineError(n.message, at, 'esp_set_policies', n.errno);
    }
  },
  policyHits(pipeline: number, stage: number): number[] {
    return [...native().espPolicyHits(pipeline, stage)];
  },
  addSa(pipeline: number, stage: number, stageName: string, sa: EspSa): void {
    const at = `stages[${stageName}].sas[${String(sa?.spi)}]`;
    const conf = espSaConf(sa, at);
    try {
      native().espAddSa(pipeline, stage, conf);
    } catch (e) {
      // The native message starts with the field it refuses ("spi: ...", "key: ...").
      const n = nativeError(e);
      const m = /^(?<field>\w+): (?<why>.*)$/s.exec(n.message)?.groups;
      throw new PipelineError(
        m?.why ?? n.message,
        m?.field ? `${at}.${m.field}` : at,
        'esp_add_sa',
        n.errno,
      );
    }
  },
  deleteSa(pipeline: number, stage: number, stageName: string, spi: number): EspSaCounters {
    try {
      return native().espDelSa(pipeline, stage, spi);
    } catch (e) {
      const n = nativeError(e);
      throw new PipelineError(n.message, `stages[${stageName}].sas[${spi}]`, 'esp_del_sa', n.errno);
    }
  },
  counters(pipeline: number, stage: number, stageName: string, spi: number): EspSaCounters {
    try {
      return native().espSaCounters(pipeline, stage, spi);
    } catch (e) {
      const n = nativeError(e);
      throw new PipelineError(
        n.message,
        `stages[${stageName}].sas[${spi}]`,
        'esp_sa_counters',
        n.errno,
      );
    }
  },
  spis(pipeline: number, stage: number): number[] {
    return native().espSpis(pipeline, stage);
  },
};
