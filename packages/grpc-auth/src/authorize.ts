// Which identity may call which method. Every listener has a policy; a method it does not name is
// refused (deny by default), so a method added to a service is closed until someone opens it.
import * as grpc from '@grpc/grpc-js';
import { identityOf } from './identity';

/**
 * Who may call a method: any authenticated peer (whatever its trust domain: tests and tools), or
 * the identities a test accepts.
 */
export type Allow =
  | { kind: 'authenticated' }
  | { kind: 'identities'; test: (identity: string) => boolean; describe: string };

export const anyAuthenticated: Allow = { kind: 'authenticated' };

export function onlyIdentities(...ids: string[]): Allow {
  return { kind: 'identities', test: (id) => ids.includes(id), describe: ids.join(', ') };
}

/**
 * Any identity of one trust domain: a CA bundle may also hold other domains' roots (federation,
 * a shared CA), whose workloads must not read what a domain's own peers may.
 */
export function anyOfTrustDomain(trustDomain: string): Allow {
  const prefix = `spiffe://${trustDomain}/`;
  return {
    kind: 'identities',
    test: (id) => id.startsWith(prefix),
    describe: `any identity of trust domain ${trustDomain}`,
  };
}

/**
 * Keys are full method paths (`/flowline.firewall.v1.Firewall/AddRule`) or a service with every
 * method (`/flowline.firewall.v1.Firewall/*`); the exact path wins.
 */
export type AccessPolicy = Record<string, Allow>;

export type Decision = { ok: true; identity?: string } | { ok: false; details: string };

function ruleFor(policy: AccessPolicy, path: string): Allow | undefined {
  return policy[path] ?? policy[path.replace(/\/[^/]+$/, '/*')];
}

/** Decides one call from its method path and the peer certificate the TLS handshake proved. */
export function decide(
  policy: AccessPolicy,
  path: string,
  peer: { sslPeerCertificate?: import('node:tls').PeerCertificate } | null,
  insecure: boolean,
): Decision {
  // Plaintext was configured explicitly (and warned about): there is no identity to check.
  if (insecure) return { ok: true };
  const rule = ruleFor(policy, path);
  const cert = peer?.sslPeerCertificate;
  if (!cert || Object.keys(cert).length === 0)
    return { ok: false, details: `${path}: no client certificate` };
  let identity: string;
  try {
    identity = identityOf(cert);
  } catch (err) {
    return { ok: false, details: `${path}: ${(err as Error).message}` };
  }
  if (!rule) return { ok: false, details: `${identity} may not call ${path} (no policy opens it)` };
  if (rule.kind === 'identities' && !rule.test(identity))
    return {
      ok: false,
      details: `${identity} may not call ${path} (allowed: ${rule.describe})`,
    };
  return { ok: true, identity };
}

/** A server interceptor enforcing `policy`: PERMISSION_DENIED naming the identity and method. */
export function authorizationInterceptor(
  policy: AccessPolicy,
  options: { insecure: boolean },
): grpc.ServerInterceptor {
  return (method, call) =>
    new grpc.ServerInterceptingCall(call, {
      start: (next) => {
        next({
          onReceiveMetadata: (metadata, mdNext) => {
            const d = decide(policy, method.path, call.getAuthContext(), options.insecure);
            if (d.ok) mdNext(metadata);
            else call.sendStatus({ code: grpc.status.PERMISSION_DENIED, details: d.details });
          },
        });
      },
    });
}

/** The identity a handler's caller proved (undefined on a plaintext listener). */
export function callerIdentity(call: {
  getAuthContext(): { sslPeerCertificate?: import('node:tls').PeerCertificate } | null;
}): string | undefined {
  const cert = call.getAuthContext()?.sslPeerCertificate;
  if (!cert || Object.keys(cert).length === 0) return undefined;
  try {
    return identityOf(cert);
  } catch {
    return undefined;
  }
}
