import { describe, expect, it } from 'vitest';
import type { Manifest } from './helm';
import { checkKnownFields, ManifestError, validateAll, validateSchema } from './validate';

// Proof that the validators truly validate: each broken manifest below is one the API server
// refuses, and each must be refused here with a message naming the field.
const deployment = (container: Record<string, unknown>): Manifest => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'd' },
  spec: {
    selector: { matchLabels: { a: 'b' } },
    template: { metadata: { labels: { a: 'b' } }, spec: { containers: [container] } },
  },
});

describe('validateSchema (kubernetes-models, from the Kubernetes OpenAPI schema)', () => {
  it('accepts a well-formed Deployment', async () => {
    await expect(
      validateSchema(deployment({ name: 'c', image: 'i', resources: { limits: { cpu: '2' } } })),
    ).resolves.toBeUndefined();
  });

  it('refuses a quantity of the wrong type, naming its path', async () => {
    const bad = deployment({ name: 'c', image: 'i', resources: { limits: { cpu: { cores: 2 } } } });
    await expect(validateSchema(bad)).rejects.toThrow(
      /containers\/0\/resources\/limits\/cpu must be/,
    );
  });

  it('refuses a container without its required name', async () => {
    await expect(validateSchema(deployment({ image: 'i' }))).rejects.toThrow(
      /containers\/0 must have required property name/,
    );
  });

  it('refuses a probe port of the wrong type', async () => {
    const bad = deployment({ name: 'c', image: 'i', livenessProbe: { grpc: { port: 'grpc' } } });
    await expect(validateSchema(bad)).rejects.toThrow(/livenessProbe\/grpc\/port must be integer/);
  });

  it('refuses a kind it has no schema for instead of passing it', async () => {
    const unknown = {
      apiVersion: 'example.com/v1',
      kind: 'Widget',
      metadata: { name: 'w' },
    } as Manifest;
    await expect(validateSchema(unknown)).rejects.toThrow(ManifestError);
    await expect(validateSchema(unknown)).rejects.toThrow(/no schema for example.com\/v1 Widget/);
  });

  it('checks NetworkAttachmentDefinitions against the Multus CRD shape', async () => {
    const nad = (spec: unknown) =>
      ({
        apiVersion: 'k8s.cni.cncf.io/v1',
        kind: 'NetworkAttachmentDefinition',
        metadata: { name: 'n' },
        spec,
      }) as Manifest;
    await expect(validateSchema(nad({ config: '{"type":"flowline"}' }))).resolves.toBeUndefined();
    await expect(validateSchema(nad({ conf: '{}' }))).rejects.toThrow(
      /must have required property 'config'/,
    );
  });
});

describe('checkKnownFields (TypeScript excess property checks on kubernetes-models types)', () => {
  it('accepts known fields', () => {
    expect(() =>
      checkKnownFields([
        deployment({ name: 'c', image: 'i', securityContext: { privileged: false } }),
      ]),
    ).not.toThrow();
  });

  it('names a misspelled nested field that the OpenAPI validator lets through', async () => {
    const bad = deployment({ name: 'c', image: 'i', securityContext: { privilegd: false } });
    await expect(validateSchema(bad)).resolves.toBeUndefined(); // why this second check exists
    expect(() => checkKnownFields([bad])).toThrow(/'privilegd' does not exist in type/);
  });

  it('names the object that has the unknown field among several', async () => {
    const good = deployment({ name: 'ok', image: 'i' });
    const bad: Manifest = {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'svc' },
      spec: { portz: [] },
    };
    await expect(validateAll([good, bad])).rejects.toThrow(
      /v1 Service svc: .*'portz' does not exist/,
    );
  });
});

describe('cert-manager Certificates (a schema from the published cert-manager.io/v1 API)', () => {
  const certificate = (spec: Record<string, unknown>): Manifest => ({
    apiVersion: 'cert-manager.io/v1',
    kind: 'Certificate',
    metadata: { name: 'c', namespace: 'ns' },
    spec,
  });
  const good = {
    secretName: 'c-tls',
    uris: ['spiffe://flowline/flowline/controller'],
    usages: ['digital signature', 'key encipherment', 'server auth', 'client auth'],
    duration: '2160h',
    renewBefore: '360h',
    privateKey: { algorithm: 'ECDSA', size: 256, encoding: 'PKCS8', rotationPolicy: 'Always' },
    issuerRef: { name: 'ca', kind: 'ClusterIssuer', group: 'cert-manager.io' },
  };

  it('accepts a well-formed Certificate', async () => {
    await expect(validateSchema(certificate(good))).resolves.toBeUndefined();
  });

  it.each<[string, Record<string, unknown>, RegExp]>([
    [
      'a misspelled field',
      { ...good, uri: good.uris },
      /\/spec must NOT have additional properties 'uri'/,
    ],
    [
      'no secretName',
      { ...good, secretName: undefined },
      /\/spec must have required property 'secretName'/,
    ],
    [
      'no issuer name',
      { ...good, issuerRef: { kind: 'Issuer' } },
      /\/spec\/issuerRef must have required property 'name'/,
    ],
    [
      'an unknown usage',
      { ...good, usages: ['server', 'client auth'] },
      /\/spec\/usages\/0 must be equal to one of the allowed values/,
    ],
    [
      'no name at all (no uris, dnsNames, commonName...)',
      { ...good, uris: undefined },
      /\/spec must match a schema in anyOf/,
    ],
    ['a duration in days', { ...good, duration: '90d' }, /\/spec\/duration must match pattern/],
    [
      'an unknown key algorithm',
      { ...good, privateKey: { algorithm: 'EC' } },
      /\/spec\/privateKey\/algorithm must be equal to one of the allowed values/,
    ],
    [
      'renewBefore not shorter than duration',
      { ...good, duration: '2h', renewBefore: '120m' },
      /renewBefore 120m is not shorter than duration 2h/,
    ],
    [
      'a duration under an hour',
      { ...good, duration: '30m', renewBefore: '10m' },
      /duration 30m is less than 1h/,
    ],
    [
      'an ECDSA key of an RSA size',
      { ...good, privateKey: { algorithm: 'ECDSA', size: 2048 } },
      /size 2048 is not one of 256, 384, 521 for ECDSA/,
    ],
    [
      'a cert-manager issuer kind that does not exist',
      { ...good, issuerRef: { name: 'ca', kind: 'CAIssuer' } },
      /issuerRef\/kind CAIssuer is not Issuer or ClusterIssuer/,
    ],
  ])('refuses %s, naming the field', async (_what, spec, message) => {
    const m = certificate(JSON.parse(JSON.stringify(spec)) as Record<string, unknown>);
    await expect(validateSchema(m)).rejects.toThrow(ManifestError);
    await expect(validateSchema(m)).rejects.toThrow(message);
  });
});
