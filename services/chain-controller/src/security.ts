// Who may call the controller, and how its transport security is configured: the ChainService
// over mutual TLS (@flowline/grpc-auth) open to the operator's identity alone; plaintext only when
// configured explicitly (and then warned at start).
import {
  type AccessPolicy,
  anyAuthenticated,
  DEFAULT_TRUST_DOMAIN,
  onlyIdentities,
  operatorId,
  type TransportSecurity,
} from '@flowline/grpc-auth';

export const CHAIN_SERVICE = 'flowline.chain.v1.ChainService';
const HEALTH_SERVICE = 'grpc.health.v1.Health';

/**
 * The ChainService's policy: every method (CreateChain, UpdateChain, DeleteChain and the reading
 * GetChain, ListChains, WatchChains) for the operator's identity only: chains name raw OVS ports
 * and NFs of any namespace, so even reading them tells a tenant about the others. Its health
 * service is open to any authenticated peer. Anything else is refused (deny by default).
 */
export function chainServicePolicy(trustDomain = DEFAULT_TRUST_DOMAIN): AccessPolicy {
  return {
    [`/${CHAIN_SERVICE}/*`]: onlyIdentities(operatorId(trustDomain)),
    [`/${HEALTH_SERVICE}/*`]: anyAuthenticated,
  };
}

/** A setting that is missing, conflicting or malformed; `field` names the flag/variable. */
export class SecurityConfigError extends Error {
  override readonly name = 'SecurityConfigError';
  constructor(
    readonly field: string,
    reason: string,
  ) {
    super(`${field}: ${reason}`);
  }
}

export interface SecuritySettings {
  security: TransportSecurity;
  trustDomain: string;
}

const TRUST_DOMAIN = /^[a-z0-9]([-a-z0-9.]{0,253}[a-z0-9])?$/;

function truthy(raw: string | undefined, field: string): boolean | undefined {
  if (raw === undefined || raw === '') return undefined;
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  throw new SecurityConfigError(field, `"${raw}" is not a boolean (1/0, true/false)`);
}

/**
 * The controller's transport security from its flags (over) and environment, as every Flowline
 * process reads it: --tls-ca/--tls-cert/--tls-key (FLOWLINE_TLS_CA/CERT/KEY), all three or
 * none; --insecure (FLOWLINE_INSECURE=1); --trust-domain (FLOWLINE_TRUST_DOMAIN, default
 * flowline). TLS and insecure exclude each other; with neither the controller does not start.
 */
export function securityFromSettings(
  flags: {
    'tls-ca'?: string | undefined;
    'tls-cert'?: string | undefined;
    'tls-key'?: string | undefined;
    insecure?: boolean | undefined;
    'trust-domain'?: string | undefined;
  },
  env: NodeJS.ProcessEnv,
): SecuritySettings {
  const pick = (flag: keyof typeof flags, name: string): [string, string] | undefined => {
    const f = flags[flag];
    if (typeof f === 'string') return [f, `--${flag}`];
    const e = env[name];
    return e ? [e, name] : undefined;
  };
  const ca = pick('tls-ca', 'FLOWLINE_TLS_CA');
  const cert = pick('tls-cert', 'FLOWLINE_TLS_CERT');
  const key = pick('tls-key', 'FLOWLINE_TLS_KEY');
  const insecure =
    flags.insecure === true
      ? ([true, '--insecure'] as const)
      : truthy(env.FLOWLINE_INSECURE, 'FLOWLINE_INSECURE')
        ? ([true, 'FLOWLINE_INSECURE'] as const)
        : undefined;
  const domain = pick('trust-domain', 'FLOWLINE_TRUST_DOMAIN');
  const trustDomain = domain?.[0] ?? DEFAULT_TRUST_DOMAIN;
  if (!TRUST_DOMAIN.test(trustDomain))
    throw new SecurityConfigError(
      domain?.[1] ?? 'FLOWLINE_TRUST_DOMAIN',
      `"${trustDomain}" is not a DNS name (the SPIFFE trust domain)`,
    );
  const files = [ca, cert, key];
  if (files.some(Boolean)) {
    const missing = [
      ['--tls-ca', 'FLOWLINE_TLS_CA', ca],
      ['--tls-cert', 'FLOWLINE_TLS_CERT', cert],
      ['--tls-key', 'FLOWLINE_TLS_KEY', key],
    ].find(([, , v]) => !v);
    if (missing)
      throw new SecurityConfigError(
        `${missing[0] as string} (${missing[1] as string})`,
        'the CA, certificate and key are given together',
      );
    if (insecure)
      throw new SecurityConfigError(
        insecure[1],
        `TLS files (${ca![1]}, ${cert![1]}, ${key![1]}) and insecure exclude each other: give the certificate files or insecure, not both`,
      );
    return { security: { caFile: ca![0], certFile: cert![0], keyFile: key![0] }, trustDomain };
  }
  if (insecure) return { security: { insecure: true }, trustDomain };
  throw new SecurityConfigError(
    'tls',
    'the ChainService is mutual TLS: give --tls-ca, --tls-cert and --tls-key (FLOWLINE_TLS_CA, FLOWLINE_TLS_CERT, FLOWLINE_TLS_KEY), or --insecure (FLOWLINE_INSECURE=1) to serve it and call the NFs in plaintext',
  );
}
