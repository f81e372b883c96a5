import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { repoRoot } from './support';

interface Mount {
  hostPath: string;
  containerPath: string;
}
interface KindNode {
  role: string;
  labels?: Record<string, string>;
  extraMounts?: Mount[];
}
interface KindCluster {
  kind: string;
  apiVersion: string;
  kubeadmConfigPatches?: string[];
  nodes: KindNode[];
}

const read = (p: string): string => readFileSync(join(repoRoot, p), 'utf8');

describe('kind-config.yaml', () => {
  const config = parse(read('tools/kind/kind-config.yaml')) as KindCluster;
  const kubelet = (config.kubeadmConfigPatches ?? [])
    .map((p) => parse(p) as Record<string, unknown>)
    .find((p) => p.kind === 'KubeletConfiguration');
  const socketDir = (
    parse(read('charts/flowline/values.yaml')) as { global: { socketDir: string } }
  ).global.socketDir;

  it('is a kind v1alpha4 Cluster with a control plane and at least one worker', () => {
    expect(config.kind).toBe('Cluster');
    expect(config.apiVersion).toBe('kind.x-k8s.io/v1alpha4');
    expect(config.nodes.filter((n) => n.role === 'control-plane')).toHaveLength(1);
    expect(config.nodes.filter((n) => n.role === 'worker').length).toBeGreaterThanOrEqual(1);
  });

  it("sets kubelet's static CPU manager with the CPU reservation it requires, for every node", () => {
    expect(kubelet).toBeDefined();
    expect(kubelet!.cpuManagerPolicy).toBe('static');
    const reserved = kubelet!.kubeReserved as Record<string, string> | undefined;
    expect(reserved?.cpu ?? kubelet!.reservedSystemCPUs).toBeTruthy();
    expect((kubelet!.evictionHard as Record<string, string>)['memory.available']).toBeDefined();
  });

  it("mounts the host's hugetlbfs and a vhost socket dir at charts/flowline's socketDir on every node", () => {
    for (const node of config.nodes) {
      const mounts = node.extraMounts ?? [];
      expect(mounts).toContainEqual({
        hostPath: '/dev/hugepages',
        containerPath: '/dev/hugepages',
      });
      expect(mounts.map((m) => m.containerPath)).toContain(socketDir);
    }
    const hostDirs = config.nodes.flatMap((n) => n.extraMounts ?? []).map((m) => m.hostPath);
    expect(new Set(hostDirs.filter((h) => h !== '/dev/hugepages')).size).toBe(config.nodes.length);
    // e2e.sh creates those host folders before kind mounts them: its dry-run plan shows it
    // (test/e2e-script.test.ts, "creates the host folders kind mounts").
    for (const dir of hostDirs.filter((h) => h.startsWith('/tmp/flowline-kind/')))
      expect(dir).toMatch(/^\/tmp\/flowline-kind\/(control-plane|worker\d*)\/vhost$/);
  });

  it('labels the workers as the node selector of the kind values files expects: flowline on both, each NF on one', () => {
    const workers = config.nodes.filter((n) => n.role === 'worker');
    for (const file of ['flowline', 'traffic-gen', 'firewall', 'router']) {
      const values = parse(read(`tools/kind/values/${file}.yaml`)) as {
        nodeSelector?: Record<string, string>;
        global?: { nodeSelector?: Record<string, string> };
      };
      const selector = values.nodeSelector ?? values.global?.nodeSelector;
      expect(selector?.['flowline.io/dataplane'], file).toBe('true');
      const on = workers.filter((w) =>
        Object.entries(selector!).every(([k, v]) => w.labels?.[k] === v),
      );
      // the flowline DaemonSets run on every worker; an NF on exactly one
      expect(on.length, file).toBe(file === 'flowline' ? workers.length : 1);
    }
  });
});

describe('.github/workflows/kind-e2e.yml', () => {
  const wf = parse(read('.github/workflows/kind-e2e.yml')) as {
    on: Record<string, unknown>;
    jobs: Record<
      string,
      {
        'runs-on': string;
        steps: { uses?: string; run?: string; with?: Record<string, unknown> }[];
      }
    >;
  };
  const job = Object.values(wf.jobs)[0]!;
  const runs = job.steps.map((s) => s.run ?? '');

  it('runs e2e.sh on ubuntu-latest, after a dry run, for pushes and pull requests', () => {
    expect(job['runs-on']).toBe('ubuntu-latest');
    expect(Object.keys(wf.on)).toEqual(expect.arrayContaining(['push', 'pull_request']));
    const dry = runs.findIndex((r) => r.trim() === 'tools/kind/e2e.sh --dry-run');
    const real = runs.findIndex((r) => r.trim() === 'tools/kind/e2e.sh');
    expect(dry).toBeGreaterThan(-1);
    expect(real).toBeGreaterThan(dry);
  });

  it('installs kind, helm and kubectl with their official actions and builds the traffic driver first', () => {
    const uses = job.steps.map((s) => s.uses ?? '');
    for (const action of [
      'actions/checkout@',
      'actions/setup-node@',
      'helm/kind-action@',
      'azure/setup-helm@',
      'azure/setup-kubectl@',
    ])
      expect(
        uses.some((u) => u.startsWith(action)),
        action,
      ).toBe(true);
    expect(job.steps.find((s) => s.uses?.startsWith('helm/kind-action@'))!.with).toMatchObject({
      install_only: true,
    });
    const build = runs.findIndex((r) => r.includes('npx nx build @flowline/kind'));
    expect(build).toBeGreaterThan(-1);
    expect(build).toBeLessThan(runs.findIndex((r) => r.trim() === 'tools/kind/e2e.sh'));
  });
});
