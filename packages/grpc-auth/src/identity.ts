// Who is calling: every Flowline certificate names its holder by a SPIFFE ID in a URI subject
// alternative name (the form cert-manager's `uris`, SPIRE and Network Service Mesh use):
//
//   spiffe://<trust domain>/flowline/controller           the chain controller
//   spiffe://<trust domain>/flowline/operator             the operator (the CLI)
//   spiffe://<trust domain>/ns/<namespace>/nf/<name>      one network function instance
//
// Certificates made by Helm's genSignedCert cannot carry URI SANs; for those the subject's CN
// may hold the same SPIFFE ID, and is read when the certificate has no URI SAN.
import type { PeerCertificate } from 'node:tls';
import { GrpcAuthError } from './errors';

export const DEFAULT_TRUST_DOMAIN = 'flowline';

// RFC 1123 labels, as Kubernetes names are; a path segment can never smuggle a '/'.
const NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
const TRUST_DOMAIN = /^[a-z0-9]([-a-z0-9.]{0,253}[a-z0-9])?$/;

function checkName(field: string, value: string): string {
  if (!NAME.test(value))
    throw new GrpcAuthError(`${field} "${value}" is not a Kubernetes name (RFC 1123)`, { field });
  return value;
}

/** Whether a SPIFFE trust domain is a DNS name (lower case), as Flowline's identities need. */
export const isTrustDomain = (value: string): boolean => TRUST_DOMAIN.test(value);

function checkTrustDomain(trustDomain: string): string {
  if (!isTrustDomain(trustDomain))
    throw new GrpcAuthError(`trust domain "${trustDomain}" is not a DNS name`, {
      field: 'trustDomain',
    });
  return trustDomain;
}

export const controllerId = (trustDomain = DEFAULT_TRUST_DOMAIN): string =>
  `spiffe://${checkTrustDomain(trustDomain)}/flowline/controller`;

export const operatorId = (trustDomain = DEFAULT_TRUST_DOMAIN): string =>
  `spiffe://${checkTrustDomain(trustDomain)}/flowline/operator`;

export const nfId = (namespace: string, name: string, trustDomain = DEFAULT_TRUST_DOMAIN): string =>
  `spiffe://${checkTrustDomain(trustDomain)}/ns/${checkName('namespace', namespace)}/nf/${checkName('name', name)}`;

export type ParsedIdentity =
  | { trustDomain: string; role: 'controller' | 'operator' }
  | { trustDomain: string; role: 'nf'; namespace: string; name: string };

/** Parses a Flowline SPIFFE ID; undefined for anything else (other SPIFFE IDs included). */
export function parseIdentity(id: string): ParsedIdentity | undefined {
  const [, trustDomain, path] = /^spiffe:\/\/([^/]+)\/(.+)$/.exec(id) ?? [];
  if (trustDomain === undefined || path === undefined || !TRUST_DOMAIN.test(trustDomain))
    return undefined;
  if (path === 'flowline/controller') return { trustDomain, role: 'controller' };
  if (path === 'flowline/operator') return { trustDomain, role: 'operator' };
  const [, namespace, name] = /^ns\/([^/]+)\/nf\/([^/]+)$/.exec(path) ?? [];
  if (namespace !== undefined && name !== undefined && NAME.test(namespace) && NAME.test(name))
    return { trustDomain, role: 'nf', namespace, name };
  return undefined;
}

/** The SPIFFE IDs among a certificate's URI SANs (as Node's `subjectaltname` string lists them). */
export function uriSans(cert: Pick<PeerCertificate, 'subjectaltname'>): string[] {
  const sans = cert.subjectaltname ?? '';
  const out: string[] = [];
  for (const part of sans.split(/,\s*/)) {
    if (part.startsWith('URI:')) out.push(part.slice(4));
  }
  return out;
}

/**
 * The identity a peer certificate proves: its single spiffe:// URI SAN, or, without any URI SAN,
 * a spiffe:// CN. A certificate with several SPIFFE IDs is refused (the SPIFFE X.509-SVID rule),
 * and so is one with none.
 */
export function identityOf(cert: Pick<PeerCertificate, 'subjectaltname' | 'subject'>): string {
  const spiffe = uriSans(cert).filter((u) => u.startsWith('spiffe://'));
  if (spiffe.length > 1)
    throw new GrpcAuthError(`certificate carries ${spiffe.length} SPIFFE IDs; one is allowed`, {
      identities: spiffe,
    });
  const [only] = spiffe;
  if (only !== undefined) return only;
  const cn = (cert.subject as Record<string, string | string[]> | undefined)?.CN;
  if (typeof cn === 'string' && cn.startsWith('spiffe://')) return cn;
  throw new GrpcAuthError('certificate carries no SPIFFE ID (URI SAN or CN)', {
    subject: cert.subject,
  });
}
