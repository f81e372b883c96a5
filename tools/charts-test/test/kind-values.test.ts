import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { crdValidator } from '../src/crd-schema';
import { find, lint, type Manifest, render, type Values } from '../src/helm';
import { kindDir } from '../src/paths';
import { pinnedProblems, podOf, type PodSpec } from '../src/security';
import { validateAll } from '../src/validate';

/** A tools/kind values file, with what e2e.sh sets on the command line (--set ...=e2e). */
function kindValues(
  file: string,
  set?: (v: Record<string, Record<string, unknown>>) => void,
): Values {
  const v = parse(readFileSync(join(kindDir, 'values', file), 'utf8')) as Record<
    string,
    Record<string, unknown>
  >;
  set?.(v);
  return v;
}

/** The images `e2e.sh load` puts into the cluster, from its own dry run. */
function loadedImages(): string[] {
  const r = spawnSync('bash', [join(kindDir, 'e2e.sh'), '--dry-run', 'load'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`e2e.sh --dry-run load failed: ${r.stderr}`);
  const line = r.stdout.split('\n').find((l) => l.startsWith('+ kind load docker-image'));
  if (!line) throw new Error(`e2e.sh --dry-run load printed no kind load:\n${r.stdout}`);
  return line.split(' ').filter((w) => w.includes('/') && w.includes(':'));
}

function pods(ms: Manifest[]): PodSpec[] {
  return ms
    .filter((m) => ['DaemonSet', 'Deployment', 'StatefulSet'].includes(m.kind))
    .map((m) => podOf(m).spec);
}

/** CPU in millicores from a Kubernetes quantity ("1", "250m"). */
const millicores = (q: string | undefined): number =>
  q === undefined ? 0 : q.endsWith('m') ? Number(q.slice(0, -1)) : Number(q) * 1000;

// The kind cluster's data-plane worker (kind-config.yaml, cluster flowline-e2e), which helm's
// lookup finds at install (label flowline.io/dataplane=true) and `helm template` cannot: named
// here, so that its OVS DaemonSet counts in the CPU and hugepage budgets below.
const WORKER = 'flowline-e2e-worker';
// Release names as e2e.sh installs them.
const flowline = render(
  'flowline',
  kindValues('flowline.yaml', (v) => {
    v.global!.imageTag = 'e2e';
    v.ovs!.nodes = [WORKER];
  }),
  { release: 'flowline' },
);
const nfs = ['traffic-gen', 'firewall', 'router'].map((nf) => ({
  nf,
  manifests: render(
    'network-function',
    kindValues(`${nf}.yaml`, (v) => (v.image!.tag = 'e2e')),
    { release: nf, namespace: 'flowline-e2e' },
  ),
}));

describe('tools/kind values and manifests', () => {
  it('lint and render valid Kubernetes objects with both charts', async () => {
    expect(lint('flowline', kindValues('flowline.yaml'))).toMatch(/0 chart\(s\) failed/);
    await validateAll(flowline);
    for (const { nf, manifests } of nfs) {
      expect(lint('network-function', kindValues(`${nf}.yaml`))).toMatch(/0 chart\(s\) failed/);
      await validateAll(manifests);
    }
  });

  it("run OVS on the data-plane worker with that node's switch certificate", () => {
    const ovs = flowline.filter((m) => m.kind === 'DaemonSet' && m.metadata.name.includes('ovs'));
    expect(ovs.map((m) => m.metadata.name)).toEqual([`flowline-ovs-dpdk-${WORKER}`]);
    expect(podOf(ovs[0]!).spec.volumes).toContainEqual({
      name: 'ovs-tls',
      secret: { secretName: `flowline-ovs-tls-switch-${WORKER}`, defaultMode: 0o400 },
    });
  });

  it('use only images e2e.sh loads into the cluster, never pulled', () => {
    const loaded = new Set(loadedImages());
    const containers = [flowline, ...nfs.map((n) => n.manifests)]
      .flatMap(pods)
      .flatMap((p) => p.containers);
    expect(containers.length).toBeGreaterThan(5);
    for (const c of containers) {
      expect(loaded, `${c.name} uses ${c.image}`).toContain(c.image);
      expect((c as { imagePullPolicy?: string }).imagePullPolicy, c.name).toBe('Never');
    }
  });

  it('pin one CPU per NF and fit a 4-vCPU runner after kubelet reserves one for the shared pool', () => {
    let exclusive = 0;
    let requested = 0;
    for (const { nf, manifests } of nfs) {
      const c = podOf(find(manifests, 'StatefulSet', nf)).spec.containers[0]!;
      expect(pinnedProblems(c)).toEqual([]);
      exclusive += millicores(c.resources!.limits!.cpu);
    }
    for (const p of [flowline, ...nfs.map((n) => n.manifests)].flatMap(pods))
      for (const c of p.containers) requested += millicores(c.resources?.requests?.cpu);
    expect(exclusive).toBe(3000);
    // kubeReserved 100m (kind-config.yaml); kindnet and Multus ask 100m each on the worker.
    expect(requested + 200).toBeLessThanOrEqual(4000 - 100);
  });

  it('fit in the 2 MiB hugepages e2e.sh reserves', () => {
    const script = readFileSync(join(kindDir, 'e2e.sh'), 'utf8');
    const pages = Number(/^hugepages=(\d+)$/m.exec(script)?.[1]);
    expect(pages).toBeGreaterThan(0);
    const mib = (q: string | undefined): number =>
      q === undefined
        ? 0
        : q.endsWith('Gi')
          ? Number(q.slice(0, -2)) * 1024
          : Number(q.slice(0, -2));
    const wanted = [flowline, ...nfs.map((n) => n.manifests)]
      .flatMap(pods)
      .flatMap((p) => p.containers)
      .reduce((n, c) => n + mib(c.resources?.limits?.['hugepages-2Mi']), 0);
    expect(wanted).toBeGreaterThan(0);
    expect(wanted).toBeLessThanOrEqual(pages * 2);
  });

  it('point the device plugin at the emulated tree, with a pool that takes its kernel VFs', () => {
    const cm = find(flowline, 'ConfigMap', 'flowline-device-plugin');
    const config = JSON.parse((cm.data as Record<string, string>)['config.json']!) as {
      pools: { name: string; deviceType: string; selectors: { drivers: string[] } }[];
    };
    expect(config.pools).toEqual([
      expect.objectContaining({
        name: 'sriov_vf',
        deviceType: 'netdevice',
        selectors: expect.objectContaining({ drivers: ['iavf'] }),
      }),
    ]);
    const sysfs = podOf(find(flowline, 'DaemonSet', 'flowline-device-plugin')).spec.volumes!.find(
      (v) => v.name === 'sysfs',
    )!;
    expect(sysfs.hostPath!.path).toBe('/var/lib/flowline/emulated-sysfs');
  });

  it('ship a ServiceChain the CRD accepts, naming the NF pods of the releases', () => {
    const crd = find(render('flowline'), 'CustomResourceDefinition', 'servicechains.flowline.io');
    const chain = parse(readFileSync(join(kindDir, 'manifests', 'servicechain.yaml'), 'utf8')) as {
      spec: {
        hops: { nf: string }[];
        classifier: { ingress: { nf: string } };
        egress: { nf: string };
      };
    };
    expect(crdValidator(crd, 'v1alpha1')(chain)).toEqual([]);
    const pods = nfs.map(
      ({ nf, manifests }) => `${find(manifests, 'StatefulSet', nf).metadata.name}-0`,
    );
    expect(chain.spec.hops.map((h) => h.nf)).toEqual(pods.slice(1));
    expect(chain.spec.classifier.ingress.nf).toBe(pods[0]);
    expect(chain.spec.egress.nf).toBe(pods[0]);
  });

  it('ship a VF probe pod that is valid and asks for the pool the device plugin serves', async () => {
    const docs = parseAllDocuments(
      readFileSync(join(kindDir, 'manifests', 'vf-probe.yaml'), 'utf8'),
    ).map((d) => d.toJS() as Manifest);
    await validateAll(docs);
    const pod = docs[0]! as Manifest & { spec: PodSpec };
    expect(pod.spec.containers[0]!.resources!.limits!['flowline.io/sriov_vf']).toBe('1');
    expect(loadedImages()).toContain(pod.spec.containers[0]!.image);
  });
});
