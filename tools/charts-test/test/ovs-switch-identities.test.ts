import { X509Certificate, createPrivateKey } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { certificateProblems } from '../src/cert-manager';
import { find, lint, type Manifest, notes, render, renderError, type Values } from '../src/helm';
import {
  certNames,
  mountedSecrets,
  ovsCertManagerValues,
  ovsTlsFiles,
  ovsTlsVolume,
  secretData,
  signedBy,
} from '../src/ovs-tls';
import { envOf, podOf } from '../src/security';
import { mtlsHandshake, type TlsFiles } from '../src/tls';
import { validateAll } from '../src/validate';

/**
 * OVS over SSL with switch identities (issue 16; packages/ovs README "Remotes and SSL"): two
 * CAs, one certificate per node naming it (ovs-switch.<node>), one OVS DaemonSet per node
 * mounting only its node's Secret; cert-manager with two CA issuers and the other side's CA from
 * ConfigMaps.
 */
const NODES = ['node-a', 'node-b'];
const ms = render('flowline', { ovs: { nodes: NODES } }, { release: 'fl' });
const daemonSets = (out: Manifest[]) =>
  out.filter((m) => m.kind === 'DaemonSet' && m.metadata.name.startsWith('fl-ovs-dpdk'));

const certManager = (extra: Values = {}): Values => ({
  ovs: {
    nodes: NODES,
    remote: {
      tls: {
        certManager: ovsCertManagerValues(extra),
      },
    },
  },
  tls: {
    certManager: { enabled: true, issuerRef: { name: 'flowline-ca', kind: 'ClusterIssuer' } },
  },
});

interface Affinity {
  nodeAffinity: {
    requiredDuringSchedulingIgnoredDuringExecution: {
      nodeSelectorTerms: { matchFields?: { key: string; operator: string; values: string[] }[] }[];
    };
  };
}

describe('OVS switch identities (charts/flowline, ovs.remote.tls)', () => {
  it('lints and renders valid objects with nodes, without, and with cert-manager', async () => {
    for (const values of [{ ovs: { nodes: NODES } }, {}, certManager()]) {
      expect(lint('flowline', values)).toMatch(/0 chart\(s\) failed/);
      await validateAll(render('flowline', values, { release: 'fl' }));
    }
  });

  it("runs one OVS DaemonSet per node, pinned to it by name, mounting only that node's Secret", () => {
    const dss = daemonSets(ms);
    expect(dss.map((d) => d.metadata.name)).toEqual(['fl-ovs-dpdk-node-a', 'fl-ovs-dpdk-node-b']);
    const selectors = new Set<string>();
    for (const [i, node] of NODES.entries()) {
      const ds = dss[i]!;
      const pod = podOf(ds);
      const spec = pod.spec as typeof pod.spec & { affinity: Affinity };
      expect(
        spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms,
      ).toEqual([{ matchFields: [{ key: 'metadata.name', operator: 'In', values: [node] }] }]);
      const selector = (ds.spec as { selector: { matchLabels: Record<string, string> } }).selector
        .matchLabels;
      expect(pod.metadata.labels).toMatchObject(selector);
      selectors.add(JSON.stringify(selector));
      expect(ovsTlsVolume(ds)).toEqual({
        name: 'ovs-tls',
        secret: { secretName: `fl-ovs-tls-switch-${node}`, defaultMode: 0o400 },
      });
      expect(envOf(pod.spec.containers[0]!)).toMatchObject({
        FLOWLINE_OVSDB_REMOTE: 'pssl:6640:$(NODE_IP)',
        FLOWLINE_OPENFLOW_LISTEN: 'pssl:6653:$(NODE_IP)',
        FLOWLINE_OVS_TLS_DIR: '/etc/flowline/ovs-tls',
      });
    }
    // Two DaemonSets with one selector would fight over each other's pods.
    expect(selectors.size).toBe(NODES.length);
  });

  it('with no node known renders no OVS (NOTES say so); without SSL one DaemonSet for every node', () => {
    const none = render('flowline', {}, { release: 'fl' });
    expect(daemonSets(none)).toEqual([]);
    expect(none.filter((m) => m.metadata.name.startsWith('fl-ovs-tls-switch'))).toEqual([]);
    expect(notes('flowline', {}, 'fl')).toMatch(/WARNING: no node is known[\s\S]*Set ovs.nodes/);
    const text = notes('flowline', { ovs: { nodes: NODES } }, 'fl');
    expect(text).toContain('on 2 node(s): node-a, node-b');
    expect(text).toContain('until the next helm upgrade');
    expect(text).not.toContain('WARNING: no node');
    expect(text).not.toMatch(/one switch certificate/i);

    const plain = render(
      'flowline',
      { ovs: { remote: { tls: { enabled: false } } } },
      { release: 'fl' },
    );
    const [ds, ...more] = daemonSets(plain);
    expect(more).toEqual([]);
    expect(ds!.metadata.name).toBe('fl-ovs-dpdk');
    expect((podOf(ds!).spec as { affinity?: unknown }).affinity).toBeUndefined();
    expect(ovsTlsVolume(ds!)).toBeUndefined();
    expect(plain.some((m) => m.kind === 'Secret' && m.metadata.name.includes('ovs-'))).toBe(false);
    const cc = podOf(find(plain, 'Deployment', 'fl-chain-controller')).spec.containers[0]!;
    expect(envOf(cc)).toMatchObject({ FLOWLINE_OVSDB_REMOTE: 'tcp:{nodeIP}:6640' });
    expect(envOf(cc).FLOWLINE_OVS_TLS_DIR).toBeUndefined();
  });

  describe('generated: two CAs', () => {
    const cc = find(ms, 'Deployment', 'fl-chain-controller');
    const controller = ovsTlsFiles(ms, cc);
    const switches = NODES.map((n) => ovsTlsFiles(ms, find(ms, 'DaemonSet', `fl-ovs-dpdk-${n}`)));
    const controllerCa = secretData(ms, 'fl-ovs-controller-ca');
    const switchCa = secretData(ms, 'fl-ovs-switch-ca');

    it('gives the controller its own Secret, ca.crt the switch CA, and no FLOWLINE_OVS_SWITCH_NODE', () => {
      expect(ovsTlsVolume(cc)!.secret!.secretName).toBe('fl-ovs-tls-controller');
      const env = envOf(podOf(cc).spec.containers[0]!);
      expect(env).toMatchObject({
        FLOWLINE_OVSDB_REMOTE: 'ssl:{nodeIP}:6640',
        FLOWLINE_OPENFLOW_REMOTE: 'ssl:{nodeIP}:6653',
        FLOWLINE_OVS_TLS_DIR: '/etc/flowline/ovs-tls',
      });
      // Per-node switches: the controller names each node from its pods' spec.nodeName.
      expect(env.FLOWLINE_OVS_SWITCH_NODE).toBeUndefined();
      expect(controller['ca.crt']).toBe(switchCa['tls.crt']);
      expect(signedBy(controller['tls.crt']!, controllerCa['tls.crt']!)).toBe(true);
      expect(signedBy(controller['tls.crt']!, switchCa['tls.crt']!)).toBe(false);
      expect(
        new X509Certificate(controller['tls.crt']!).checkPrivateKey(
          createPrivateKey(controller['tls.key']!),
        ),
      ).toBe(true);
    });

    it('names each switch ovs-switch.<node> (CN and DNS SAN), signed by the switch CA only', () => {
      for (const [i, node] of NODES.entries()) {
        const sw = switches[i]!;
        expect(certNames(sw['tls.crt']!)).toEqual({
          cn: `ovs-switch.${node}`,
          dns: [`ovs-switch.${node}`],
        });
        expect(signedBy(sw['tls.crt']!, switchCa['tls.crt']!)).toBe(true);
        expect(signedBy(sw['tls.crt']!, controllerCa['tls.crt']!)).toBe(false);
        expect(new X509Certificate(sw['tls.crt']!).ca).toBe(false);
        expect(
          new X509Certificate(sw['tls.crt']!).checkPrivateKey(createPrivateKey(sw['tls.key']!)),
        ).toBe(true);
        // A switch trusts the controller CA alone.
        expect(sw['ca.crt']).toBe(controllerCa['tls.crt']);
      }
      expect(switches[0]!['tls.key']).not.toBe(switches[1]!['tls.key']);
      expect(switches[0]!['ca.crt']).not.toBe(controller['ca.crt']);
    });

    it('keeps the CA keys in Secrets no pod mounts, and nowhere else', () => {
      const mounted = mountedSecrets(ms);
      expect(mounted).not.toContain('fl-ovs-controller-ca');
      expect(mounted).not.toContain('fl-ovs-switch-ca');
      for (const ca of [controllerCa, switchCa]) {
        const cert = new X509Certificate(ca['tls.crt']!);
        expect(cert.ca).toBe(true);
        expect(cert.checkPrivateKey(createPrivateKey(ca['tls.key']!))).toBe(true);
        const holders = ms
          .filter((m) => m.kind === 'Secret')
          .filter((m) => Object.values(secretData(ms, m.metadata.name)).includes(ca['tls.key']!))
          .map((m) => m.metadata.name);
        expect(holders).toHaveLength(1);
      }
      expect(controllerCa['tls.crt']).not.toBe(switchCa['tls.crt']);
    });

    it("over real TLS: the controller gets into a switch; another node's switch key does not", async () => {
      const files = (f: Record<string, string>): TlsFiles => f as unknown as TlsFiles;
      const [a, b] = [files(switches[0]!), files(switches[1]!)];
      const ok = await mtlsHandshake(a, files(controller));
      expect(ok.ok).toBe(true);
      // Node B's switch certificate presented as the controller (its client trusting switches,
      // so that only the switch can be the side that refuses).
      const asController = { ...b, 'ca.crt': controller['ca.crt']! };
      const refused = await mtlsHandshake(a, asController);
      expect(refused.ok).toBe(false);
      // The client side accepts switch A's certificate (it trusts the switch CA, as above): the
      // switch, trusting the controller CA alone, is the side that ends the handshake.
    });
  });

  describe('cert-manager', () => {
    const out = render('flowline', certManager(), { release: 'fl' });
    const certs = out.filter((m) => m.kind === 'Certificate') as (Manifest & {
      spec: {
        secretName: string;
        commonName?: string;
        dnsNames?: string[];
        usages: string[];
        issuerRef: { name: string; kind: string; group: string };
      };
    })[];
    const ovsCerts = certs.filter((c) => c.metadata.name.startsWith('fl-ovs-'));

    it('asks the switch CA issuer for one certificate per node and the controller CA issuer for the controller', () => {
      expect(
        ovsCerts.map((c) => [c.metadata.name, c.spec.secretName, c.spec.issuerRef.name]),
      ).toEqual([
        ['fl-ovs-controller', 'fl-ovs-tls-controller', 'ovs-controller-ca'],
        ['fl-ovs-switch-node-a', 'fl-ovs-tls-switch-node-a', 'ovs-switch-ca'],
        ['fl-ovs-switch-node-b', 'fl-ovs-tls-switch-node-b', 'ovs-switch-ca'],
      ]);
      for (const c of ovsCerts) {
        expect(certificateProblems(c)).toEqual([]);
        expect(c.spec.usages).toEqual(expect.arrayContaining(['server auth', 'client auth']));
      }
      for (const [i, node] of NODES.entries())
        expect(ovsCerts[i + 1]!.spec).toMatchObject({
          commonName: `ovs-switch.${node}`,
          dnsNames: [`ovs-switch.${node}`],
          issuerRef: { kind: 'ClusterIssuer', group: 'cert-manager.io' },
        });
      // cert-manager writes every OVS Secret: the chart renders none, and no CA key.
      expect(out.filter((m) => m.kind === 'Secret' && m.metadata.name.includes('ovs'))).toEqual([]);
    });

    it("projects tls.key and tls.crt from the pod's own Secret and ca.crt from the other CA's ConfigMap", () => {
      const projection = (secret: string, configMap: string, key: string) => ({
        sources: [
          {
            secret: {
              name: secret,
              items: [
                { key: 'tls.key', path: 'tls.key' },
                { key: 'tls.crt', path: 'tls.crt' },
              ],
            },
          },
          { configMap: { name: configMap, items: [{ key, path: 'ca.crt' }] } },
        ],
      });
      for (const node of NODES)
        expect(
          ovsTlsVolume(find(out, 'DaemonSet', `fl-ovs-dpdk-${node}`))!.projected,
        ).toMatchObject(projection(`fl-ovs-tls-switch-${node}`, 'ovs-controller-ca', 'ca.crt'));
      expect(ovsTlsVolume(find(out, 'Deployment', 'fl-chain-controller'))!.projected).toMatchObject(
        projection('fl-ovs-tls-controller', 'ovs-switch-ca', 'root.pem'),
      );
      const text = notes('flowline', certManager(), 'fl');
      expect(text).toContain("cert-manager's ca.crt is the issuer's own CA");
      expect(text).toContain('ovs-controller-ca[ca.crt]');
    });

    it.each<[string, Values, RegExp]>([
      [
        'no switch issuer',
        certManager({ switchIssuerRef: { name: '' } }),
        /set ovs.remote.tls.certManager.switchIssuerRef.name/,
      ],
      [
        'no controller CA ConfigMap',
        certManager({ controllerCaConfigMap: { name: '' } }),
        /set ovs.remote.tls.certManager.controllerCaConfigMap.name/,
      ],
      [
        'one issuer for both roles',
        certManager({ switchIssuerRef: { name: 'ovs-controller-ca', kind: 'Issuer' } }),
        /must be two issuers of two CAs/,
      ],
      [
        'one CA ConfigMap for both roles',
        certManager({ switchCaConfigMap: { name: 'ovs-controller-ca', key: 'ca.crt' } }),
        /must hold the two different CA certificates/,
      ],
    ])('refuses %s', (_what, values, message) => {
      expect(renderError('flowline', values).stderr).toMatch(message);
    });
  });

  it('gives long node names short, distinct object names and labels', async () => {
    const long = [
      'a'.repeat(40) + '.compute.internal.example',
      'a'.repeat(40) + '.compute.internal.example2',
    ];
    const out = render('flowline', { ovs: { nodes: long } }, { release: 'fl' });
    await validateAll(out);
    const names = daemonSets(out).map((d) => d.metadata.name);
    expect(names).toHaveLength(2);
    expect(new Set(names).size).toBe(2);
    for (const [i, d] of daemonSets(out).entries()) {
      expect(d.metadata.name.length).toBeLessThanOrEqual(63);
      expect(d.metadata.annotations!['flowline.io/node']).toBe(long[i]);
      expect(d.metadata.labels!['flowline.io/node']!.length).toBeLessThanOrEqual(63);
      const secret = ovsTlsVolume(d)!.secret!.secretName;
      expect(certNames(secretData(out, secret)['tls.crt']!).dns).toEqual([`ovs-switch.${long[i]}`]);
    }
    // cert-manager refuses a commonName over 64 characters: the DNS SAN alone names the switch.
    const cm = render('flowline', {
      ...certManager(),
      ovs: { ...(certManager().ovs as Values), nodes: long },
    });
    for (const c of cm.filter(
      (m) => m.kind === 'Certificate' && m.metadata.name.includes('ovs-switch'),
    )) {
      expect(certificateProblems(c)).toEqual([]);
      expect((c.spec as { commonName?: string }).commonName).toBeUndefined();
    }
  });

  it('refuses a node name that is no DNS subdomain', () => {
    expect(renderError('flowline', { ovs: { nodes: ['Node_A'] } }).stderr).toMatch(
      /at '\/ovs\/nodes\/0': 'Node_A' does not match pattern/,
    );
  });
});
