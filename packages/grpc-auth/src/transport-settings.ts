// The transport settings every Flowline gRPC process takes (the chain controller, every NF): one
// table of their flags and environment variables, one reader of them (a flag over its variable)
// and one check that turns the values into TransportSecurity, the SPIFFE trust domain and the
// plaintext health address. The check refuses a partial set of certificate files, the files
// together with insecure, a trust domain that is no DNS name and a health address that is not
// host:port; it leaves "neither TLS nor insecure" to the caller, which says what needs TLS.
import type { TransportSecurity } from './credentials';
import { GrpcAuthError } from './errors';
import { DEFAULT_TRUST_DOMAIN, isTrustDomain } from './identity';

/** Each setting: its key (as in TransportValues and config files), its flag and its variable. */
export const TRANSPORT_SETTINGS = [
  { key: 'caFile', flag: 'tls-ca', env: 'FLOWLINE_TLS_CA', type: 'string' },
  { key: 'certFile', flag: 'tls-cert', env: 'FLOWLINE_TLS_CERT', type: 'string' },
  { key: 'keyFile', flag: 'tls-key', env: 'FLOWLINE_TLS_KEY', type: 'string' },
  { key: 'insecure', flag: 'insecure', env: 'FLOWLINE_INSECURE', type: 'boolean' },
  { key: 'trustDomain', flag: 'trust-domain', env: 'FLOWLINE_TRUST_DOMAIN', type: 'string' },
  {
    key: 'healthAddress',
    flag: 'health-address',
    env: 'FLOWLINE_HEALTH_ADDRESS',
    type: 'string',
  },
] as const;

export type TransportSetting = (typeof TRANSPORT_SETTINGS)[number];
export type TransportKey = TransportSetting['key'];

type TransportFlagTable = {
  readonly [S in TransportSetting as S['flag']]: { readonly type: S['type'] };
};

/** The same settings as node:util parseArgs options, to spread into a process's own. */
export const TRANSPORT_FLAGS = Object.fromEntries(
  TRANSPORT_SETTINGS.map((s) => [s.flag, { type: s.type }]),
) as TransportFlagTable;

/** What parseArgs gives for TRANSPORT_FLAGS. */
export type TransportFlagValues = {
  [S in TransportSetting as S['flag']]?:
    (S['type'] extends 'boolean' ? boolean : string) | undefined;
};

/** The settings' values, from wherever the process takes them. */
export interface TransportValues {
  caFile?: string | undefined;
  certFile?: string | undefined;
  keyFile?: string | undefined;
  insecure?: boolean | undefined;
  trustDomain?: string | undefined;
  healthAddress?: string | undefined;
}

/** Where each value was set (`--tls-ca`, `FLOWLINE_TLS_CA`, a config file), for the errors. */
export type TransportOrigins = { [K in TransportKey]?: string | undefined };

export interface TransportSettings {
  /** Mutual TLS from the three files, or explicit plaintext; absent when neither was given. */
  security?: TransportSecurity;
  trustDomain: string;
  /** A plaintext listener for grpc.health.v1 alone (kubelet's probes carry no certificate). */
  healthAddress?: string;
}

/** Which rule a value broke; a caller with its own wording words it by this. */
export type TransportProblem =
  'not-boolean' | 'trust-domain' | 'health-address' | 'partial' | 'conflict';

/**
 * A transport setting that is malformed, missing from a set or in conflict. The message names
 * where the value came from (its origin), or the flag and variable of one that is missing.
 */
export class TransportSettingsError extends GrpcAuthError {
  constructor(
    readonly problem: TransportProblem,
    readonly setting: TransportSetting,
    readonly reason: string,
    readonly origin?: string,
  ) {
    const where = origin ?? `--${setting.flag} (${setting.env})`;
    super(`${where}: ${reason}`, { field: setting.key, where });
    this.where = where;
  }

  /** The flag, the variable or the file the message starts with. */
  readonly where: string;
}

const HOST_PORT = /^([^\s:]+|\[[0-9a-fA-F:]+\]):\d{1,5}$/;

const SETTING_OF = Object.fromEntries(TRANSPORT_SETTINGS.map((s) => [s.key, s])) as Record<
  TransportKey,
  TransportSetting
>;
const FILE_KEYS = ['caFile', 'certFile', 'keyFile'] as const;

/** A boolean variable: 1/true/yes/on or 0/false/no/off (any case). */
function parseBoolean(raw: string, setting: TransportSetting, origin: string): boolean {
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  throw new TransportSettingsError(
    'not-boolean',
    setting,
    `"${raw}" is not a boolean (1/0, true/false)`,
    origin,
  );
}

/**
 * The settings given as flags (parsed with TRANSPORT_FLAGS) or environment variables, a flag over
 * its variable; an empty variable counts as unset. Says where each value came from.
 */
export function readTransportValues(
  flags: TransportFlagValues,
  env: NodeJS.ProcessEnv,
): { values: TransportValues; origins: TransportOrigins } {
  const values: Record<string, string | boolean> = {};
  const origins: TransportOrigins = {};
  for (const setting of TRANSPORT_SETTINGS) {
    const flag = flags[setting.flag];
    const raw = env[setting.env];
    if (flag !== undefined) {
      values[setting.key] = flag;
      origins[setting.key] = `--${setting.flag}`;
    } else if (raw !== undefined && raw !== '') {
      values[setting.key] =
        setting.type === 'boolean' ? parseBoolean(raw, setting, setting.env) : raw;
      origins[setting.key] = setting.env;
    }
  }
  return { values: values as TransportValues, origins };
}

/**
 * Checks the values and turns them into settings: the three certificate files together (mutual
 * TLS) or insecure, not both; the trust domain a DNS name (default flowline); the health address
 * host:port or [ipv6]:port. `origins` says where each value came from, for the errors (a missing
 * file has none, unless the caller knows where the set was given, such as a config file's section).
 */
export function transportSettings(
  values: TransportValues,
  origins: TransportOrigins = {},
): TransportSettings {
  const error = (problem: TransportProblem, key: TransportKey, reason: string) =>
    new TransportSettingsError(problem, SETTING_OF[key], reason, origins[key]);
  const trustDomain = values.trustDomain ?? DEFAULT_TRUST_DOMAIN;
  if (!isTrustDomain(trustDomain))
    throw error(
      'trust-domain',
      'trustDomain',
      `"${trustDomain}" is not a DNS name (the SPIFFE trust domain)`,
    );
  const { healthAddress } = values;
  if (healthAddress !== undefined && !HOST_PORT.test(healthAddress))
    throw error('health-address', 'healthAddress', `"${healthAddress}" must be host:port`);
  if (
    healthAddress !== undefined &&
    Number(healthAddress.slice(healthAddress.lastIndexOf(':') + 1)) > 65535
  )
    throw error('health-address', 'healthAddress', `"${healthAddress}": the port must be 0..65535`);
  const out = { trustDomain, ...(healthAddress !== undefined ? { healthAddress } : {}) };
  const { caFile, certFile, keyFile } = values;
  const given = FILE_KEYS.filter((k) => values[k]);
  if (given.length === 0) return values.insecure ? { ...out, security: { insecure: true } } : out;
  if (!caFile || !certFile || !keyFile)
    throw error(
      'partial',
      FILE_KEYS.find((k) => !values[k]) ?? 'caFile',
      'the CA, certificate and key are given together',
    );
  if (values.insecure)
    throw error(
      'conflict',
      'insecure',
      `TLS files (${given.map((k) => origins[k] ?? `--${SETTING_OF[k].flag}`).join(', ')}) and insecure exclude each other: give the certificate files or insecure, not both`,
    );
  return { ...out, security: { caFile, certFile, keyFile } };
}

/** readTransportValues, then transportSettings: what a process with only flags and env needs. */
export function transportSettingsFrom(
  flags: TransportFlagValues,
  env: NodeJS.ProcessEnv,
): TransportSettings {
  const { values, origins } = readTransportValues(flags, env);
  return transportSettings(values, origins);
}
