// Who may call the controller, and how its transport security is configured: the ChainService
// over mutual TLS (@flowline/grpc-auth) open to the operator's identity alone; plaintext only when
// configured explicitly (and then warned at start).
import {
  type AccessPolicy,
  anyOfTrustDomain,
  DEFAULT_TRUST_DOMAIN,
  onlyIdentities,
  operatorId,
  type TransportFlagValues,
  type TransportSecurity,
  type TransportSettings,
  TransportSettingsError,
  transportSettingsFrom,
} from '@flowline/grpc-auth';

export const CHAIN_SERVICE = 'flowline.chain.v1.ChainService';
const HEALTH_SERVICE = 'grpc.health.v1.Health';

/**
 * The ChainService's policy: every method (CreateChain, UpdateChain, DeleteChain and the reading
 * GetChain, ListChains, WatchChains) for the operator's identity only: chains name raw OVS ports
 * and NFs of any namespace, so even reading them tells a tenant about the others. Its health
 * service is open to any authenticated peer of its trust domain. Anything else is refused (deny
 * by default).
 */
export function chainServicePolicy(trustDomain = DEFAULT_TRUST_DOMAIN): AccessPolicy {
  return {
    [`/${CHAIN_SERVICE}/*`]: onlyIdentities(operatorId(trustDomain)),
    [`/${HEALTH_SERVICE}/*`]: anyOfTrustDomain(trustDomain),
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
  /** A plaintext listener for grpc.health.v1 alone (kubelet's probes). */
  healthAddress?: string;
}

/**
 * The controller's transport security from its flags (over) and environment, as every Flowline
 * process reads it (@flowline/grpc-auth's transportSettingsFrom): --tls-ca/--tls-cert/--tls-key
 * (FLOWLINE_TLS_CA/CERT/KEY), all three or none; --insecure (FLOWLINE_INSECURE=1); --trust-domain
 * (FLOWLINE_TRUST_DOMAIN, default flowline); --health-address (FLOWLINE_HEALTH_ADDRESS). TLS and
 * insecure exclude each other; with neither the controller does not start.
 */
export function securityFromSettings(
  flags: TransportFlagValues,
  env: NodeJS.ProcessEnv,
): SecuritySettings {
  let settings: TransportSettings;
  try {
    settings = transportSettingsFrom(flags, env);
  } catch (err) {
    if (err instanceof TransportSettingsError) throw new SecurityConfigError(err.where, err.reason);
    throw err;
  }
  const { security, ...rest } = settings;
  if (security) return { security, ...rest };
  throw new SecurityConfigError(
    'tls',
    'the ChainService is mutual TLS: give --tls-ca, --tls-cert and --tls-key (FLOWLINE_TLS_CA, FLOWLINE_TLS_CERT, FLOWLINE_TLS_KEY), or --insecure (FLOWLINE_INSECURE=1) to serve it and call the NFs in plaintext',
  );
}
