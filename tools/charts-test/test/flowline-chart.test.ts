import { parseConfig } from '@flowline/device-plugin';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { crdValidator } from '../src/crd-schema';
import { find, lint, type Manifest, notes, render, renderError, type Values } from '../src/helm';
import { envOf, pinnedProblems, podOf, securityProblems } from '../src/security';
import { repoRoot } from '../src/paths';
import { validateAll } from '../src/validate';

/** Value sets the chart must render into valid manifests. */
const valueSets: Record<string, { values: Values }> = {
  defaults: { values: {} },
  'PCI allow-list, explicit PMD mask, conflist CNI, one watched namespace': {
    values: {
      ovs: {
        nodes: ['node-a'],
        pmdCpuMask: '0x6',
        resources: { cpu: 3, memory: '2Gi', hugepages2Mi: '2Gi' },
        dpdk: { allowList: ['0000:3b:00.0', '0000:3b:00.1'], extraArgs: ['--iova-mode=va'] },
      },
      cni: { mode: 'conflist', ipam: null },
      chainController: { watchNamespace: 'nfs' },
    },
  },
  'uplink from a device-plugin pool, two pools, ServiceMonitor, no dashboard, no CRD': {
    values: {
      ovs: { nodes: ['node-a'], dpdk: { uplinkPool: 'ovs_uplink', uplinkCount: 2 } },
      devicePlugin: {
        pools: [
          {
            name: 'sriov_vf',
            deviceType: 'vfio-pci',
            selectors: { vendors: ['8086'], pfNames: ['ens1f0#0-3'], numaNodes: [0] },
          },
          {
            name: 'ovs_uplink',
            deviceType: 'vfio-pci',
            allocationPolicy: 'pack',
            selectors: { pfNames: ['ens2f0'] },
          },
        ],
      },
      metrics: {
        serviceMonitor: { enabled: true, labels: { release: 'prometheus' } },
        grafanaDashboard: { enabled: false },
      },
      crds: { install: false },
    },
  },
  'only the node parts': {
    values: { chainController: { enabled: false }, crds: { install: false } },
  },
};

describe('charts/flowline', () => {
  for (const [name, set] of Object.entries(valueSets)) {
    it(`lints and renders valid Kubernetes objects: ${name}`, async () => {
      expect(lint('flowline', set.values)).toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
      const ms = render('flowline', set.values);
      expect(ms.length).toBeGreaterThan(2);
      await validateAll(ms);
    });
  }

  // With OVS over SSL (the default) OVS runs as one DaemonSet per node: helm template cannot
  // look Nodes up, so the tests name them (ovs.nodes).
  const ms = render('flowline', { ovs: { nodes: ['node-a'] } });

  it('runs OVS-DPDK pinned, with hugepages, the shared socket dir and --no-pci by default', () => {
    const ds = find(ms, 'DaemonSet', 'test-ovs-dpdk-node-a');
    const pod = podOf(ds);
    const c = pod.spec.containers[0]!;
    expect(pinnedProblems(c)).toEqual([]);
    expect(c.resources!.limits!['hugepages-2Mi']).toBe('1Gi');
    expect(c.resources!.limits!.cpu).toBe('2');
    expect(securityProblems(c, ['IPC_LOCK', 'NET_ADMIN', 'SYS_NICE'])).toEqual([]);
    expect(c.securityContext!.capabilities!.add).toContain('IPC_LOCK');
    const env = envOf(c);
    expect(env.FLOWLINE_OVS_PCI_ALLOW).toBe(''); // no allow-list: the start script passes --no-pci
    expect(env.FLOWLINE_OVS_BRIDGE).toBe('br-flowline');
    expect(env.FLOWLINE_OVS_PMD_CPU_MASK).toBe('auto');
    // OVS opens socket paths the CNI plugin wrote: host and container paths must be the same.
    const sockets = pod.spec.volumes!.find((v) => v.name === 'vhost-sockets')!;
    expect(sockets.hostPath!.path).toBe('/run/flowline/vhost');
    expect(c.volumeMounts!.find((m) => m.name === 'vhost-sockets')!.mountPath).toBe(
      '/run/flowline/vhost',
    );
    expect(pod.spec.volumes!.find((v) => v.name === 'hugepages')!.emptyDir!.medium).toBe(
      'HugePages-2Mi',
    );
    expect(pod.spec.volumes!.find((v) => v.name === 'ovs-run')!.hostPath!.path).toBe(
      '/var/run/openvswitch',
    );
    expect(c.readinessProbe).toMatchObject({
      exec: { command: ['ovs-vsctl', '--timeout=5', 'br-exists', 'br-flowline'] },
    });
  });

  it('passes an allow-list or a device-plugin pool to OVS, never both', () => {
    const allow = podOf(
      find(
        render(
          'flowline',
          valueSets['PCI allow-list, explicit PMD mask, conflist CNI, one watched namespace']!
            .values,
        ),
        'DaemonSet',
        'test-ovs-dpdk-node-a',
      ),
    );
    const env = envOf(allow.spec.containers[0]!);
    expect(env.FLOWLINE_OVS_PCI_ALLOW).toBe('0000:3b:00.0,0000:3b:00.1');
    expect(env.FLOWLINE_OVS_DPDK_EXTRA).toBe('--iova-mode=va');
    expect(env.FLOWLINE_OVS_PMD_CPU_MASK).toBe('0x6');
    const set =
      valueSets[
        'uplink from a device-plugin pool, two pools, ServiceMonitor, no dashboard, no CRD'
      ]!;
    const pool = podOf(find(render('flowline', set.values), 'DaemonSet', 'test-ovs-dpdk-node-a'))
      .spec.containers[0]!;
    expect(envOf(pool).FLOWLINE_OVS_PCI_FROM_ENV).toBe('PCIDEVICE_FLOWLINE_IO_OVS_UPLINK');
    expect(pool.resources!.limits!['flowline.io/ovs_uplink']).toBe('2');
    expect(pinnedProblems(pool)).toEqual([]);
    // A test cluster short of cores: a CPU share, unpinned, with the PMD sleeping when idle.
    const shared = podOf(
      find(
        render('flowline', {
          ovs: { nodes: ['node-a'], resources: { cpu: '250m' }, pmdMaxSleepUs: 50 },
        }),
        'DaemonSet',
        'test-ovs-dpdk-node-a',
      ),
    ).spec.containers[0]!;
    expect(shared.resources!.requests!.cpu).toBe('250m');
    expect(shared.resources!.limits!.cpu).toBe('250m');
    expect(envOf(shared).FLOWLINE_OVS_PMD_MAXSLEEP).toBe('50');
    expect(() =>
      render('flowline', { ovs: { dpdk: { allowList: ['0000:3b:00.0'], uplinkPool: 'x' } } }),
    ).toThrow(/set either allowList \(PCI addresses\) or uplinkPool/);
  });

  it('gives the device plugin its pool config, kubelet folder and a read-only sysfs', () => {
    const cm = find(ms, 'ConfigMap', 'test-device-plugin');
    const config = JSON.parse((cm.data as Record<string, string>)['config.json']!);
    expect(config).toEqual({
      hugepages: { resource: false },
      pools: [
        {
          name: 'sriov_vf',
          deviceType: 'vfio-pci',
          selectors: { vendors: ['8086'], devices: ['154c', '1889'], drivers: ['vfio-pci'] },
        },
      ],
    });
    const pod = podOf(find(ms, 'DaemonSet', 'test-device-plugin'));
    const c = pod.spec.containers[0]!;
    expect(securityProblems(c, [])).toEqual([]);
    expect(c.securityContext!.capabilities!.add).toBeUndefined();
    expect(c.volumeMounts!.find((m) => m.name === 'sysfs')).toMatchObject({
      mountPath: '/host/sys',
      readOnly: true,
    });
    expect(pod.spec.volumes!.find((v) => v.name === 'device-plugins')!.hostPath!.path).toBe(
      '/var/lib/kubelet/device-plugins',
    );
    expect(envOf(c)).toMatchObject({
      FLOWLINE_DP_CONFIG: '/etc/flowline/device-plugin/config.json',
      FLOWLINE_DP_SYSFS_ROOT: '/host/sys',
      FLOWLINE_DP_PLUGIN_DIR: '/var/lib/kubelet/device-plugins',
    });
    expect(c.args).toEqual(['serve', '--devinfo-dir', '/var/run/k8s.cni.cncf.io/devinfo/dp']);
    // The devinfo folder the daemon is told about is the one mounted from the host.
    expect(c.volumeMounts!.find((m) => m.name === 'devinfo')!.mountPath).toBe(c.args![2]);
  });

  it("writes a pool config the device plugin's own parser accepts, for every value set", () => {
    for (const [name, set] of Object.entries(valueSets)) {
      const out = render('flowline', set.values);
      const cm = out.find(
        (m) => m.kind === 'ConfigMap' && m.metadata.name === 'test-device-plugin',
      );
      if (!cm) continue;
      const text = (cm.data as Record<string, string>)['config.json']!;
      const parsed = parseConfig(JSON.parse(text));
      expect(parsed.pools.length, name).toBeGreaterThan(0);
      for (const pool of parsed.pools) expect(pool.resourceName).toBe(`flowline.io/${pool.name}`);
    }
    const hp = render('flowline', { devicePlugin: { hugepagesResource: true } });
    const cm = find(hp, 'ConfigMap', 'test-device-plugin');
    expect(
      parseConfig(JSON.parse((cm.data as Record<string, string>)['config.json']!)).hugepages,
    ).toMatchObject({ resource: true, mount: true, hostPath: '/dev/hugepages' });
  });

  it('reads its settings from the variables the device plugin CLI knows', () => {
    const c = podOf(find(ms, 'DaemonSet', 'test-device-plugin')).spec.containers[0]!;
    const cli = readFileSync(join(repoRoot, 'device-plugin', 'src', 'cli.ts'), 'utf8');
    for (const name of Object.keys(envOf(c)).filter((n) => n.startsWith('FLOWLINE_')))
      expect(cli, `${name} is not read by device-plugin/src/cli.ts`).toContain(name);
  });

  it('installs the CNI plugin and declares the network of contract 2 (docs/architecture.md#cni-to-switch-and-pod; Multus by default)', () => {
    const nad = find(ms, 'NetworkAttachmentDefinition', 'flowline-vhost');
    expect(JSON.parse((nad.spec as { config: string }).config)).toEqual({
      cniVersion: '1.1.0',
      name: 'flowline-vhost',
      type: 'flowline',
      bridge: 'br-flowline',
      socketDir: '/run/flowline/vhost',
      ovsdbSocket: '/var/run/openvswitch/db.sock',
      mtu: 1500,
      ipam: { type: 'host-local', ranges: [[{ subnet: '10.56.0.0/16' }]] },
    });
    const c = podOf(find(ms, 'DaemonSet', 'test-cni')).spec.containers[0]!;
    expect(securityProblems(c, [])).toEqual([]);
    expect(envOf(c)).toMatchObject({
      FLOWLINE_CNI_BIN_DIR: '/host/cni/bin',
      FLOWLINE_CNI_INSTALL_DIR: '/opt/flowline',
    });
    expect(envOf(c).FLOWLINE_CNI_CONF_DIR).toBeUndefined();
  });

  it('runs the resident CNI daemon beside the installer, with the host paths the plugin touches', () => {
    const pod = podOf(find(ms, 'DaemonSet', 'test-cni'));
    const d = pod.spec.containers.find((x) => x.name === 'daemon')!;
    expect(d.command).toEqual([
      'node',
      '/opt/flowline-cni/flowline-cni.js',
      'daemon',
      '--socket',
      '/run/flowline/cni.sock',
    ]);
    expect(securityProblems(d, [])).toEqual([]);
    const mounts = Object.fromEntries(d.volumeMounts!.map((m) => [m.mountPath, m.name]));
    const hostPathOf = (volume: string) =>
      pod.spec.volumes!.find((v) => v.name === volume)!.hostPath!.path;
    // Each at the host's own path: the runtime's CNI_PATH, CNI_NETNS and the network config
    // name host paths, and the executable on the host connects to /run/flowline/cni.sock.
    for (const path of [
      '/run/flowline',
      '/run/flowline/vhost',
      '/var/run/openvswitch',
      '/opt/cni/bin',
      // host-local's store (cni.ipam), not the rest of /var/lib/cni
      '/var/lib/cni/networks',
      // NPWG device-info files, read on the host by Multus.
      '/var/run/k8s.cni.cncf.io/devinfo/cni',
      '/var/run/netns',
    ])
      expect(hostPathOf(mounts[path]!), path).toBe(path);
    expect(Object.keys(mounts).filter((p) => p.startsWith('/var/lib/cni'))).toEqual([
      '/var/lib/cni/networks',
    ]);
    // Health is a VERSION round trip through the daemon (no in-process fallback allowed).
    const probe = {
      command: [
        'env',
        'CNI_COMMAND=VERSION',
        'FLOWLINE_CNI_NO_FALLBACK=1',
        '/opt/flowline-cni/flowline',
      ],
    };
    expect(d.readinessProbe).toMatchObject({ exec: probe });
    expect(d.livenessProbe).toMatchObject({ exec: probe });

    // Its metrics port, scraped through a headless Service the ServiceMonitor selects.
    expect(envOf(d).FLOWLINE_METRICS_PORT).toBe('9466');
    expect(d.ports).toContainEqual({ name: 'metrics', containerPort: 9466, protocol: 'TCP' });
    const svc = find(ms, 'Service', 'test-cni') as unknown as {
      metadata: { labels: Record<string, string> };
      spec: { clusterIP: string; ports: { name: string; port: number }[] };
    };
    expect(svc.metadata.labels['flowline.io/metrics']).toBe('true');
    expect(svc.spec).toMatchObject({ clusterIP: 'None', ports: [{ name: 'metrics', port: 9466 }] });

    const off = render('flowline', { cni: { daemon: { enabled: false } } });
    expect(off.some((m) => m.kind === 'Service' && m.metadata.name === 'test-cni')).toBe(false);
    const offPod = podOf(find(off, 'DaemonSet', 'test-cni'));
    expect(offPod.spec.containers.map((x) => x.name)).toEqual(['install']);
    expect(offPod.spec.volumes!.map((v) => v.name)).not.toContain('daemon-run');
  });

  it('writes a conflist instead in conflist mode', () => {
    const out = render('flowline', { cni: { mode: 'conflist', ipam: null } });
    expect(out.some((m) => m.kind === 'NetworkAttachmentDefinition')).toBe(false);
    const conflist = JSON.parse(
      (find(out, 'ConfigMap', 'test-cni').data as Record<string, string>)[
        'flowline-vhost.conflist'
      ]!,
    );
    expect(conflist).toEqual({
      cniVersion: '1.1.0',
      name: 'flowline-vhost',
      plugins: [
        {
          type: 'flowline',
          bridge: 'br-flowline',
          socketDir: '/run/flowline/vhost',
          ovsdbSocket: '/var/run/openvswitch/db.sock',
          mtu: 1500,
        },
      ],
    });
    const c = podOf(find(out, 'DaemonSet', 'test-cni')).spec.containers[0]!;
    expect(envOf(c).FLOWLINE_CNI_CONFLIST).toBe('/etc/flowline/cni/flowline-vhost.conflist');
  });

  it('runs the chain controller as non-root with gRPC probes (health port) and least-privilege RBAC', () => {
    const pod = podOf(find(ms, 'Deployment', 'test-chain-controller'));
    expect(pod.spec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 65532 });
    const c = pod.spec.containers[0]!;
    expect(securityProblems(c, [])).toEqual([]);
    // Kubelet's probes carry no client certificate: the plaintext health-only port.
    expect(c.readinessProbe).toMatchObject({ grpc: { port: 8081 } });
    expect(c.livenessProbe).toMatchObject({ grpc: { port: 8081 } });
    expect(envOf(c)).toMatchObject({
      FLOWLINE_GRPC_ADDRESS: '0.0.0.0:50051',
      FLOWLINE_KUBERNETES: '1',
      FLOWLINE_BRIDGE: 'br-flowline',
    });
    // Its one writable place is the /tmp emptyDir (read-only root filesystem).
    expect(envOf(c).FLOWLINE_CHAIN_STATE).toMatch(/^\/tmp\//);
    expect(c.volumeMounts).toContainEqual({ name: 'tmp', mountPath: '/tmp' });
    // Settings the controller's CLI has today are passed under the names it reads.
    const main = readFileSync(
      join(repoRoot, 'services', 'chain-controller', 'src', 'main.ts'),
      'utf8',
    );
    for (const name of [
      'FLOWLINE_GRPC_ADDRESS',
      'FLOWLINE_METRICS_PORT',
      'FLOWLINE_BRIDGE',
      'FLOWLINE_KUBERNETES',
      'FLOWLINE_WATCH_NAMESPACE',
      'FLOWLINE_OVSDB_REMOTE',
      'FLOWLINE_OPENFLOW_REMOTE',
      'FLOWLINE_CHAIN_STATE',
      'FLOWLINE_UNDERLAY_MTU',
    ])
      expect(main, `${name} is not read by services/chain-controller/src/main.ts`).toContain(name);
    // The controller's own role (the ServiceChain editor and viewer roles are for users).
    const rules = ms
      .filter(
        (m) =>
          (m.kind === 'ClusterRole' || m.kind === 'Role') &&
          m.metadata.name === 'test-chain-controller',
      )
      .flatMap((r) => r.rules as { apiGroups: string[]; resources: string[]; verbs: string[] }[]);
    for (const r of rules) {
      expect(r.verbs).not.toContain('*');
      expect(r.resources).not.toContain('*');
      expect(r.resources).not.toContain('secrets');
    }
    const verbsOf = (res: string) =>
      rules
        .filter((r) => r.resources.includes(res))
        .flatMap((r) => r.verbs)
        .sort();
    // Exactly the calls the reconciler makes: its tests check them against rbac.json.
    const needed = JSON.parse(
      readFileSync(
        join(repoRoot, 'services', 'chain-controller', 'src', 'kube', 'rbac.json'),
        'utf8',
      ),
    ) as { rules: { apiGroups: string[]; resources: string[]; verbs: string[] }[] };
    const granted = rules.flatMap((r) =>
      r.apiGroups.flatMap((g) =>
        r.resources.flatMap((res) => r.verbs.map((v) => `${g}:${v} ${res}`)),
      ),
    );
    const wanted = needed.rules.flatMap((r) =>
      r.apiGroups.flatMap((g) =>
        r.resources.flatMap((res) => r.verbs.map((v) => `${g}:${v} ${res}`)),
      ),
    );
    expect(granted.sort()).toEqual(wanted.sort());
    expect(verbsOf('servicechains')).toEqual(['get', 'list', 'patch', 'update', 'watch']);
    expect(verbsOf('servicechains/status')).toEqual(['patch']);
    expect(verbsOf('pods')).toEqual(['list', 'watch']);
    // One watched namespace: namespaced rights shrink to a Role there.
    const scoped = render('flowline', { chainController: { watchNamespace: 'nfs' } });
    expect(find(scoped, 'Role', 'test-chain-controller').metadata.namespace).toBe('nfs');
    expect(
      scoped.some((m) => m.kind === 'ClusterRole' && m.metadata.name === 'test-chain-controller'),
    ).toBe(false);
  });

  describe('the ServiceChain CRD', () => {
    const crd = find(ms, 'CustomResourceDefinition', 'servicechains.flowline.io');
    const validate = crdValidator(crd, 'v1alpha1');
    const chain = (spec: Record<string, unknown>) => ({
      apiVersion: 'flowline.io/v1alpha1',
      kind: 'ServiceChain',
      metadata: { name: 'c' },
      spec,
    });
    const good = {
      classifier: {
        ingress: { nf: 'traffic-gen-0', interface: 'net1' },
        match: {
          ipVersion: 4,
          protocol: 'udp',
          srcCIDR: '10.0.0.0/8',
          dstPorts: { from: 1000, to: 2000 },
        },
      },
      hops: [
        { nf: 'firewall-0', ingress: 'net1', egress: 'net2' },
        { nf: 'router-0', ingress: 'net1', egress: 'net2' },
      ],
      egress: { nf: 'traffic-gen-0', interface: 'net2' },
      failurePolicy: 'bypass',
    };

    it('is flowline.io, served as v1alpha1, with a status subresource', () => {
      const spec = crd.spec as {
        group: string;
        scope: string;
        versions: { name: string; served: boolean; storage: boolean; subresources: object }[];
      };
      expect(spec.group).toBe('flowline.io');
      expect(spec.scope).toBe('Namespaced');
      expect(spec.versions).toHaveLength(1);
      expect(spec.versions[0]).toMatchObject({
        name: 'v1alpha1',
        served: true,
        storage: true,
        subresources: { status: {} },
      });
    });

    it('accepts a chain with a classifier, ordered hops, a failure policy and status conditions', () => {
      expect(validate(chain(good))).toEqual([]);
      expect(
        validate(
          chain({
            ...good,
            bidirectional: true,
            priority: 1000,
            failurePolicy: 'fail-closed',
          }),
        ),
      ).toEqual([]);
      const withStatus = {
        ...chain(good),
        // As services/chain-controller's reconciler writes it.
        status: {
          observedGeneration: 2,
          phase: 'Degraded',
          hopCount: 2,
          hops: [
            {
              nf: 'firewall-0',
              node: 'w1',
              healthy: true,
              bypassed: false,
              ingressPort: 'vhu-a',
              egressPort: 'vhu-b',
            },
            { nf: 'router-0', node: 'w1', healthy: false, bypassed: true, message: 'NOT_SERVING' },
          ],
          conditions: [
            {
              type: 'Ready',
              status: 'False',
              observedGeneration: 2,
              reason: 'HopDown',
              message: 'nfs/router-0 down: bypassed',
              lastTransitionTime: '2026-01-01T00:00:00Z',
            },
            {
              type: 'Degraded',
              status: 'True',
              observedGeneration: 2,
              reason: 'HopDown',
              message: 'nfs/router-0 down: bypassed',
              lastTransitionTime: '2026-01-01T00:00:00Z',
            },
          ],
        },
      };
      expect(validate(withStatus)).toEqual([]);
      expect(
        validate({ ...withStatus, status: { ...withStatus.status, phase: 'Up' } }),
      ).not.toEqual([]);
    });

    it.each([
      [
        'an unknown failure policy',
        { ...good, failurePolicy: 'fail-open' },
        /\/spec\/failurePolicy must be equal to one of the allowed values/,
      ],
      ['no hops', { ...good, hops: [] }, /\/spec\/hops must NOT have fewer than 1 items/],
      [
        'no egress after the last hop',
        { classifier: good.classifier, hops: good.hops },
        /\/spec must have required property 'egress'/,
      ],
      ['a priority out of range', { ...good, priority: 0 }, /\/spec\/priority must be >= 1/],
      [
        'a hop without egress',
        { ...good, hops: [{ nf: 'firewall-0', ingress: 'net1' }] },
        /\/spec\/hops\/0 must have required property 'egress'/,
      ],
      [
        'a port out of range',
        { ...good, classifier: { ...good.classifier, match: { dstPorts: { from: 70000 } } } },
        /dstPorts\/from must be <= 65535/,
      ],
      [
        'a bad protocol',
        { ...good, classifier: { ...good.classifier, match: { protocol: 'http' } } },
        /match\/protocol must be equal to one of the allowed values/,
      ],
      [
        'an interface name too long for a netdev',
        { ...good, hops: [{ nf: 'f', ingress: 'a-very-long-interface', egress: 'net2' }] },
        /hops\/0\/ingress must match pattern/,
      ],
      [
        'an egress that names no interface',
        { ...good, egress: { nf: 'traffic-gen-0' } },
        /\/spec\/egress must have required property 'interface'/,
      ],
    ])('refuses %s', (_what, spec, message) => {
      expect(validate(chain(spec)).join('\n')).toMatch(message);
    });

    describe('names no raw OVS port (tenancy: ovsPort is for the operator only)', () => {
      // kubectl's default strict field validation: an undeclared field is an error.
      const strict = crdValidator(crd, 'v1alpha1', { unknownFields: 'strict' });
      /** Every key of the schema, at any depth (property names and keywords alike). */
      const keys = (node: unknown): string[] =>
        Array.isArray(node)
          ? node.flatMap(keys)
          : node && typeof node === 'object'
            ? Object.entries(node).flatMap(([k, v]) => [k, ...keys(v)])
            : [];
      const schemaKeys = keys(
        (crd.spec as { versions: { schema: { openAPIV3Schema: unknown } }[] }).versions[0]!.schema
          .openAPIV3Schema,
      );

      it('declares no ovsPort field and no oneOf anywhere in the schema', () => {
        expect(schemaKeys).toContain('interface');
        expect(schemaKeys).not.toContain('ovsPort');
        expect(schemaKeys).not.toContain('oneOf');
      });

      it.each([
        [
          'an ingress OVS port',
          { ...good, classifier: { ingress: { ovsPort: 'dpdk0' } } },
          'ingress',
        ],
        ['an egress OVS port', { ...good, egress: { ovsPort: 'dpdk1' } }, 'egress'],
      ])('refuses %s alone: nf and interface are required', (_what, spec, where) => {
        const errors = validate(chain(spec)).join('\n');
        expect(errors).toMatch(new RegExp(`/${where} must have required property 'nf'`));
        expect(errors).toMatch(new RegExp(`/${where} must have required property 'interface'`));
        expect(strict(chain(spec)).join('\n')).toMatch(/must NOT have additional properties/);
      });

      it.each([
        [
          'an ingress',
          {
            ...good,
            classifier: {
              ...good.classifier,
              ingress: { nf: 'a', interface: 'net1', ovsPort: 'p' },
            },
          },
        ],
        [
          'an egress',
          { ...good, egress: { nf: 'traffic-gen-0', interface: 'net2', ovsPort: 'p' } },
        ],
      ])(
        'refuses %s with an ovsPort beside its pod interface (strict field validation)',
        (_what, spec) => {
          expect(strict(chain(good))).toEqual([]);
          expect(strict(chain(spec))).toEqual([
            expect.stringMatching(/must NOT have additional properties/),
          ]);
        },
      );
    });
  });

  it('ships the dashboard and, when asked, a ServiceMonitor for every flowline.io/metrics Service', () => {
    expect(find(ms, 'ConfigMap', 'test-metrics-dashboard').metadata.labels).toMatchObject({
      grafana_dashboard: '1',
    });
    expect(ms.some((m) => m.kind === 'ServiceMonitor')).toBe(false);
    const set =
      valueSets[
        'uplink from a device-plugin pool, two pools, ServiceMonitor, no dashboard, no CRD'
      ]!;
    const out = render('flowline', set.values);
    const sm = find(out, 'ServiceMonitor');
    expect(sm.spec).toMatchObject({
      selector: { matchLabels: { 'flowline.io/metrics': 'true' } },
      namespaceSelector: { any: true },
    });
    expect(sm.metadata.labels).toMatchObject({ release: 'prometheus' });
    const scraped = out.filter(
      (m: Manifest) =>
        m.kind === 'Service' && m.metadata.labels?.['flowline.io/metrics'] === 'true',
    );
    expect(scraped.map((s) => s.metadata.name).sort()).toEqual([
      'test-chain-controller',
      'test-cni',
      'test-device-plugin',
    ]);
  });

  it('prints NOTES with the annotation pods use and the chain controller address', () => {
    const text = notes('flowline', {}, 'fl');
    expect(text).toContain(
      'k8s.v1.cni.cncf.io/networks: flowline/flowline-vhost@net1, flowline/flowline-vhost@net2',
    );
    expect(text).toContain('fl-chain-controller.flowline.svc:50051');
    expect(text).toContain('dpdk-extra: --no-pci');
    expect(text).toContain("each node's OVS at ssl:<node IP>:6640 and :6653.");
    expect(text).toContain('Secrets fl-ovs-tls-switch-<node>');
    expect(text).toContain('raw OVS ports\n  (ovsPort) are refused');
    const plain = notes('flowline', { ovs: { remote: { tls: { enabled: false } } } }, 'fl');
    expect(plain).toContain('tcp:<node IP>:6640');
    expect(plain).toContain('plain TCP');
  });

  describe("OVS's OVSDB and OpenFlow listeners on the node IP", () => {
    const ovsContainer = (values: Values) => {
      const out = render('flowline', {
        ...values,
        ovs: { nodes: ['node-a'], ...(values.ovs as Values | undefined) },
      });
      const ds = out.find((m) => m.kind === 'DaemonSet' && m.metadata.name.startsWith('test-ovs'))!;
      const pod = podOf(ds);
      return { pod, c: pod.spec.containers[0]!, out };
    };

    it('are SSL by default, for the chain controller', () => {
      const { c, pod } = ovsContainer({});
      expect(envOf(c)).toMatchObject({
        FLOWLINE_OVSDB_REMOTE: 'pssl:6640:$(NODE_IP)',
        FLOWLINE_OPENFLOW_LISTEN: 'pssl:6653:$(NODE_IP)',
        FLOWLINE_OVS_TLS_DIR: '/etc/flowline/ovs-tls',
      });
      expect(c.ports!.map((p) => p.containerPort)).toEqual([6640, 6653]);
      expect(pod.spec.volumes!.some((v) => v.name === 'ovs-tls')).toBe(true);
    });

    it('are none without the chain controller (not plain TCP): empty, no ports, no certificates, NOTES say so', () => {
      for (const tls of [true, false]) {
        const values = {
          chainController: { enabled: false },
          ovs: { remote: { tls: { enabled: tls } } },
        };
        const { c, pod, out } = ovsContainer(values);
        const env = envOf(c);
        // Present and empty: the start script then removes listeners conf.db kept.
        expect(env.FLOWLINE_OVSDB_REMOTE, `tls ${tls}`).toBe('');
        expect(env.FLOWLINE_OPENFLOW_LISTEN, `tls ${tls}`).toBe('');
        expect(env.FLOWLINE_OVS_TLS_DIR).toBeUndefined();
        for (const v of Object.values(env)) expect(v).not.toMatch(/p(tcp|ssl):/);
        expect(c.ports).toBeUndefined();
        expect(pod.spec.volumes!.some((v) => v.name === 'ovs-tls')).toBe(false);
        expect(out.some((m) => m.kind === 'Secret' && m.metadata.name.includes('ovs-'))).toBe(
          false,
        );
        const text = notes('flowline', values, 'fl');
        expect(text).toContain('No OVSDB or OpenFlow listener on the network');
        expect(text).toContain('/var/run/openvswitch/db.sock');
        expect(text).not.toContain('plain TCP');
      }
      expect(notes('flowline', {}, 'fl')).not.toContain('No OVSDB or OpenFlow listener');
    });

    it('are plain TCP only when ovs.remote.tls.enabled is set false, and NOTES warn', () => {
      const values = { ovs: { remote: { tls: { enabled: false } } } };
      const { c } = ovsContainer(values);
      expect(envOf(c)).toMatchObject({
        FLOWLINE_OVSDB_REMOTE: 'ptcp:6640:$(NODE_IP)',
        FLOWLINE_OPENFLOW_LISTEN: 'ptcp:6653:$(NODE_IP)',
      });
      expect(notes('flowline', values, 'fl')).toMatch(
        /WARNING: ovs\.remote\.tls\.enabled=false: OVSDB and OpenFlow[\s\S]*plain TCP without authentication: every node's OVS listens on <node IP>:6640\s+and :6653/,
      );
      expect(notes('flowline', {}, 'fl')).not.toContain('WARNING: ovs.remote.tls');
    });
  });

  it('honours global.ovsRunDir: the OVS container, its tools and probes (OVS_RUNDIR), the CNI daemon and the network config', () => {
    const values = { global: { ovsRunDir: '/run/ovs' }, ovs: { nodes: ['node-a'] } };
    const out = render('flowline', values);
    const pod = podOf(find(out, 'DaemonSet', 'test-ovs-dpdk-node-a'));
    const c = pod.spec.containers[0]!;
    expect(pod.spec.volumes!.find((v) => v.name === 'ovs-run')!.hostPath!.path).toBe('/run/ovs');
    expect(c.volumeMounts!.find((m) => m.name === 'ovs-run')!.mountPath).toBe('/run/ovs');
    // The probes' ovs-vsctl and ovs-appctl find db.sock and ovs-vswitchd's pid file by it.
    expect(envOf(c)).toMatchObject({ OVS_RUNDIR: '/run/ovs', FLOWLINE_OVS_RUN_DIR: '/run/ovs' });
    for (const probe of [c.startupProbe, c.readinessProbe, c.livenessProbe])
      expect((probe as { exec: { command: string[] } }).exec.command[0]).toMatch(/^ovs-/);
    const cniPod = podOf(find(out, 'DaemonSet', 'test-cni'));
    const daemon = cniPod.spec.containers.find((x) => x.name === 'daemon')!;
    expect(daemon.volumeMounts!.find((m) => m.name === 'ovs-run')!.mountPath).toBe('/run/ovs');
    const nad = find(out, 'NetworkAttachmentDefinition', 'flowline-vhost');
    expect(JSON.parse((nad.spec as { config: string }).config).ovsdbSocket).toBe(
      '/run/ovs/db.sock',
    );
    const conflist = render('flowline', { ...values, cni: { mode: 'conflist' } });
    const text = (find(conflist, 'ConfigMap', 'test-cni').data as Record<string, string>)[
      'flowline-vhost.conflist'
    ]!;
    expect(JSON.parse(text).plugins[0].ovsdbSocket).toBe('/run/ovs/db.sock');
    // The CNI plugin reads the field under this name.
    expect(readFileSync(join(repoRoot, 'cni-plugin', 'src', 'config.ts'), 'utf8')).toContain(
      'raw.ovsdbSocket',
    );
    // Another socket in extraConfig would be silently overridden: refused instead.
    expect(
      renderError('flowline', { ...values, cni: { extraConfig: { ovsdbSocket: '/x/db.sock' } } })
        .stderr,
    ).toContain(
      "cni.extraConfig.ovsdbSocket /x/db.sock is not OVS's socket /run/ovs/db.sock: set global.ovsRunDir instead",
    );
    expect(() =>
      render('flowline', { ...values, cni: { extraConfig: { ovsdbSocket: '/run/ovs/db.sock' } } }),
    ).not.toThrow();
  });

  it("mounts into the CNI daemon host-local's store of /var/lib/cni only (ipam.dataDir when set)", () => {
    const ipamMounts = (ipam: Values | null) => {
      const pod = podOf(find(render('flowline', { cni: { ipam } }), 'DaemonSet', 'test-cni'));
      const d = pod.spec.containers.find((x) => x.name === 'daemon')!;
      return d
        .volumeMounts!.filter(
          (m) => m.mountPath.startsWith('/var/lib/cni') || m.name === 'ipam-state',
        )
        .map((m) => {
          const v = pod.spec.volumes!.find((x) => x.name === m.name)!;
          expect(v.hostPath!.path).toBe(m.mountPath);
          expect(m.readOnly).toBeUndefined();
          return m.mountPath;
        });
    };
    expect(ipamMounts({ type: 'host-local', ranges: [[{ subnet: '10.56.0.0/16' }]] })).toEqual([
      '/var/lib/cni/networks',
    ]);
    expect(ipamMounts({ type: 'host-local', dataDir: '/srv/ipam' })).toEqual(['/srv/ipam']);
    expect(ipamMounts(null)).toEqual([]);
    // An IPAM plugin whose host paths the chart does not know keeps /var/lib/cni.
    expect(ipamMounts({ type: 'static' })).toEqual(['/var/lib/cni']);
    expect(
      renderError('flowline', { cni: { ipam: { type: 'host-local', dataDir: 'leases' } } }).stderr,
    ).toContain('cni.ipam.dataDir leases must be an absolute host path');
  });

  it('underlay: NOTES say whether chains may cross nodes and the MTU they need; an underlay MTU that cannot carry a chain interface is refused', () => {
    expect(notes('flowline', {}, 'fl')).toContain('Chains stay within one node');
    const crossing = notes(
      'flowline',
      { ovs: { underlay: { device: 'eth1', address: 'interface' } }, cni: { mtu: 1500 } },
      'fl',
    );
    expect(crossing).toContain('Chains may cross nodes: br-underlay on eth1, address interface.');
    expect(crossing).toContain('need an underlay MTU of 1558 or more');
    const error = renderError('flowline', {
      ovs: { underlay: { device: 'eth1', mtu: 1500 } },
      cni: { mtu: 1500 },
    });
    expect(error.stderr).toContain(
      'ovs.underlay.mtu 1500 cannot carry chain interfaces of cni.mtu 1500 across nodes: the tunnel adds 58 bytes; give the underlay at least 1558, or chain interfaces at most 1442',
    );
    // enough room renders, and the chain controller is told the MTU (per-crossing oversize
    // counting); without a known MTU it is not (it would guess and might drop jumbo frames)
    const controllerEnv = (values: Values) =>
      envOf(
        podOf(find(render('flowline', values), 'Deployment', 'test-chain-controller')).spec
          .containers[0]!,
      );
    expect(
      controllerEnv({ ovs: { underlay: { device: 'eth1', mtu: 1558 } }, cni: { mtu: 1500 } })
        .FLOWLINE_UNDERLAY_MTU,
    ).toBe('1558');
    expect(controllerEnv({ ovs: { underlay: { device: 'eth1' } } }).FLOWLINE_UNDERLAY_MTU).toBe(
      undefined,
    );
    expect(controllerEnv({ ovs: { underlay: { mtu: 9000 } } }).FLOWLINE_UNDERLAY_MTU).toBe(
      undefined,
    );
  });

  describe('refuses bad values with the schema message', () => {
    it.each<[string, Values, RegExp]>([
      [
        'fractional OVS CPUs',
        { ovs: { resources: { cpu: 1.5 } } },
        /at '\/ovs\/resources\/cpu': 'anyOf' failed[\s\S]*got number, want integer/,
      ],
      [
        'an OVS CPU share of a whole CPU or more, given in millicores',
        { ovs: { resources: { cpu: '1500m' } } },
        /at '\/ovs\/resources\/cpu': 'anyOf' failed/,
      ],
      [
        'a socket dir too long for unix sockets',
        { global: { socketDir: '/var/lib/some/very/long/path/for/vhost/sockets' } },
        /at '\/global\/socketDir': maxLength: got \d+, want 40/,
      ],
      [
        'a pool name that is no resource name',
        { devicePlugin: { pools: [{ name: 'Sriov-VF', deviceType: 'vfio-pci', selectors: {} }] } },
        /at '\/devicePlugin\/pools\/0\/name': '.*' does not match pattern/,
      ],
      [
        'an unknown device type',
        { devicePlugin: { pools: [{ name: 'vf', deviceType: 'uio', selectors: {} }] } },
        /at '\/devicePlugin\/pools\/0\/deviceType': value must be one of 'vfio-pci', 'netdevice'/,
      ],
      [
        'a resource prefix the device plugin does not advertise',
        { devicePlugin: { resourcePrefix: 'example.com' } },
        /at '\/devicePlugin\/resourcePrefix': value must be 'flowline.io'/,
      ],
      [
        'an allocation policy the device plugin does not know',
        {
          devicePlugin: {
            pools: [
              { name: 'vf', deviceType: 'netdevice', allocationPolicy: 'fill', selectors: {} },
            ],
          },
        },
        /at '\/devicePlugin\/pools\/0\/allocationPolicy': value must be one of 'pack', 'spread'/,
      ],
      [
        'a certificate validity of zero days',
        { ovs: { remote: { tls: { validityDays: 0 } } } },
        /at '\/ovs\/remote\/tls\/validityDays': minimum: got 0, want 1/,
      ],
      [
        'a malformed PCI address',
        { ovs: { dpdk: { allowList: ['3b:00.1'] } } },
        /at '\/ovs\/dpdk\/allowList\/0': '3b:00.1' does not match pattern/,
      ],
      [
        'a PCI option smuggled into extraArgs',
        { ovs: { dpdk: { extraArgs: ['--no-pci'] } } },
        /at '\/ovs\/dpdk\/extraArgs\/0': 'not' failed/,
      ],
      [
        'an unknown CNI mode',
        { cni: { mode: 'bridge' } },
        /at '\/cni\/mode': value must be one of 'multus', 'conflist'/,
      ],
      [
        'a misspelled key',
        { ovs: { pmdCores: 2 } },
        /at '\/ovs': additional properties 'pmdCores' not allowed/,
      ],
      [
        'an underlay device that is not an interface name',
        { ovs: { underlay: { device: 'eth1; reboot' } } },
        /at '\/ovs\/underlay\/device': 'eth1; reboot' does not match pattern/,
      ],
      [
        'an underlay address without its prefix',
        { ovs: { underlay: { device: 'eth1', address: '10.0.0.5' } } },
        /at '\/ovs\/underlay\/address': '10.0.0.5' does not match pattern/,
      ],
      [
        'an IPAM type that is a path',
        { cni: { ipam: { type: '../../bin/sh' } } },
        /at '\/cni\/ipam\/type': '..\/..\/bin\/sh' does not match pattern/,
      ],
    ])('%s', (_what, values, message) => {
      const error = renderError('flowline', values);
      expect(error.stderr).toMatch(/values don't meet the specifications of the schema/);
      expect(error.stderr).toMatch(message);
    });
  });
});
