/**
 * A security association from the API, validated: every refusal names the request field and
 * leaves nothing changed. Key material is resolved here (inline, or from the key directory) and
 * held only until the data path has taken it (see IpsecStore).
 */
import { AddressError, type Address, parseAddress } from '@flowline/packet';
import type { ipsecV1 } from '@flowline/proto';
import { IpsecConfigError } from './errors';
import type { KeyDirectory } from './keys';

export type Direction = 'inbound' | 'outbound';
export type Algorithm =
  'aes-gcm-128' | 'aes-gcm-256' | 'aes-cbc-128-hmac-sha256' | 'aes-cbc-256-hmac-sha256';

/** Keying material per algorithm, in bytes (AES-GCM: key + 4-byte salt, RFC 4106 8.1). */
export const ALGORITHMS: Record<Algorithm, { proto: string; key: number; integrityKey: number }> = {
  'aes-gcm-128': { proto: 'AES_GCM_128', key: 20, integrityKey: 0 },
  'aes-gcm-256': { proto: 'AES_GCM_256', key: 36, integrityKey: 0 },
  'aes-cbc-128-hmac-sha256': { proto: 'AES_CBC_128_HMAC_SHA256_128', key: 16, integrityKey: 32 },
  'aes-cbc-256-hmac-sha256': { proto: 'AES_CBC_256_HMAC_SHA256_128', key: 32, integrityKey: 32 },
};

export const DEFAULT_REPLAY_WINDOW = 64;
export const MAX_REPLAY_WINDOW = 4096;
const U32_MAX = 0xffff_ffff;
const U64_MAX = (1n << 64n) - 1n;

export interface Lifetime {
  softPackets: bigint;
  hardPackets: bigint;
  softBytes: bigint;
  hardBytes: bigint;
  softSeconds: bigint;
  hardSeconds: bigint;
}

/** A validated SA; key buffers are wiped once the data path holds them. */
export interface SaSpec {
  spi: number;
  direction: Direction;
  algorithm: Algorithm;
  key: Buffer;
  integrityKey?: Buffer;
  /** Where the keys came from, for ListSas: the key_ref names, or inline. */
  keyRefs: { encryption?: string; integrity?: string };
  tunnelSrc: Address;
  tunnelDst: Address;
  innerFamily: 4 | 6;
  esn: boolean;
  /** Inbound: the anti-replay window (0: off). Outbound: 0. */
  replayWindow: number;
  lifetime: Lifetime;
}

export function directionFromProto(d: unknown, field: string): Direction {
  if (d === 'INBOUND' || d === 1) return 'inbound';
  if (d === 'OUTBOUND' || d === 2) return 'outbound';
  throw new IpsecConfigError(
    field,
    `must be INBOUND or OUTBOUND (got ${String(d ?? 'DIRECTION_UNSPECIFIED')})`,
  );
}

export function directionToProto(d: Direction): ipsecV1.Direction {
  return d === 'inbound' ? 'INBOUND' : 'OUTBOUND';
}

function algorithmFromProto(a: unknown, field: string): Algorithm {
  for (const [name, v] of Object.entries(ALGORITHMS)) if (a === v.proto) return name as Algorithm;
  throw new IpsecConfigError(
    field,
    `unknown algorithm ${String(a ?? 'ALGORITHM_UNSPECIFIED')} (one of ${Object.values(ALGORITHMS)
      .map((v) => v.proto)
      .join(', ')})`,
  );
}

function keyFrom(
  src: ipsecV1.KeySource | null | undefined,
  keys: KeyDirectory,
  length: number,
  what: string,
  field: string,
): { key: Buffer; ref?: string } {
  if (!src || (src.keyRef === undefined && src.key === undefined))
    throw new IpsecConfigError(field, `is required: ${what} (key_ref or key)`);
  const ref = src.keyRef ?? undefined;
  // An inline key is copied; validateSa wipes the request's own bytes (see wipeInlineKeys).
  const key =
    ref !== undefined
      ? keys.read(ref, `${field}.key_ref`)
      : Buffer.from(src.key as Uint8Array | Buffer | string);
  if (key.length !== length) {
    const got = key.length;
    key.fill(0);
    throw new IpsecConfigError(
      ref !== undefined ? `${field}.key_ref` : `${field}.key`,
      `${what} must be ${length} bytes, got ${got}`,
    );
  }
  return ref !== undefined ? { key, ref } : { key };
}

function address(text: string | undefined, field: string): Address {
  try {
    return parseAddress(text ?? '');
  } catch (err) {
    if (err instanceof AddressError) throw new IpsecConfigError(field, err.message);
    throw err;
  }
}

function u64(v: string | number | undefined | null, field: string): bigint {
  let n: bigint;
  try {
    n = BigInt(v ?? 0);
  } catch {
    throw new IpsecConfigError(field, `must be a whole number, got ${String(v)}`);
  }
  if (n < 0n || n > U64_MAX) throw new IpsecConfigError(field, `must be 0 .. 2^64-1, got ${n}`);
  return n;
}

function lifetimeFrom(l: ipsecV1.Lifetime | null | undefined, at: string): Lifetime {
  const f = (k: keyof ipsecV1.Lifetime, name: string) =>
    u64(l?.[k] as string | number | undefined, `${at}.${name}`);
  const out: Lifetime = {
    softPackets: f('softPackets', 'soft_packets'),
    hardPackets: f('hardPackets', 'hard_packets'),
    softBytes: f('softBytes', 'soft_bytes'),
    hardBytes: f('hardBytes', 'hard_bytes'),
    softSeconds: f('softSeconds', 'soft_seconds'),
    hardSeconds: f('hardSeconds', 'hard_seconds'),
  };
  for (const [k, soft, hard] of [
    ['packets', out.softPackets, out.hardPackets],
    ['bytes', out.softBytes, out.hardBytes],
    ['seconds', out.softSeconds, out.hardSeconds],
  ] as const) {
    if (soft && hard && soft >= hard)
      throw new IpsecConfigError(
        `${at}.soft_${k}`,
        `must be below hard_${k} (${hard}), got ${soft}`,
      );
  }
  return out;
}

/**
 * Wipes the request's inline key bytes (both keys, whichever were read), so the decoded request
 * holds none while it waits for the collector, whether the SA was taken or refused.
 */
function wipeInlineKeys(sa: ipsecV1.SecurityAssociation | null | undefined): void {
  for (const src of [sa?.encryptionKey, sa?.integrityKey])
    if (src?.key instanceof Uint8Array) src.key.fill(0);
}

/**
 * Validates an SA of the API (`at`: its field path, e.g. "sa"), reading keys by reference.
 * Inline key bytes in `sa` are wiped whatever the outcome (the result holds copies).
 */
export function validateSa(
  sa: ipsecV1.SecurityAssociation | null | undefined,
  keys: KeyDirectory,
  at: string,
): SaSpec {
  try {
    return saSpecOf(sa, keys, at);
  } finally {
    wipeInlineKeys(sa);
  }
}

function saSpecOf(
  sa: ipsecV1.SecurityAssociation | null | undefined,
  keys: KeyDirectory,
  at: string,
): SaSpec {
  if (!sa) throw new IpsecConfigError(at, 'is required');
  const spi = Number(sa.spi ?? 0);
  if (!Number.isInteger(spi) || spi < 256 || spi > U32_MAX)
    throw new IpsecConfigError(
      `${at}.spi`,
      `must be 256..${U32_MAX} (0-255 are reserved), got ${spi}`,
    );
  const direction = directionFromProto(sa.direction, `${at}.direction`);
  const algorithm = algorithmFromProto(sa.algorithm, `${at}.algorithm`);
  const tunnelSrc = address(sa.tunnelSrc, `${at}.tunnel_src`);
  const tunnelDst = address(sa.tunnelDst, `${at}.tunnel_dst`);
  if (tunnelSrc.family !== tunnelDst.family)
    throw new IpsecConfigError(
      `${at}.tunnel_dst`,
      `is IPv${tunnelDst.family} but tunnel_src is IPv${tunnelSrc.family}`,
    );
  const inner = Number(sa.innerIpVersion ?? 0);
  if (inner !== 4 && inner !== 6)
    throw new IpsecConfigError(`${at}.inner_ip_version`, `must be 4 or 6, got ${inner}`);
  let replayWindow = 0;
  const window = Number(sa.replayWindow ?? 0);
  if (direction === 'outbound') {
    if (window || sa.replayOff)
      throw new IpsecConfigError(
        `${at}.replay_window`,
        'is for INBOUND SAs (the receiver checks replays)',
      );
  } else if (sa.replayOff) {
    if (window) throw new IpsecConfigError(`${at}.replay_window`, 'must be 0 with replay_off');
    // The receiver's window is what recovers the ESN's high half (RFC 4303 2.2.1, A3): the data
    // path keeps one with ESN whatever is asked, so asking for none would not be what runs.
    if (sa.esn)
      throw new IpsecConfigError(
        `${at}.replay_off`,
        'cannot be set with esn: the anti-replay window recovers the high half of the sequence numbers',
      );
  } else {
    replayWindow = window || DEFAULT_REPLAY_WINDOW;
    if (!Number.isInteger(replayWindow) || replayWindow > MAX_REPLAY_WINDOW)
      throw new IpsecConfigError(
        `${at}.replay_window`,
        `must be 0..${MAX_REPLAY_WINDOW}, got ${window}`,
      );
    // RFC 4303 2.2.1: with ESN the receiver's window decides the high half (32 at the least);
    // the data path (rte_ipsec) keeps it in 64 or more, and would raise a smaller one silently.
    if (sa.esn && replayWindow < 64)
      throw new IpsecConfigError(
        `${at}.replay_window`,
        `must be at least 64 with esn, got ${window}`,
      );
  }
  const lifetime = lifetimeFrom(sa.lifetime, `${at}.lifetime`);
  const alg = ALGORITHMS[algorithm];
  const enc = keyFrom(
    sa.encryptionKey,
    keys,
    alg.key,
    algorithm.startsWith('aes-gcm')
      ? `the ${algorithm} key and its 4-byte salt`
      : `the ${algorithm} cipher key`,
    `${at}.encryption_key`,
  );
  let integ: { key: Buffer; ref?: string } | undefined;
  try {
    if (alg.integrityKey)
      integ = keyFrom(
        sa.integrityKey,
        keys,
        alg.integrityKey,
        'the HMAC-SHA-256 key',
        `${at}.integrity_key`,
      );
    else if (
      sa.integrityKey &&
      (sa.integrityKey.keyRef !== undefined || sa.integrityKey.key !== undefined)
    )
      throw new IpsecConfigError(
        `${at}.integrity_key`,
        `${algorithm} authenticates with its own key: give none`,
      );
  } catch (err) {
    enc.key.fill(0);
    throw err;
  }
  return {
    spi,
    direction,
    algorithm,
    key: enc.key,
    ...(integ ? { integrityKey: integ.key } : {}),
    keyRefs: {
      ...(enc.ref !== undefined ? { encryption: enc.ref } : {}),
      ...(integ?.ref !== undefined ? { integrity: integ.ref } : {}),
    },
    tunnelSrc,
    tunnelDst,
    innerFamily: inner,
    esn: Boolean(sa.esn),
    replayWindow,
    lifetime,
  };
}
