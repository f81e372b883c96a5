import Ajv2020 from 'ajv/dist/2020';

/**
 * cert-manager's Certificate (cert-manager.io/v1), for the fields the charts use. No npm package
 * models it, so this schema is written from cert-manager's published v1 API (the CRD
 * deploy/crds/crd-certificates.yaml and https://cert-manager.io/docs/reference/api-docs/): the
 * types and enums below are theirs. It is stricter than the CRD in one way: a field it does not
 * list is refused (the API server would refuse a misspelled one too; add a real field here when a
 * chart starts using it). The webhook's rules a schema cannot say are in certificateProblems.
 */
const goDuration = {
  type: 'string',
  // time.ParseDuration's units; cert-manager reads duration and renewBefore with it.
  pattern: '^([0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$',
};
const stringMap = { type: 'object', additionalProperties: { type: 'string' } };

export const certificateSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['apiVersion', 'kind', 'metadata', 'spec'],
  properties: {
    apiVersion: { const: 'cert-manager.io/v1' },
    kind: { const: 'Certificate' },
    metadata: {
      type: 'object',
      additionalProperties: false,
      required: ['name'],
      properties: {
        name: { type: 'string', pattern: '^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$' },
        namespace: { type: 'string', pattern: '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$' },
        labels: stringMap,
        annotations: stringMap,
      },
    },
    spec: {
      type: 'object',
      additionalProperties: false,
      // CertificateSpec: issuerRef and secretName are required.
      required: ['issuerRef', 'secretName'],
      // The webhook: at least one of commonName, dnsNames, uris, emailAddresses, ipAddresses, otherNames.
      anyOf: ['commonName', 'dnsNames', 'uris', 'emailAddresses', 'ipAddresses', 'otherNames'].map(
        (f) => ({ required: [f] }),
      ),
      properties: {
        secretName: { type: 'string', pattern: '^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$' },
        commonName: { type: 'string', maxLength: 64 },
        dnsNames: { type: 'array', items: { type: 'string' } },
        uris: {
          type: 'array',
          minItems: 1,
          items: { type: 'string', pattern: '^[a-z][a-z0-9+.-]*:' },
        },
        usages: {
          type: 'array',
          uniqueItems: true,
          items: {
            enum: [
              'signing',
              'digital signature',
              'content commitment',
              'key encipherment',
              'key agreement',
              'data encipherment',
              'cert sign',
              'crl sign',
              'encipher only',
              'decipher only',
              'any',
              'server auth',
              'client auth',
              'code signing',
              'email protection',
              's/mime',
              'ipsec end system',
              'ipsec tunnel',
              'ipsec user',
              'timestamping',
              'ocsp signing',
              'microsoft sgc',
              'netscape sgc',
            ],
          },
        },
        duration: goDuration,
        renewBefore: goDuration,
        isCA: { type: 'boolean' },
        privateKey: {
          type: 'object',
          additionalProperties: false,
          properties: {
            algorithm: { enum: ['RSA', 'ECDSA', 'Ed25519'] },
            encoding: { enum: ['PKCS1', 'PKCS8'] },
            rotationPolicy: { enum: ['Never', 'Always'] },
            size: { type: 'integer' },
          },
        },
        issuerRef: {
          type: 'object',
          additionalProperties: false,
          required: ['name'],
          properties: {
            name: { type: 'string', minLength: 1 },
            kind: { type: 'string' },
            group: { type: 'string' },
          },
        },
      },
    },
  },
};

const ajv = new Ajv2020({ allErrors: true, strict: false });
const validateCertificate = ajv.compile(certificateSchema);

const UNITS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1e3,
  m: 60e3,
  h: 3600e3,
};

/** A Go duration string in milliseconds ("2160h", "1h30m"). */
export function goDurationMs(d: string): number {
  let total = 0;
  for (const [, n, unit] of d.matchAll(/([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)/g))
    total += Number(n) * (UNITS[unit ?? ''] ?? NaN);
  return total;
}

/**
 * Every reason cert-manager would refuse this Certificate: the schema above, then the webhook's
 * rules on values (cert-manager's internal/apis/certmanager/validation): duration at least 1 h,
 * renewBefore at least 5 min and shorter than duration, key sizes of the algorithm, Issuer or
 * ClusterIssuer for the cert-manager.io group.
 */
export function certificateProblems(m: unknown): string[] {
  if (!validateCertificate(m))
    return (validateCertificate.errors ?? []).map(
      (e) =>
        `${e.instancePath || '/'} ${e.message}${e.params && 'additionalProperty' in e.params ? ` '${String(e.params.additionalProperty)}'` : ''}`,
    );
  const spec = (m as { spec: Record<string, unknown> }).spec as {
    duration?: string;
    renewBefore?: string;
    privateKey?: { algorithm?: string; size?: number };
    issuerRef: { kind?: string; group?: string };
  };
  const p: string[] = [];
  const duration = spec.duration ? goDurationMs(spec.duration) : 90 * 24 * 3600e3;
  if (duration < 3600e3) p.push(`/spec/duration ${spec.duration} is less than 1h`);
  if (spec.renewBefore) {
    const rb = goDurationMs(spec.renewBefore);
    if (rb < 5 * 60e3) p.push(`/spec/renewBefore ${spec.renewBefore} is less than 5m`);
    if (rb >= duration)
      p.push(`/spec/renewBefore ${spec.renewBefore} is not shorter than duration ${spec.duration}`);
  }
  const { algorithm = 'RSA', size } = spec.privateKey ?? {};
  const sizes: Record<string, number[]> = { RSA: [2048, 4096, 8192], ECDSA: [256, 384, 521] };
  const allowed = sizes[algorithm];
  if (size !== undefined && allowed && !allowed.includes(size))
    p.push(`/spec/privateKey/size ${size} is not one of ${allowed.join(', ')} for ${algorithm}`);
  const group = spec.issuerRef.group ?? 'cert-manager.io';
  if (
    group === 'cert-manager.io' &&
    !['Issuer', 'ClusterIssuer', undefined].includes(spec.issuerRef.kind)
  )
    p.push(`/spec/issuerRef/kind ${spec.issuerRef.kind} is not Issuer or ClusterIssuer`);
  return p;
}
