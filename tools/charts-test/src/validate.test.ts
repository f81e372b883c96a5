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
