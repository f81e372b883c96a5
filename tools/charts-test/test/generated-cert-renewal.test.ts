import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeCluster } from '../src/cluster';
import { type Manifest, renderError, type Values } from '../src/helm';

/**
 * The charts' generated gRPC certificates across upgrades, with `lookup` answered by a stand-in
 * apiserver holding the Secrets of the install before: kept while of the same CA and SPIFFE ID
 * and not near their end; made anew after a trust-domain change, or within renewBeforeDays of
 * the end (flowline.io/not-after), or when that annotation is missing.
 */

type Secret = Manifest & { data: Record<string, string> };
const secrets = (ms: Manifest[]): Secret[] => ms.filter((m): m is Secret => m.kind === 'Secret');
const secret = (ms: Manifest[], name: string): Secret => {
  const s = secrets(ms).find((m) => m.metadata.name === name);
  if (!s)
    throw new Error(
      `no Secret ${name} in ${secrets(ms)
        .map((m) => m.metadata.name)
        .join(', ')}`,
    );
  return s;
};
const cert = (s: Secret): X509Certificate =>
  new X509Certificate(Buffer.from(s.data['tls.crt']!, 'base64'));
/** The Secret with its flowline.io/not-after moved to `days` from now. */
const endingIn = (s: Secret, days: number): Secret => ({
  ...s,
  metadata: {
    ...s.metadata,
    annotations: {
      ...s.metadata.annotations,
      'flowline.io/not-after': new Date(Date.now() + days * 86_400_000)
        .toISOString()
        .replace(/\.\d{3}Z$/, 'Z'),
    },
  },
});

const CONTROLLER = 'fl-chain-controller-grpc-tls';
const OPERATOR = 'fl-operator-grpc-tls';
const CA = 'fl-grpc-ca';
const NF = 'fw-grpc-tls';

describe('generated gRPC certificates across upgrades (lookup against a stand-in apiserver)', () => {
  const cluster = new FakeCluster();
  /** What a first install of charts/flowline made, as stored in the cluster. */
  let installed: Manifest[] = [];

  const upgrade = (values: Values = {}): Promise<Manifest[]> =>
    cluster.render('flowline', values, { release: 'fl', namespace: 'flowline' });
  const store = (ms: Manifest[]): void => {
    for (const s of secrets(ms)) cluster.putReleased(s, 'fl', 'flowline');
  };

  beforeAll(async () => {
    await cluster.start();
    cluster.put({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'flowline' } });
    installed = await upgrade();
    store(installed);
  });
  afterAll(() => cluster.stop());

  it("a first install writes each certificate's end in flowline.io/not-after, as the certificate has it", () => {
    for (const name of [CONTROLLER, OPERATOR]) {
      const s = secret(installed, name);
      const notAfter = Date.parse(s.metadata.annotations!['flowline.io/not-after']!);
      const real = Date.parse(cert(s).validTo);
      expect(Math.abs(notAfter - real)).toBeLessThan(120_000);
      expect(real - Date.now()).toBeGreaterThan(364 * 86_400_000);
    }
    // the stand-in was asked: the lookups are real
    expect(cluster.requests).toContain(`GET /api/v1/namespaces/flowline/secrets/${CONTROLLER}`);
  });

  it('an upgrade keeps the CA and every certificate while nothing changed', async () => {
    const ms = await upgrade();
    for (const name of [CA, CONTROLLER, OPERATOR])
      expect(secret(ms, name).data).toEqual(secret(installed, name).data);
    expect(secret(ms, CONTROLLER).metadata.annotations!['flowline.io/not-after']).toBe(
      secret(installed, CONTROLLER).metadata.annotations!['flowline.io/not-after'],
    );
  });

  it('a new trust domain gets certificates of the new SPIFFE IDs, from the same CA', async () => {
    const ms = await upgrade({ tls: { trustDomain: 'example.org' } });
    expect(secret(ms, CA).data).toEqual(secret(installed, CA).data);
    const s = secret(ms, CONTROLLER);
    expect(s.data['tls.crt']).not.toBe(secret(installed, CONTROLLER).data['tls.crt']);
    expect(cert(s).subject).toBe('CN=spiffe://example.org/flowline/controller');
    expect(s.metadata.annotations!['flowline.io/spiffe-id']).toBe(
      'spiffe://example.org/flowline/controller',
    );
    expect(cert(s).checkIssued(cert(secret(installed, CA)))).toBe(true);
  });

  it('a certificate within renewBeforeDays of its end, or without the annotation, is made anew', async () => {
    const near = secret(installed, CONTROLLER);
    const bare = secret(installed, OPERATOR);
    cluster.putReleased(endingIn(near, 29), 'fl', 'flowline');
    const { ['flowline.io/not-after']: _dropped, ...rest } = bare.metadata.annotations!;
    cluster.putReleased(
      { ...bare, metadata: { ...bare.metadata, annotations: rest } },
      'fl',
      'flowline',
    );
    try {
      const ms = await upgrade();
      for (const name of [CONTROLLER, OPERATOR]) {
        const s = secret(ms, name);
        expect(s.data['tls.crt']).not.toBe(secret(installed, name).data['tls.crt']);
        expect(Date.parse(cert(s).validTo) - Date.now()).toBeGreaterThan(364 * 86_400_000);
        expect(cert(s).checkIssued(cert(secret(installed, CA)))).toBe(true);
      }
      // 31 days left is outside the default 30: kept
      cluster.putReleased(endingIn(near, 31), 'fl', 'flowline');
      expect(secret(await upgrade(), CONTROLLER).data).toEqual(near.data);
    } finally {
      store(installed);
    }
  });

  it('refuses renewBeforeDays that is not less than validityDays', () => {
    expect(
      renderError('flowline', { tls: { generated: { validityDays: 30, renewBeforeDays: 30 } } })
        .stderr,
    ).toMatch(/renewBeforeDays \(30\) must be at least 1 and less than validityDays \(30\)/);
  });

  describe("an NF release (charts/network-function), signed by the flowline release's CA", () => {
    const nf = (values: Values = {}): Promise<Manifest[]> =>
      cluster.render(
        'network-function',
        { flowlineNamespace: 'flowline', tls: { generated: { caSecretName: CA } }, ...values },
        { release: 'fw', namespace: 'nfs' },
      );
    let first: Manifest[] = [];
    beforeAll(async () => {
      first = await nf();
      const s = secret(first, NF);
      cluster.putReleased(s, 'fw', 'nfs');
    });

    it('is kept while nothing changed, and renewed near its end or for a new trust domain', async () => {
      const s = secret(first, NF);
      expect(cert(s).checkIssued(cert(secret(installed, CA)))).toBe(true);
      expect(secret(await nf(), NF).data).toEqual(s.data);
      const moved = secret(
        await nf({ tls: { trustDomain: 'example.org', generated: { caSecretName: CA } } }),
        NF,
      );
      expect(cert(moved).subject).toBe('CN=spiffe://example.org/ns/nfs/nf/fw');
      cluster.putReleased(endingIn(s, 3), 'fw', 'nfs');
      const renewed = secret(await nf(), NF);
      expect(renewed.data['tls.crt']).not.toBe(s.data['tls.crt']);
      expect(cert(renewed).checkIssued(cert(secret(installed, CA)))).toBe(true);
    });
  });
});
