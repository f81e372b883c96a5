import { describe, expect, it } from 'vitest';
import { find, lint, notes, render, renderError, type Values } from '../src/helm';
import { envOf, pinnedProblems, podOf, securityProblems } from '../src/security';
import { validateAll } from '../src/validate';

const valueSets: Record<string, Values> = {
  'firewall (defaults)': {},
  'router with a vfio-pci VF and explicit lcores': {
    kind: 'router',
    vfs: { count: 1 },
    eal: { lcores: '2,3' },
    resources: { cpu: 2, memory: '2Gi', hugepages2Mi: '1Gi' },
  },
  'traffic-gen on a kernel VF (AF_XDP), 3 replicas, minAvailable': {
    kind: 'traffic-gen',
    replicas: 3,
    networks: [{ network: 'flowline-vhost', interface: 'net1' }],
    vfs: { count: 1, deviceType: 'netdevice' },
    pdb: { maxUnavailable: null, minAvailable: 2 },
    config: { flows: [{ name: 'udp', rateMpps: 1, size: 64 }] },
  },
  'traffic-gen on a kernel VF (AF_PACKET), no PDB': {
    kind: 'traffic-gen',
    vfs: { count: 2, deviceType: 'netdevice', netdevMode: 'af_packet' },
    pdb: { enabled: false },
  },
  'ipsec-gw with its keys Secret': {
    kind: 'ipsec-gw',
    ipsec: { keysSecret: 'gw-keys' },
    config: { protectedPort: 'net1', unprotectedPort: 'net2' },
  },
};

describe('charts/network-function', () => {
  for (const [name, values] of Object.entries(valueSets)) {
    it(`lints and renders valid Kubernetes objects: ${name}`, async () => {
      expect(lint('network-function', values)).toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
      const ms = render('network-function', values, { release: 'nf', namespace: 'nfs' });
      expect(ms.map((m) => m.kind).sort()).toEqual(
        values.pdb && (values.pdb as { enabled?: boolean }).enabled === false
          ? ['ConfigMap', 'NetworkPolicy', 'Secret', 'Service', 'StatefulSet']
          : [
              'ConfigMap',
              'NetworkPolicy',
              'PodDisruptionBudget',
              'Secret',
              'Service',
              'StatefulSet',
            ],
      );
      await validateAll(ms);
    });
  }

  const ms = render('network-function', {}, { release: 'firewall', namespace: 'nfs' });
  const sts = find(ms, 'StatefulSet', 'firewall');
  const pod = podOf(sts);
  const c = pod.spec.containers[0]!;

  it('asks for pinned CPUs, memory and hugepages as a Guaranteed pod (static CPU manager)', () => {
    expect(pinnedProblems(c)).toEqual([]);
    expect(c.resources).toEqual({
      requests: { cpu: '2', memory: '1Gi', 'hugepages-2Mi': '512Mi' },
      limits: { cpu: '2', memory: '1Gi', 'hugepages-2Mi': '512Mi' },
    });
    expect(c.image).toBe('ghcr.io/flowline/firewall:0.1.0');
  });

  it('asks for VFs from the device plugin when told, with requests equal to limits', () => {
    const r = podOf(
      find(
        render('network-function', valueSets['router with a vfio-pci VF and explicit lcores']!),
        'StatefulSet',
      ),
    ).spec.containers[0]!;
    expect(r.resources!.limits!['flowline.io/sriov_vf']).toBe('1');
    expect(r.resources!.requests!['flowline.io/sriov_vf']).toBe('1');
    expect(pinnedProblems(r)).toEqual([]);
    expect(envOf(r).FLOWLINE_LCORES).toBe('2,3');
    expect(r.image).toBe('ghcr.io/flowline/router:0.1.0');
  });

  it('attaches the vhost-user interfaces through the Multus annotation', () => {
    expect(pod.metadata.annotations!['k8s.v1.cni.cncf.io/networks']).toBe(
      'flowline/flowline-vhost@net1, flowline/flowline-vhost@net2',
    );
    const other = podOf(
      find(
        render('network-function', {
          flowlineNamespace: 'dataplane',
          networks: [{ network: 'fast', interface: 'eth9' }],
        }),
        'StatefulSet',
      ),
    );
    expect(other.metadata.annotations!['k8s.v1.cni.cncf.io/networks']).toBe('dataplane/fast@eth9');
  });

  it('probes the gRPC health service on the plaintext health port and exposes the metrics port', () => {
    for (const probe of [c.startupProbe, c.livenessProbe, c.readinessProbe])
      expect(probe).toMatchObject({ grpc: { port: 8081 } });
    expect(c.ports).toEqual([
      { name: 'grpc', containerPort: 50051, protocol: 'TCP' },
      { name: 'metrics', containerPort: 9464, protocol: 'TCP' },
      { name: 'health', containerPort: 8081, protocol: 'TCP' },
    ]);
    expect(envOf(c)).toMatchObject({
      FLOWLINE_GRPC_ADDRESS: '0.0.0.0:50051',
      FLOWLINE_METRICS_PORT: '9464',
    });
    const svc = find(ms, 'Service', 'firewall');
    expect(svc.metadata.labels!['flowline.io/metrics']).toBe('true');
    expect(svc.spec).toMatchObject({ clusterIP: 'None' });
    expect((sts.spec as { serviceName: string }).serviceName).toBe('firewall');
  });

  it('mounts its own socket folder (contract 2: docs/architecture.md#cni-to-switch-and-pod), hugepages and a read-only config', () => {
    const mount = (name: string) => c.volumeMounts!.find((m) => m.name === name)!;
    expect(mount('pod-dir')).toEqual({
      name: 'pod-dir',
      mountPath: '/var/run/flowline/pod',
      subPathExpr: '$(POD_NAMESPACE)_$(POD_NAME)',
    });
    expect(pod.spec.volumes!.find((v) => v.name === 'pod-dir')!.hostPath).toEqual({
      path: '/run/flowline/vhost',
      type: 'Directory',
    });
    expect(mount('hugepages').mountPath).toBe('/dev/hugepages');
    expect(pod.spec.volumes!.find((v) => v.name === 'hugepages')!.emptyDir).toEqual({
      medium: 'HugePages-2Mi',
    });
    expect(mount('config')).toMatchObject({ mountPath: '/etc/flowline', readOnly: true });
    expect(envOf(c)).toMatchObject({
      FLOWLINE_POD_DIR: '/var/run/flowline/pod',
      FLOWLINE_HUGEPAGES_DIR: '/dev/hugepages',
      FLOWLINE_HUGEPAGES_MB: '256',
      FLOWLINE_CONFIG: '/etc/flowline/nf.yaml',
      FLOWLINE_NF_NAME: '$(POD_NAME)',
      FLOWLINE_FILE_PREFIX: '$(POD_NAME)',
    });
    const cfg = find(
      render(
        'network-function',
        valueSets['traffic-gen on a kernel VF (AF_XDP), 3 replicas, minAvailable']!,
      ),
      'ConfigMap',
    );
    expect((cfg.data as Record<string, string>)['nf.yaml']).toBe(
      'nf:\n  flows:\n  - name: udp\n    rateMpps: 1\n    size: 64\n',
    );
  });

  it.each<[string, Values, string[]]>([
    ['vhost-user only: IPC_LOCK', {}, ['IPC_LOCK']],
    ['a vfio-pci VF: IPC_LOCK', { vfs: { count: 1 } }, ['IPC_LOCK']],
    [
      'a kernel VF over AF_XDP: NET_ADMIN, NET_RAW, BPF',
      { vfs: { count: 1, deviceType: 'netdevice' } },
      ['IPC_LOCK', 'NET_ADMIN', 'NET_RAW', 'BPF'],
    ],
    [
      'a kernel VF over AF_PACKET: NET_RAW',
      { vfs: { count: 1, deviceType: 'netdevice', netdevMode: 'af_packet' } },
      ['IPC_LOCK', 'NET_RAW'],
    ],
    [
      'netdevice type with no VF asked: IPC_LOCK',
      { vfs: { count: 0, deviceType: 'netdevice' } },
      ['IPC_LOCK'],
    ],
  ])('adds only the capabilities its ports need, never privileged: %s', (_what, values, caps) => {
    const x = podOf(find(render('network-function', values), 'StatefulSet')).spec.containers[0]!;
    expect(x.securityContext!.capabilities!.add).toEqual(caps);
    expect(securityProblems(x, caps)).toEqual([]);
    expect(x.securityContext!.readOnlyRootFilesystem).toBe(true);
  });

  it("mounts an IPsec gateway's keys Secret read-only as its key directory, and nowhere else", () => {
    const values = valueSets['ipsec-gw with its keys Secret']!;
    const gw = render('network-function', values, { release: 'gw', namespace: 'nfs' });
    const gwPod = podOf(find(gw, 'StatefulSet', 'gw'));
    const gwc = gwPod.spec.containers[0]!;
    expect(gwc.image).toMatch(/^ghcr\.io\/flowline\/ipsec-gw:/);
    const dir = '/var/run/secrets/flowline.io/ipsec-keys';
    expect(gwc.volumeMounts!.filter((m) => m.name === 'ipsec-keys')).toEqual([
      { name: 'ipsec-keys', mountPath: dir, readOnly: true },
    ]);
    expect(gwPod.spec.volumes!.find((v) => v.name === 'ipsec-keys')!.secret).toEqual({
      secretName: 'gw-keys',
      defaultMode: 0o400,
    });
    // the config names the folder, never a key; nothing of the Secret in the environment
    expect((find(gw, 'ConfigMap', 'gw').data as Record<string, string>)['nf.yaml']).toBe(
      `nf:\n  keyDir: ${dir}\n  protectedPort: net1\n  unprotectedPort: net2\n`,
    );
    expect(JSON.stringify(gwc.env)).not.toContain('gw-keys');
    // an explicit keyDir stays as given
    const own = render('network-function', {
      ...values,
      config: { keyDir: '/etc/flowline/keys' },
    });
    expect((find(own, 'ConfigMap').data as Record<string, string>)['nf.yaml']).toBe(
      'nf:\n  keyDir: /etc/flowline/keys\n',
    );
    // without a Secret: no mount, no keyDir
    const none = render('network-function', { kind: 'ipsec-gw' });
    expect(podOf(find(none, 'StatefulSet')).spec.volumes!.map((v) => v.name)).not.toContain(
      'ipsec-keys',
    );
    expect((find(none, 'ConfigMap').data as Record<string, string>)['nf.yaml']).toBe('nf: {}\n');
  });

  it('has a PodDisruptionBudget over its pods', () => {
    const pdb = find(ms, 'PodDisruptionBudget', 'firewall');
    expect(pdb.spec).toEqual({
      maxUnavailable: 1,
      selector: {
        matchLabels: {
          'app.kubernetes.io/name': 'firewall',
          'app.kubernetes.io/instance': 'firewall',
        },
      },
    });
    const tg = find(
      render(
        'network-function',
        valueSets['traffic-gen on a kernel VF (AF_XDP), 3 replicas, minAvailable']!,
      ),
      'PodDisruptionBudget',
    );
    expect(tg.spec).toMatchObject({ minAvailable: 2 });
  });

  it('prints how to reach it and how to name it in a chain', () => {
    const text = notes('network-function', { kind: 'router', replicas: 2 }, 'edge');
    expect(text).toContain('StatefulSet flowline/edge with 2 pod(s), named edge-0 .. edge-1');
    expect(text).toContain('- nf: edge-0');
    expect(text).toContain('flowline.router.v1');
  });

  describe('refuses bad values with a clear message', () => {
    it.each<[string, Values, RegExp]>([
      [
        'an unknown kind',
        { kind: 'dns' },
        /at '\/kind': value must be one of 'firewall', 'router', 'traffic-gen', 'ipsec-gw'/,
      ],
      [
        'fractional CPUs',
        { resources: { cpu: 1.5 } },
        /at '\/resources\/cpu': got number, want integer/,
      ],
      [
        'CPUs as a millicore string',
        { resources: { cpu: '1500m' } },
        /at '\/resources\/cpu': got string, want integer/,
      ],
      [
        'hugepages in an unsupported unit',
        { resources: { hugepages2Mi: '1G' } },
        /at '\/resources\/hugepages2Mi': '1G' does not match pattern/,
      ],
      [
        'an interface name too long for a netdev',
        { networks: [{ network: 'flowline-vhost', interface: 'interface-name-16' }] },
        /at '\/networks\/0\/interface': 'interface-name-16' does not match pattern/,
      ],
      [
        'an unknown device type',
        { vfs: { deviceType: 'uio' } },
        /at '\/vfs\/deviceType': value must be one of 'vfio-pci', 'netdevice'/,
      ],
      [
        'a misspelled key',
        { resource: { cpu: 2 } },
        /additional properties 'resource' not allowed/,
      ],
      [
        'EAL memory larger than the hugepages',
        { eal: { memoryMb: 1024 } },
        /eal.memoryMb \(1024\) is more than resources.hugepages2Mi \(512Mi = 512 MiB\): raise hugepages2Mi or lower eal.memoryMb/,
      ],
      [
        'both PDB fields',
        { pdb: { minAvailable: 1 } },
        /pdb: set exactly one of maxUnavailable and minAvailable/,
      ],
      [
        'a keys Secret on another kind of NF',
        { kind: 'router', ipsec: { keysSecret: 'gw-keys' } },
        /ipsec.keysSecret is for kind ipsec-gw, not router/,
      ],
      [
        'a keys Secret name that is not a Kubernetes name',
        { kind: 'ipsec-gw', ipsec: { keysSecret: '../keys' } },
        /at '\/ipsec\/keysSecret': '..\/keys' does not match pattern/,
      ],
      [
        'a traffic-gen with no interface',
        { kind: 'traffic-gen', networks: [] },
        /traffic-gen needs at least one interface/,
      ],
    ])('%s', (_what, values, message) => {
      const error = renderError('network-function', values);
      expect(error.stderr).toMatch(message);
    });
  });
});

describe('pod folder names the pod can mount', () => {
  // The CNI plugin hashes a pod folder whose sockets would pass 107 bytes (packages/ovs
  // podFolderName); subPathExpr can mount only the readable <namespace>_<pod>.
  it('renders when <socketDir>/<namespace>_<pod>/<15-byte ifname>.sock fits', () => {
    const ms = render(
      'network-function',
      { kind: 'firewall' },
      { release: 'fw', namespace: 'tenant-a' },
    );
    expect(find(ms, 'StatefulSet', 'fw')).toBeDefined();
  });

  it('refuses a release whose pod folders the plugin would hash, saying what to shorten', () => {
    let message = '';
    try {
      render(
        'network-function',
        { kind: 'firewall', replicas: 10 },
        {
          release: 'firewall-with-a-long-release-name',
          namespace: 'a-rather-long-tenant-namespace-name',
        },
      );
    } catch (e) {
      message = (e as { stderr?: string }).stderr ?? String(e);
    }
    expect(message).toMatch(
      /pod folder a-rather-long-tenant-namespace-name_firewall-with-a-long-release-name-9 make vhost-user socket paths of up to 11\d bytes, over the 107/,
    );
  });
});
