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

/**
 * A certificate's URI SANs, from Node's `subjectaltname` string: entries `TYPE:value` joined by
 * ", ", a value holding `,`, `"`, `'` or `\\` written as a JSON string (so it is read whole, not
 * cut at its commas).
 */
export function uriSans(cert: Pick<PeerCertificate, 'subjectaltname'>): string[] {
  const sans = cert.subjectaltname ?? '';
  const out: string[] = [];
  let i = 0;
  while (i < sans.length) {
    const colon = sans.indexOf(':', i);
    if (colon < 0) break;
    const type = sans.slice(i, colon);
    let value: string;
    let end: number;
    if (sans[colon + 1] === '"') {
      // A JSON string: up to the first quote no backslash escapes.
      let j = colon + 2;
      while (j < sans.length && sans[j] !== '"') j += sans[j] === '\\' ? 2 : 1;
      end = j + 1;
      try {
        value = JSON.parse(sans.slice(colon + 1, end)) as string;
      } catch {
        throw new GrpcAuthError('certificate subjectAltName does not parse', {
          subjectaltname: sans,
        });
      }
    } else {
      const comma = sans.indexOf(', ', colon + 1);
      end = comma < 0 ? sans.length : comma;
      value = sans.slice(colon + 1, end);
    }
    if (type === 'URI') out.push(value);
    i = sans.startsWith(', ', end) ? end + 2 : end;
  }
  return out;
}

/**
 * The identity a peer certificate proves: its single spiffe:// URI SAN, or, only when it has no
 * URI SAN at all, a spiffe:// CN. Refused: several SPIFFE IDs (the SPIFFE X.509-SVID rule), a
 * URI SAN of the spiffe scheme spelt otherwise (SPIFFE://, spiffe:x), URI SANs none of which is a
 * SPIFFE ID (a CN is then not read: a CA may constrain URI SANs and not the CN), and no ID at all.
 */
export function identityOf(cert: Pick<PeerCertificate, 'subjectaltname' | 'subject'>): string {
  const uris = uriSans(cert);
  const odd = uris.filter((u) => /^spiffe:/i.test(u) && !u.startsWith('spiffe://'));
  if (odd.length)
    throw new GrpcAuthError('certificate carries a spiffe URI SAN not spelt spiffe://', {
      identities: odd,
    });
  const spiffe = uris.filter((u) => u.startsWith('spiffe://'));
  if (spiffe.length > 1)
    throw new GrpcAuthError(`certificate carries ${spiffe.length} SPIFFE IDs; one is allowed`, {
      identities: spiffe,
    });
  const [only] = spiffe;
  if (only !== undefined) return only;
  if (uris.length)
    throw new GrpcAuthError('certificate carries URI SANs but no SPIFFE ID among them', {
      uris,
    });
  const cn = (cert.subject as Record<string, string | string[]> | undefined)?.CN;
  if (typeof cn === 'string' && cn.startsWith('spiffe://')) return cn;
  throw new GrpcAuthError('certificate carries no SPIFFE ID (URI SAN or CN)', {
    subject: cert.subject,
  });
}
