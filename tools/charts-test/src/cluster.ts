/**
 * Charts rendered against a cluster: `helm template --dry-run=server` with a kubeconfig that
 * points at a stand-in kube-apiserver (there is none on this machine). The stand-in speaks the
 * Kubernetes REST wire protocol as helm's client reaches it: /version, API discovery (/api,
 * /api/v1, /apis, /apis/<group>/<version>) for the kinds the charts use, GET of one object or a
 * collection from what the test put there (404 Status otherwise), and writes echoed back (helm's
 * server-side dry run). So the templates' `lookup` calls, which `helm template` alone answers
 * with nothing, see the objects of an earlier install, as in an upgrade.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { HelmError, helmPath, type Manifest, type RenderOptions, type Values } from './helm';
import { binDir, chartsDir } from './paths';

/** [group, version, kind, plural, namespaced] of every kind the charts render or look up. */
const KINDS: [string, string, string, string, boolean][] = [
  ['', 'v1', 'Secret', 'secrets', true],
  ['', 'v1', 'ConfigMap', 'configmaps', true],
  ['', 'v1', 'Service', 'services', true],
  ['', 'v1', 'ServiceAccount', 'serviceaccounts', true],
  ['', 'v1', 'Pod', 'pods', true],
  ['', 'v1', 'Namespace', 'namespaces', false],
  ['', 'v1', 'Node', 'nodes', false],
  ['apps', 'v1', 'DaemonSet', 'daemonsets', true],
  ['apps', 'v1', 'Deployment', 'deployments', true],
  ['apps', 'v1', 'StatefulSet', 'statefulsets', true],
  ['networking.k8s.io', 'v1', 'NetworkPolicy', 'networkpolicies', true],
  ['policy', 'v1', 'PodDisruptionBudget', 'poddisruptionbudgets', true],
  ['rbac.authorization.k8s.io', 'v1', 'ClusterRole', 'clusterroles', false],
  ['rbac.authorization.k8s.io', 'v1', 'ClusterRoleBinding', 'clusterrolebindings', false],
  ['rbac.authorization.k8s.io', 'v1', 'Role', 'roles', true],
  ['rbac.authorization.k8s.io', 'v1', 'RoleBinding', 'rolebindings', true],
  ['apiextensions.k8s.io', 'v1', 'CustomResourceDefinition', 'customresourcedefinitions', false],
  ['k8s.cni.cncf.io', 'v1', 'NetworkAttachmentDefinition', 'network-attachment-definitions', true],
  ['cert-manager.io', 'v1', 'Certificate', 'certificates', true],
  ['monitoring.coreos.com', 'v1', 'ServiceMonitor', 'servicemonitors', true],
];

interface Kind {
  group: string;
  version: string;
  kind: string;
  plural: string;
  namespaced: boolean;
}
const kinds: Kind[] = KINDS.map(([group, version, kind, plural, namespaced]) => ({
  group,
  version,
  kind,
  plural,
  namespaced,
}));
const groupVersion = (k: Kind): string => (k.group ? `${k.group}/${k.version}` : k.version);

/** The REST path of an object (or, without a name, of its collection). */
function objectPath(k: Kind, namespace: string | undefined, name?: string): string {
  const base = k.group ? `/apis/${k.group}/${k.version}` : `/api/${k.version}`;
  const ns = k.namespaced && namespace ? `/namespaces/${namespace}` : '';
  return `${base}${ns}/${k.plural}${name ? `/${name}` : ''}`;
}

export class FakeCluster {
  private server: Server | undefined;
  private readonly objects = new Map<string, Manifest>();
  /** Every request, "GET /api/v1/namespaces/x/secrets/y". */
  readonly requests: string[] = [];
  private kubeconfig = '';

  /** Stores an object as the cluster would have it (a Secret of an earlier install, a Node). */
  put(obj: Manifest): void {
    const k = kinds.find(
      (x) => x.kind === obj.kind && groupVersion(x) === (obj.apiVersion ?? 'v1'),
    );
    if (!k) throw new Error(`the stand-in apiserver has no kind ${obj.apiVersion} ${obj.kind}`);
    this.objects.set(objectPath(k, obj.metadata.namespace, obj.metadata.name), obj);
  }

  /**
   * Stores an object as `helm install` of `release` left it: in its namespace, with the
   * ownership metadata helm checks before it takes an existing object into a release.
   */
  putReleased(obj: Manifest, release: string, namespace: string): void {
    this.put({
      ...obj,
      metadata: {
        ...obj.metadata,
        namespace,
        labels: { ...obj.metadata.labels, 'app.kubernetes.io/managed-by': 'Helm' },
        annotations: {
          ...obj.metadata.annotations,
          'meta.helm.sh/release-name': release,
          'meta.helm.sh/release-namespace': namespace,
        },
      },
    });
  }

  remove(obj: Pick<Manifest, 'apiVersion' | 'kind' | 'metadata'>): void {
    const k = kinds.find((x) => x.kind === obj.kind && groupVersion(x) === obj.apiVersion)!;
    this.objects.delete(objectPath(k, obj.metadata.namespace, obj.metadata.name));
  }

  async start(): Promise<void> {
    const server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.server = server;
    const { port } = server.address() as AddressInfo;
    mkdirSync(join(binDir, 'kubeconfig'), { recursive: true });
    this.kubeconfig = join(binDir, 'kubeconfig', `fake-${process.pid}-${port}.yaml`);
    writeFileSync(
      this.kubeconfig,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'fake', cluster: { server: `http://127.0.0.1:${port}` } }],
        users: [{ name: 'test', user: { token: 'test' } }],
        contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'test' } }],
        'current-context': 'fake',
      }),
    );
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  /** `helm template --dry-run=server` of charts/<chart> against this cluster, parsed. */
  async render(chart: string, values: Values = {}, opts: RenderOptions = {}): Promise<Manifest[]> {
    if (!this.server) throw new Error('start the stand-in apiserver first');
    mkdirSync(join(binDir, 'values'), { recursive: true });
    const file = join(binDir, 'values', `cluster-${process.pid}-${Date.now()}.json`);
    writeFileSync(file, JSON.stringify(values));
    const args = [
      'template',
      opts.release ?? 'test',
      join(chartsDir, chart),
      '-f',
      file,
      '--namespace',
      opts.namespace ?? 'flowline',
      '--kubeconfig',
      this.kubeconfig,
      '--dry-run=server',
      // the stand-in serves no OpenAPI schema; the charts' own tests validate the manifests
      '--disable-openapi-validation',
    ];
    // helm runs as a child while this process's event loop answers it: no spawnSync here
    const child = spawn(helmPath, args, {
      env: {
        ...process.env,
        HELM_CACHE_HOME: join(binDir, 'cache'),
        HELM_CONFIG_HOME: join(binDir, 'config'),
        HELM_DATA_HOME: join(binDir, 'data'),
      },
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const status = await new Promise<number | null>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', resolve);
    });
    if (status !== 0) throw new HelmError(args, err, status);
    return parseAllDocuments(out)
      .map((d) => d.toJS() as Manifest | null)
      .filter((d): d is Manifest => d !== null);
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const path = new URL(req.url ?? '/', 'http://fake').pathname;
      this.requests.push(`${req.method} ${path}`);
      const send = (code: number, o: unknown): void => {
        res.writeHead(code, { 'content-type': 'application/json' });
        res.end(JSON.stringify(o));
      };
      const notFound = (): void =>
        send(404, {
          kind: 'Status',
          apiVersion: 'v1',
          status: 'Failure',
          reason: 'NotFound',
          code: 404,
          message: `${path} not found`,
        });
      const discovery = this.discovery(path);
      if (discovery) return send(200, discovery);
      if (req.method !== 'GET') {
        // helm's server-side dry run: the object as it would be stored
        try {
          return send(req.method === 'POST' ? 201 : 200, JSON.parse(body));
        } catch {
          return send(400, { kind: 'Status', status: 'Failure', code: 400 });
        }
      }
      const obj = this.objects.get(path);
      if (obj) return send(200, obj);
      // a collection: every namespace's, or one namespace's
      const ns = /\/namespaces\/([^/]+)\/[^/]+$/.exec(path)?.[1];
      const k = kinds.find((x) => path === objectPath(x, x.namespaced ? ns : undefined));
      if (!k) return notFound();
      const items = [...this.objects.values()].filter(
        (o) =>
          o.kind === k.kind &&
          (o.apiVersion ?? 'v1') === groupVersion(k) &&
          (ns === undefined || o.metadata.namespace === ns),
      );
      return send(200, {
        kind: `${k.kind}List`,
        apiVersion: groupVersion(k),
        metadata: { resourceVersion: '1' },
        items,
      });
    });
  }

  private discovery(path: string): unknown {
    if (path === '/version') return { major: '1', minor: '30', gitVersion: 'v1.30.0' };
    if (path === '/api')
      return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [] };
    const resources = (gv: string) =>
      kinds
        .filter((k) => groupVersion(k) === gv)
        .map((k) => ({
          name: k.plural,
          singularName: k.kind.toLowerCase(),
          namespaced: k.namespaced,
          kind: k.kind,
          verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'],
        }));
    if (path === '/api/v1')
      return { kind: 'APIResourceList', groupVersion: 'v1', resources: resources('v1') };
    if (path === '/apis') {
      const groups = [...new Set(kinds.filter((k) => k.group).map(groupVersion))].map((gv) => {
        const [name, version] = gv.split('/') as [string, string];
        const v = { groupVersion: gv, version };
        return { name, versions: [v], preferredVersion: v };
      });
      return { kind: 'APIGroupList', apiVersion: 'v1', groups };
    }
    const m = /^\/apis\/([^/]+)\/([^/]+)$/.exec(path);
    if (m) {
      const gv = `${m[1]}/${m[2]}`;
      return { kind: 'APIResourceList', groupVersion: gv, resources: resources(gv) };
    }
    return undefined;
  }
}
