import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { certificateProblems } from '../src/cert-manager';
import { find, lint, type Manifest, notes, render, renderError, type Values } from '../src/helm';
import { ovsCertManagerValues } from '../src/ovs-tls';
import { repoRoot } from '../src/paths';
import { type Container, envOf, podOf } from '../src/security';
import { leafFacts, mtlsHandshake, secretFiles } from '../src/tls';
import { validateAll } from '../src/validate';

// Issue 16 in the charts: gRPC mutual TLS certificates (cert-manager or chart-generated), probes
// on the plaintext health port, NetworkPolicies, ServiceChain RBAC for namespace users.

const TLS_DIR = '/var/run/secrets/flowline.io/grpc';
const certManager = (extra: Values = {}): Values => ({
  tls: {
    certManager: { enabled: true, issuerRef: { name: 'flowline-ca', kind: 'ClusterIssuer' } },
    ...extra,
  },
});

/** certManager() for charts/flowline: the OVS switch and controller certificates need two CA issuers too. */
const flowlineCertManager = (): Values => ({
  ...certManager(),
  ovs: {
    nodes: ['node-a'],
    remote: {
      tls: {
        certManager: ovsCertManagerValues(),
      },
    },
  },
});

interface Certificate {
  metadata: { name: string; namespace: string };
  spec: {
    secretName: string;
    uris: string[];
    usages: string[];
    issuerRef: { name: string; kind: string; group: string };
  };
}
interface NetworkPolicyPeer {
  namespaceSelector?: { matchLabels?: Record<string, string> };
  podSelector?: { matchLabels?: Record<string, string> };
}
interface NetworkPolicy {
  metadata: { name: string };
  spec: {
    podSelector: { matchLabels: Record<string, string> };
    policyTypes: string[];
    ingress: { from?: NetworkPolicyPeer[]; ports?: { port: number; protocol: string }[] }[];
    egress?: unknown;
  };
}
interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

const byKind = <T>(ms: Manifest[], kind: string) =>
  ms.filter((m) => m.kind === kind) as unknown as T[];

/** The gRPC TLS volume of a pod, its mount, and the Secret it mounts. */
function grpcTlsMount(m: Manifest, c: Container) {
  const pod = podOf(m);
  const mount = c.volumeMounts?.find((v) => v.mountPath === TLS_DIR);
  const volume = pod.spec.volumes?.find((v) => v.name === mount?.name) as
    { secret?: { secretName: string; items?: unknown } } | undefined;
  return { mount, secretName: volume?.secret?.secretName, items: volume?.secret?.items };
}

/** Each ingress rule, flattened: which ports, from which peers ("all" when from is absent). */
function openings(np: NetworkPolicy): { port: number; from: NetworkPolicyPeer[] | 'all' }[] {
  return np.spec.ingress.flatMap((r) =>
    (r.ports ?? [{ port: -1, protocol: 'any' }]).map((p) => ({
      port: p.port,
      from: r.from ?? 'all',
    })),
  );
}
const nsPeer = (ns: string): NetworkPolicyPeer => ({
  namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns } },
});

describe('gRPC mutual TLS: chart-generated certificates (the default)', () => {
  const ms = render('flowline', {}, { release: 'fl', namespace: 'flowline' });
  const ca = secretFiles(ms, 'fl-grpc-ca');
  const controller = secretFiles(ms, 'fl-chain-controller-grpc-tls');
  const operator = secretFiles(ms, 'fl-operator-grpc-tls');
  const nfs = render('network-function', {}, { release: 'fw', namespace: 'nfs' });
  const nf = secretFiles(nfs, 'fw-grpc-tls');

  it('generates a CA and the controller and operator certificates, each naming its SPIFFE ID in the CN', () => {
    expect(leafFacts(controller)).toEqual({
      id: 'spiffe://flowline/flowline/controller',
      signedByCa: true,
      keyMatches: true,
      serverAndClientAuth: true,
      isCa: false,
    });
    expect(leafFacts(operator)).toEqual({
      id: 'spiffe://flowline/flowline/operator',
      signedByCa: true,
      keyMatches: true,
      serverAndClientAuth: true,
      isCa: false,
    });
    // The CA Secret holds the CA (with its key, for the network-function chart) and is that CA.
    expect(controller['ca.crt']).toBe(ca['ca.crt']);
    expect(operator['ca.crt']).toBe(ca['ca.crt']);
    expect(ca['tls.crt']).toBe(ca['ca.crt']);
    expect(leafFacts(ca)).toMatchObject({ isCa: true, keyMatches: true, signedByCa: true });
    // The OVS-over-SSL CA is another one (a separate trust).
    expect(secretFiles(ms, 'fl-ovs-tls-controller')['ca.crt']).not.toBe(ca['ca.crt']);
  });

  it('gives the NF the identity of its StatefulSet in its namespace, and the trust domain of the values', () => {
    expect(leafFacts(nf)).toMatchObject({
      id: 'spiffe://flowline/ns/nfs/nf/fw',
      keyMatches: true,
      serverAndClientAuth: true,
      isCa: false,
    });
    expect(find(nfs, 'StatefulSet').metadata.name).toBe('fw');
    const other = render(
      'network-function',
      { tls: { trustDomain: 'prod.example.com' } },
      {
        release: 'edge-router',
        namespace: 'tenant-a',
      },
    );
    expect(leafFacts(secretFiles(other, 'edge-router-grpc-tls')).id).toBe(
      'spiffe://prod.example.com/ns/tenant-a/nf/edge-router',
    );
    const td = render('flowline', { tls: { trustDomain: 'prod.example.com' } });
    expect(leafFacts(secretFiles(td, 'test-chain-controller-grpc-tls')).id).toBe(
      'spiffe://prod.example.com/flowline/controller',
    );
    expect(envOf(podOf(find(td, 'Deployment')).spec.containers[0]!).FLOWLINE_TRUST_DOMAIN).toBe(
      'prod.example.com',
    );
  });

  it('is usable as rendered: the operator calls the controller over mutual TLS, a certificate of another CA is refused', async () => {
    // The ChainService's case: the controller serves, the operator's CLI is the client.
    expect(await mtlsHandshake(controller, operator)).toEqual({
      ok: true,
      serverSaw: 'spiffe://flowline/flowline/operator',
      clientSaw: 'spiffe://flowline/flowline/controller',
    });
    // helm template cannot look up the flowline CA: the NF's certificate is of a throw-away CA,
    // marked so, and neither side accepts the other.
    expect(find(nfs, 'Secret', 'fw-grpc-tls').metadata.annotations).toMatchObject({
      'flowline.io/ca': 'placeholder',
      'flowline.io/spiffe-id': 'spiffe://flowline/ns/nfs/nf/fw',
    });
    expect(await mtlsHandshake(nf, controller)).toMatchObject({ ok: false });
    expect(
      await mtlsHandshake(controller, { ...nf, 'ca.crt': controller['ca.crt'] }),
    ).toMatchObject({
      ok: false,
    });
  });

  it('mounts each certificate whole (rotation by replacing the Secret) and points FLOWLINE_TLS_* at it', () => {
    const cases: [Manifest, string][] = [
      [find(ms, 'Deployment', 'fl-chain-controller'), 'fl-chain-controller-grpc-tls'],
      [find(nfs, 'StatefulSet', 'fw'), 'fw-grpc-tls'],
    ];
    for (const [workload, secret] of cases) {
      const c = podOf(workload).spec.containers[0]!;
      const { mount, secretName, items } = grpcTlsMount(workload, c);
      expect(secretName, workload.metadata.name).toBe(secret);
      expect(mount, workload.metadata.name).toMatchObject({ readOnly: true });
      // subPath or items would freeze the files: kubelet updates only whole-volume mounts.
      expect(mount).not.toHaveProperty('subPath');
      expect(items).toBeUndefined();
      expect(envOf(c)).toMatchObject({
        FLOWLINE_TLS_CA: `${TLS_DIR}/ca.crt`,
        FLOWLINE_TLS_CERT: `${TLS_DIR}/tls.crt`,
        FLOWLINE_TLS_KEY: `${TLS_DIR}/tls.key`,
        FLOWLINE_TRUST_DOMAIN: 'flowline',
      });
      expect(envOf(c).FLOWLINE_INSECURE).toBeUndefined();
    }
    // The non-root controller reads its key through the pod's fsGroup.
    const ccPod = podOf(find(ms, 'Deployment', 'fl-chain-controller'));
    expect(ccPod.spec.volumes!.find((v) => v.name === 'grpc-tls')).toMatchObject({
      secret: { defaultMode: 0o440 },
    });
  });

  it('names the variables the NF runtime reads', () => {
    // The NF runtime reads its transport settings through grpc-auth's one table of them.
    const config = readFileSync(
      join(repoRoot, 'packages', 'nf-runtime', 'src', 'config.ts'),
      'utf8',
    );
    expect(config).toMatch(/TRANSPORT_SETTINGS[\s\S]*from '@flowline\/grpc-auth'/);
    const settings = readFileSync(
      join(repoRoot, 'packages', 'grpc-auth', 'src', 'transport-settings.ts'),
      'utf8',
    );
    const c = podOf(find(nfs, 'StatefulSet')).spec.containers[0]!;
    for (const name of [
      'FLOWLINE_TLS_CA',
      'FLOWLINE_TLS_CERT',
      'FLOWLINE_TLS_KEY',
      'FLOWLINE_TRUST_DOMAIN',
      'FLOWLINE_HEALTH_ADDRESS',
    ]) {
      expect(Object.keys(envOf(c))).toContain(name);
      expect(settings, `${name} is not in grpc-auth's TRANSPORT_SETTINGS`).toContain(
        `env: '${name}'`,
      );
    }
    const insecure = podOf(
      find(render('network-function', { tls: { enabled: false } }), 'StatefulSet'),
    ).spec.containers[0]!;
    expect(settings).toContain("env: 'FLOWLINE_INSECURE'");
    expect(envOf(insecure).FLOWLINE_INSECURE).toBe('1');
  });

  it('leaves the operator certificate out when asked', () => {
    const out = render('flowline', { tls: { operator: { enabled: false } } });
    expect(out.some((m) => m.metadata.name === 'test-operator-grpc-tls')).toBe(false);
    expect(out.some((m) => m.metadata.name === 'test-chain-controller-grpc-tls')).toBe(true);
  });
});

describe('gRPC mutual TLS: cert-manager', () => {
  const ms = render('flowline', flowlineCertManager(), { release: 'fl', namespace: 'flowline' });
  const nfs = render('network-function', certManager(), { release: 'fw', namespace: 'nfs' });

  it('lints and renders valid objects, Certificates included', async () => {
    for (const [chart, out] of [
      ['flowline', ms],
      ['network-function', nfs],
    ] as const) {
      expect(lint(chart, chart === 'flowline' ? flowlineCertManager() : certManager())).toMatch(
        /1 chart\(s\) linted, 0 chart\(s\) failed/,
      );
      await validateAll(out);
    }
  });

  it('asks for one Certificate per identity, the SPIFFE ID as a URI SAN, server and client auth, from the configured issuer', () => {
    // The gRPC ones (the OVS ones carry no SPIFFE ID: ovs-switch-identities.test.ts).
    const certs = byKind<Certificate>([...ms, ...nfs], 'Certificate').filter(
      (c) => !c.metadata.name.startsWith('fl-ovs-'),
    );
    expect(
      certs.map((c) => [c.metadata.namespace, c.metadata.name, c.spec.secretName, c.spec.uris]),
    ).toEqual([
      [
        'flowline',
        'fl-chain-controller-grpc',
        'fl-chain-controller-grpc-tls',
        ['spiffe://flowline/flowline/controller'],
      ],
      [
        'flowline',
        'fl-operator-grpc',
        'fl-operator-grpc-tls',
        ['spiffe://flowline/flowline/operator'],
      ],
      ['nfs', 'fw-grpc', 'fw-grpc-tls', ['spiffe://flowline/ns/nfs/nf/fw']],
    ]);
    for (const c of certs) {
      expect(certificateProblems(c)).toEqual([]);
      expect(c.spec.usages).toEqual(expect.arrayContaining(['server auth', 'client auth']));
      expect(c.spec.issuerRef).toEqual({
        name: 'flowline-ca',
        kind: 'ClusterIssuer',
        group: 'cert-manager.io',
      });
    }
    // cert-manager writes the Secrets: the chart renders none of its own for gRPC.
    const secrets = [...ms, ...nfs].filter((m) => m.kind === 'Secret').map((m) => m.metadata.name);
    // Nor for OVS (ovs-switch-identities.test.ts checks those Certificates).
    expect(secrets).toEqual([]);
  });

  it("mounts the Certificate's Secret where FLOWLINE_TLS_* point", () => {
    for (const [workload, cert] of [
      [
        find(ms, 'Deployment', 'fl-chain-controller'),
        find(ms, 'Certificate', 'fl-chain-controller-grpc'),
      ],
      [find(nfs, 'StatefulSet', 'fw'), find(nfs, 'Certificate', 'fw-grpc')],
    ] as const) {
      const c = podOf(workload).spec.containers[0]!;
      expect(grpcTlsMount(workload, c).secretName).toBe(
        (cert as unknown as Certificate).spec.secretName,
      );
      expect(envOf(c).FLOWLINE_TLS_CERT).toBe(`${TLS_DIR}/tls.crt`);
    }
  });

  it('takes a namespaced Issuer too, and refuses to render without an issuer name', () => {
    const issuer = render('network-function', {
      tls: { certManager: { enabled: true, issuerRef: { name: 'ca', kind: 'Issuer' } } },
    });
    expect((find(issuer, 'Certificate') as unknown as Certificate).spec.issuerRef.kind).toBe(
      'Issuer',
    );
    const noIssuer = { certManager: { enabled: true } };
    expect(renderError('network-function', { tls: noIssuer }).stderr).toMatch(
      /tls.certManager.enabled: set tls.certManager.issuerRef.name/,
    );
    expect(renderError('flowline', { ...flowlineCertManager(), tls: noIssuer }).stderr).toMatch(
      /tls.certManager.enabled: set tls.certManager.issuerRef.name/,
    );
  });
});

describe('tls.enabled=false', () => {
  const ms = render('flowline', { tls: { enabled: false } });
  const nfs = render('network-function', { tls: { enabled: false } });

  it('runs plaintext with FLOWLINE_INSECURE=1, no certificates and no TLS mount', async () => {
    await validateAll([...ms, ...nfs]);
    for (const w of [find(ms, 'Deployment', 'test-chain-controller'), find(nfs, 'StatefulSet')]) {
      const c = podOf(w).spec.containers[0]!;
      expect(envOf(c).FLOWLINE_INSECURE).toBe('1');
      expect(Object.keys(envOf(c)).filter((n) => n.startsWith('FLOWLINE_TLS_'))).toEqual([]);
      expect(grpcTlsMount(w, c).mount).toBeUndefined();
      expect(podOf(w).spec.volumes!.some((v) => v.name === 'grpc-tls')).toBe(false);
    }
    expect([...ms, ...nfs].some((m) => /grpc/.test(m.metadata.name) && m.kind === 'Secret')).toBe(
      false,
    );
    expect(
      byKind(
        render('flowline', {
          tls: { ...(certManager().tls as Values), enabled: false },
        }),
        'Certificate',
      ),
    ).toEqual([]);
  });

  it('warns in NOTES', () => {
    expect(notes('flowline', { tls: { enabled: false } })).toMatch(
      /WARNING: tls.enabled=false: the ChainService and every NF's API are plaintext \(FLOWLINE_INSECURE=1\)/,
    );
    expect(notes('network-function', { tls: { enabled: false } })).toMatch(
      /WARNING: tls.enabled=false: the API is plaintext and unauthenticated \(FLOWLINE_INSECURE=1\)/,
    );
    expect(notes('flowline', { ovs: { nodes: ['node-a'] } })).not.toMatch(/WARNING/);
    expect(notes('network-function')).not.toMatch(/WARNING/);
  });
});

describe('probes on the plaintext health port', () => {
  const ms = render('flowline');
  const nfs = render('network-function', { health: { port: 8181 } });

  it('probe grpc.health.v1 on FLOWLINE_HEALTH_ADDRESS, which no Service exposes', () => {
    for (const [w, svc, port, api] of [
      [
        find(ms, 'Deployment', 'test-chain-controller'),
        find(ms, 'Service', 'test-chain-controller'),
        8081,
        50051,
      ],
      [find(nfs, 'StatefulSet'), find(nfs, 'Service'), 8181, 50051],
    ] as const) {
      const c = podOf(w).spec.containers[0]!;
      expect(envOf(c).FLOWLINE_HEALTH_ADDRESS).toBe(`0.0.0.0:${port}`);
      for (const probe of [c.startupProbe, c.livenessProbe, c.readinessProbe])
        expect(probe, w.metadata.name).toMatchObject({ grpc: { port } });
      expect(c.ports).toContainEqual({ name: 'health', containerPort: port, protocol: 'TCP' });
      expect(c.ports).toContainEqual({ name: 'grpc', containerPort: api, protocol: 'TCP' });
      const svcPorts = (svc.spec as { ports: { port: number }[] }).ports.map((p) => p.port);
      expect(svcPorts).not.toContain(port);
    }
  });
});

describe('NetworkPolicy', () => {
  const flValues = {
    ovs: { nodes: ['node-a'] },
    networkPolicy: { operatorNamespace: 'ops', monitoringNamespace: 'prom' },
  };
  const ms = render('flowline', flValues, { release: 'fl', namespace: 'flowline' });
  const nfs = render(
    'network-function',
    { networkPolicy: { operatorNamespace: 'ops', monitoringNamespace: 'prom' } },
    { release: 'fw', namespace: 'nfs' },
  );
  const policies = byKind<NetworkPolicy>(ms, 'NetworkPolicy');

  it('renders valid NetworkPolicies, ingress only (egress not restricted), each selecting its pods', async () => {
    await validateAll([...ms, ...nfs]);
    const workloads: Record<string, Manifest> = {
      'fl-chain-controller': find(ms, 'Deployment', 'fl-chain-controller'),
      'fl-device-plugin': find(ms, 'DaemonSet', 'fl-device-plugin'),
      'fl-cni': find(ms, 'DaemonSet', 'fl-cni'),
      fw: find(nfs, 'StatefulSet', 'fw'),
    };
    const all = [...policies, ...byKind<NetworkPolicy>(nfs, 'NetworkPolicy')];
    expect(all.map((p) => p.metadata.name).sort()).toEqual(Object.keys(workloads).sort());
    for (const np of all) {
      expect(np.spec.policyTypes).toEqual(['Ingress']);
      expect(np.spec.egress).toBeUndefined();
      const labels = podOf(workloads[np.metadata.name]!).metadata.labels!;
      expect(labels, np.metadata.name).toMatchObject(np.spec.podSelector.matchLabels);
      // Every rule names its peers and ports: nothing opens a port to every pod.
      for (const o of openings(np)) {
        expect(o.from, np.metadata.name).not.toBe('all');
        expect(o.port, np.metadata.name).toBeGreaterThan(0);
      }
    }
    // OVS-DPDK is on the host network, where NetworkPolicy does not apply.
    expect(podOf(find(ms, 'DaemonSet', 'fl-ovs-dpdk-node-a')).spec.hostNetwork).toBe(true);
  });

  it("opens the ChainService to the operator's namespace only and metrics to the monitoring namespace only", () => {
    expect(
      openings(find(ms, 'NetworkPolicy', 'fl-chain-controller') as unknown as NetworkPolicy),
    ).toEqual([
      { port: 50051, from: [nsPeer('ops')] },
      { port: 9464, from: [nsPeer('prom')] },
    ]);
    expect(
      openings(find(ms, 'NetworkPolicy', 'fl-device-plugin') as unknown as NetworkPolicy),
    ).toEqual([{ port: 9465, from: [nsPeer('prom')] }]);
    expect(openings(find(ms, 'NetworkPolicy', 'fl-cni') as unknown as NetworkPolicy)).toEqual([
      { port: 9466, from: [nsPeer('prom')] },
    ]);
    // Without an operator namespace nothing may call the ChainService; without a monitoring
    // namespace nothing may scrape: a policy with no rule denies all ingress.
    const closed = render('flowline', { networkPolicy: { monitoringNamespace: '' } });
    for (const np of byKind<NetworkPolicy>(closed, 'NetworkPolicy'))
      expect(np.spec.ingress, np.metadata.name).toEqual([]);
  });

  it("opens the NF's API to the chain controller's pods (in the flowline namespace) and the operator's namespace, metrics to monitoring, never the health port", () => {
    const np = find(nfs, 'NetworkPolicy', 'fw') as unknown as NetworkPolicy;
    const controllerPeer = {
      namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'flowline' } },
      podSelector: {
        matchLabels: {
          'app.kubernetes.io/name': 'flowline',
          'app.kubernetes.io/component': 'chain-controller',
        },
      },
    };
    expect(openings(np)).toEqual([
      { port: 50051, from: [controllerPeer, nsPeer('ops')] },
      { port: 9464, from: [nsPeer('prom')] },
    ]);
    // The peer selects the flowline chart's controller pods, whatever the release is called.
    const ccLabels = podOf(find(ms, 'Deployment', 'fl-chain-controller')).metadata.labels!;
    expect(ccLabels).toMatchObject(controllerPeer.podSelector.matchLabels);
    expect(openings(np).map((o) => o.port)).not.toContain(8081);
    // Defaults: no operator namespace, so the controller alone.
    const defaults = find(
      render('network-function', { flowlineNamespace: 'fl-system' }),
      'NetworkPolicy',
    );
    expect(openings(defaults as unknown as NetworkPolicy)[0]).toEqual({
      port: 50051,
      from: [
        {
          ...controllerPeer,
          namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'fl-system' } },
        },
      ],
    });
  });

  it('is left out with networkPolicy.enabled=false', () => {
    expect(
      byKind(render('flowline', { networkPolicy: { enabled: false } }), 'NetworkPolicy'),
    ).toEqual([]);
    expect(
      byKind(render('network-function', { networkPolicy: { enabled: false } }), 'NetworkPolicy'),
    ).toEqual([]);
  });
});

describe('RBAC', () => {
  const ms = render('flowline');
  const roles = byKind<{
    metadata: { name: string; labels: Record<string, string> };
    rules: Rule[];
  }>(ms, 'ClusterRole');
  const role = (name: string) => roles.find((r) => r.metadata.name === name)!;

  it('lets namespace edit users manage ServiceChains through an aggregated ClusterRole, and view users read them', async () => {
    await validateAll(ms.filter((m) => m.kind === 'ClusterRole'));
    const editor = role('flowline-servicechain-editor');
    expect(editor.metadata.labels).toMatchObject({
      'rbac.authorization.k8s.io/aggregate-to-edit': 'true',
      'rbac.authorization.k8s.io/aggregate-to-admin': 'true',
    });
    expect(editor.metadata.labels).not.toHaveProperty(
      'rbac.authorization.k8s.io/aggregate-to-view',
    );
    expect(editor.rules).toEqual([
      {
        apiGroups: ['flowline.io'],
        resources: ['servicechains'],
        verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete', 'deletecollection'],
      },
      // Status is the controller's to write.
      { apiGroups: ['flowline.io'], resources: ['servicechains/status'], verbs: ['get'] },
    ]);
    const viewer = role('flowline-servicechain-viewer');
    expect(viewer.metadata.labels).toMatchObject({
      'rbac.authorization.k8s.io/aggregate-to-view': 'true',
    });
    expect(viewer.rules).toEqual([
      {
        apiGroups: ['flowline.io'],
        resources: ['servicechains', 'servicechains/status'],
        verbs: ['get', 'list', 'watch'],
      },
    ]);
  });

  it("grants nothing cluster-wide to users: the only ClusterRoleBinding is the controller service account's", () => {
    const bindings = byKind<{
      roleRef: { name: string };
      subjects: { kind: string; name: string; namespace: string }[];
    }>(ms, 'ClusterRoleBinding');
    expect(bindings.map((b) => [b.roleRef.name, b.subjects])).toEqual([
      [
        'test-chain-controller',
        [{ kind: 'ServiceAccount', name: 'test-chain-controller', namespace: 'flowline' }],
      ],
    ]);
    // The aggregated roles name only ServiceChains: no other resource, no wildcard.
    for (const name of ['flowline-servicechain-editor', 'flowline-servicechain-viewer'])
      for (const r of role(name).rules) {
        expect(r.apiGroups).toEqual(['flowline.io']);
        for (const res of r.resources) expect(res).toMatch(/^servicechains(\/status)?$/);
        expect(r.verbs).not.toContain('*');
      }
    expect(
      byKind(render('flowline', { rbac: { servicechainRoles: false } }), 'ClusterRole').map(
        (r) => (r as Manifest).metadata.name,
      ),
    ).toEqual(['test-chain-controller']);
  });
});

describe('values for TLS, health and NetworkPolicy are checked by the schema', () => {
  it.each<[string, string, Values, RegExp]>([
    [
      'flowline',
      'a trust domain with a path',
      { tls: { trustDomain: 'flowline/x' } },
      /at '\/tls\/trustDomain': '.*' does not match pattern/,
    ],
    [
      'flowline',
      'an issuer kind cert-manager does not have',
      { tls: { certManager: { issuerRef: { name: 'x', kind: 'Vault' } } } },
      /at '\/tls\/certManager\/issuerRef\/kind': value must be one of 'Issuer', 'ClusterIssuer'/,
    ],
    [
      'flowline',
      'a duration in days',
      { tls: { certManager: { duration: '90d' } } },
      /at '\/tls\/certManager\/duration': '90d' does not match pattern/,
    ],
    [
      'flowline',
      'a namespace that is no name',
      { networkPolicy: { operatorNamespace: 'Ops Team' } },
      /at '\/networkPolicy\/operatorNamespace': 'Ops Team' does not match pattern/,
    ],
    [
      'flowline',
      'a health port out of range',
      { chainController: { healthPort: 70000 } },
      /at '\/chainController\/healthPort': maximum: got 70,?000, want 65,?535/,
    ],
    [
      'flowline',
      'a misspelled TLS key',
      { tls: { certmanager: {} } },
      /at '\/tls': additional properties 'certmanager' not allowed/,
    ],
    [
      'network-function',
      'a health port out of range',
      { health: { port: 0 } },
      /at '\/health\/port': minimum: got 0, want 1/,
    ],
    [
      'network-function',
      'no controller labels',
      {
        networkPolicy: {
          // Helm merges maps with the defaults: null removes a key.
          controllerPodLabels: {
            'app.kubernetes.io/name': null,
            'app.kubernetes.io/component': null,
          },
        },
      },
      /at '\/networkPolicy\/controllerPodLabels': minProperties: got 0, want 1/,
    ],
    [
      'network-function',
      'a CA Secret name that is no name',
      { tls: { generated: { caSecretName: 'My CA' } } },
      /at '\/tls\/generated\/caSecretName': 'My CA' does not match pattern/,
    ],
    [
      'network-function',
      'a validity of one day (nothing to renew before)',
      { tls: { generated: { validityDays: 1 } } },
      /at '\/tls\/generated\/validityDays': minimum: got 1, want 2/,
    ],
    [
      'network-function',
      'renewal no sooner than the certificate is made',
      { tls: { generated: { validityDays: 30, renewBeforeDays: 30 } } },
      /renewBeforeDays \(30\) must be at least 1 and less than validityDays \(30\)/,
    ],
  ])('%s refuses %s', (chart, _what, values, message) => {
    expect(renderError(chart, values).stderr).toMatch(message);
  });
});
