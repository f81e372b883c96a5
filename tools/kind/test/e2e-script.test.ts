import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadPlan } from '../src/plan';
import { kindDir, parsePlan, repoRoot, runScript, script } from './support';

const tmp = mkdtempSync(join(tmpdir(), 'flowline-kind-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/**
 * A PATH whose docker, kind, kubectl, helm and node are recorders: each appends its command
 * line to calls.log and exits with `status` (docker exits `dockerStatus`).
 */
function fakeTools(
  name: string,
  status: number,
  dockerStatus = status,
): { path: string; log: string } {
  const dir = join(tmp, name);
  const bin = join(dir, 'bin');
  const log = join(dir, 'calls.log');
  spawnSync('mkdir', ['-p', bin]);
  for (const tool of ['docker', 'kind', 'kubectl', 'helm', 'node']) {
    const file = join(bin, tool);
    writeFileSync(
      file,
      `#!/bin/sh\necho "${tool} $*" >> ${log}\nexit ${tool === 'docker' ? dockerStatus : status}\n`,
    );
    chmodSync(file, 0o755);
  }
  return { path: `${bin}:/usr/bin:/bin`, log };
}

function shellScripts(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    if (e.name === 'node_modules' || e.name === 'dist') return [];
    const p = join(dir, e.name);
    if (e.isDirectory()) return shellScripts(p);
    return e.name.endsWith('.sh') ? [p] : [];
  });
}

const TRAFFIC =
  /^env FLOWLINE_TLS_CA=\S+ FLOWLINE_TLS_CERT=\S+ FLOWLINE_TLS_KEY=\S+ node tools\/kind\/dist\/traffic\.js /;

describe('tools/kind/e2e.sh', () => {
  it('passes shellcheck, as does every other script in tools/kind', () => {
    const scripts = shellScripts(kindDir);
    expect(scripts).toContain(script);
    const r = spawnSync('shellcheck', ['--severity=style', '--shell=bash', ...scripts], {
      encoding: 'utf8',
    });
    if (r.error)
      throw new Error(
        `shellcheck is not installed (tools/setup/setup.sh installs it): ${r.error.message}`,
      );
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('cannot run without a Docker engine (as on the development machine): stops at prereqs before making anything', () => {
    const tools = fakeTools('no-engine-full-run', 0, 1);
    const r = runScript([], { PATH: tools.path });
    expect(r.status).toBe(1);
    expect(r.stdout.split('\n').filter((l) => l.startsWith('==> '))).toEqual(['==> prereqs']);
    expect(r.stderr).toMatch(/docker is installed but its engine is not reachable/);
    // the only command it ran was the engine probe: no cluster, no build, no teardown
    expect(readFileSync(tools.log, 'utf8')).toBe('docker info\n');
  });

  describe('--dry-run', () => {
    const tools = fakeTools('dry', 0);
    const run = runScript(['--dry-run'], { PATH: tools.path });
    const plan = parsePlan(run.stdout);
    const lines = plan.commands.map((c) => c.line);
    const first = (re: RegExp): number => {
      const i = lines.findIndex((l) => re.test(l));
      if (i < 0) throw new Error(`the plan has no command matching ${re}:\n${lines.join('\n')}`);
      return i;
    };
    const last = (re: RegExp): number =>
      lines.length - 1 - [...lines].reverse().findIndex((l) => re.test(l));

    it('exits 0 and runs none of the commands it prints', () => {
      expect(run.stderr).toBe('');
      expect(run.status).toBe(0);
      expect(existsSync(tools.log)).toBe(false);
      expect(lines.length).toBeGreaterThan(30);
    });

    it('goes through every step in order', () => {
      expect(plan.steps).toEqual([
        'prereqs',
        'cluster',
        'underlay',
        'images',
        'load',
        'nodes',
        'multus',
        'flowline',
        'nfs',
        'chain',
        'traffic',
        'teardown',
      ]);
    });

    it('creates the cluster, then loads images, installs charts, creates the chain, runs traffic and tears down', () => {
      const create = first(/^kind create cluster /);
      const build = last(/^docker build /);
      const load = first(/^kind load docker-image /);
      const emulate = first(/emulation\/dist\/cli\.js create /);
      const flowline = first(/^helm upgrade --install flowline charts\/flowline /);
      const nfs = last(/^helm upgrade --install \S+ charts\/network-function /);
      const chain = first(/^kubectl .*apply -f tools\/kind\/manifests\/servicechain\.yaml/);
      const ready = first(/^kubectl .*wait --for=condition=Ready servicechain\/e2e/);
      const traffic = first(TRAFFIC);
      const teardown = first(/^kind delete cluster /);
      expect(build).toBeLessThan(load);
      for (const [a, b] of [
        [create, load],
        [load, emulate],
        [emulate, flowline],
        [flowline, nfs],
        [nfs, chain],
        [chain, ready],
        [ready, traffic],
        [traffic, teardown],
      ] as const)
        expect(a, `${lines[a]}\n  should come before\n${lines[b]}`).toBeLessThan(b);
      // last: kind delete cluster, then the underlay network and the host folders
      expect(teardown).toBe(lines.length - 3);
    });

    it('creates the host folders kind mounts into the nodes before it creates the cluster', () => {
      const config = parse(readFileSync(join(kindDir, 'kind-config.yaml'), 'utf8')) as {
        nodes: { extraMounts?: { hostPath: string }[] }[];
      };
      const hostDirs = config.nodes
        .flatMap((n) => n.extraMounts ?? [])
        .map((m) => m.hostPath)
        .filter((h) => h !== '/dev/hugepages');
      expect(hostDirs.length).toBeGreaterThan(0);
      const create = first(/^kind create cluster /);
      for (const dir of hostDirs) {
        const made = lines.findIndex((l) => l === `mkdir -p ${dir}`);
        expect(made, `mkdir -p ${dir} in the plan`).toBeGreaterThan(-1);
        expect(made, `mkdir -p ${dir} before kind create cluster`).toBeLessThan(create);
        expect(plan.commands[made]!.step).toBe('cluster');
      }
    });

    it('runs the traffic driver on the shipped plan, which is a valid plan', () => {
      const traffic = lines[first(TRAFFIC)]!;
      const planFile = /--plan (\S+)/.exec(traffic)?.[1];
      expect(planFile).toBe('tools/kind/e2e-plan.json');
      const shipped = loadPlan(join(repoRoot, planFile!));
      expect(shipped.flows.length).toBeGreaterThan(0);
      expect(plan.commands.find((c) => c.line === traffic)!.step).toBe('traffic');
    });

    it("calls the NFs as the operator, with the flowline release's operator certificate, expecting their identities", () => {
      const traffic = lines[first(TRAFFIC)]!;
      const env = Object.fromEntries(
        [...traffic.matchAll(/(FLOWLINE_TLS_\w+)=(\S+)/g)].map((m) => [m[1], m[2]]),
      );
      expect(Object.keys(env).sort()).toEqual([
        'FLOWLINE_TLS_CA',
        'FLOWLINE_TLS_CERT',
        'FLOWLINE_TLS_KEY',
      ]);
      // Each file is fetched from the operator Secret before the driver runs.
      for (const [key, file] of [
        ['ca\\.crt', env.FLOWLINE_TLS_CA],
        ['tls\\.crt', env.FLOWLINE_TLS_CERT],
        ['tls\\.key', env.FLOWLINE_TLS_KEY],
      ]) {
        const fetched = lines.findIndex(
          (l) =>
            l.includes('get secret flowline-operator-grpc-tls') &&
            l.includes(`{.data.${key}}`) &&
            l.endsWith(`> ${file}`),
        );
        expect(fetched, `${file} fetched from the operator Secret`).toBeGreaterThan(-1);
        expect(fetched).toBeLessThan(first(TRAFFIC));
      }
      expect(/--nf-namespace (\S+)/.exec(traffic)?.[1]).toBeTruthy();
    });

    it('installs the three NFs of the chain and the chain names them', () => {
      const releases = lines
        .map((l) => /^helm upgrade --install (\S+) charts\/network-function /.exec(l)?.[1])
        .filter((r): r is string => r !== undefined);
      expect(releases).toEqual(['traffic-gen', 'firewall', 'router']);
      const chain = readFileSync(join(kindDir, 'manifests/servicechain.yaml'), 'utf8');
      for (const r of releases) expect(chain).toContain(`nf: ${r}-0`);
    });

    it('references only charts, Dockerfiles, values and manifests that exist in the repository', () => {
      const paths = new Set<string>();
      for (const l of lines) {
        for (const m of l.matchAll(/(?:^|\s)(?:-f|--file|--config|--plan)\s+(\S+)/g))
          if (!m[1]!.startsWith('https://')) paths.add(m[1]!);
        for (const m of l.matchAll(/(?:^|\s)(charts\/[\w-]+)(?=\s)/g)) paths.add(m[1]!);
      }
      expect([...paths].filter((p) => p.startsWith('charts/'))).toEqual([
        'charts/flowline',
        'charts/network-function',
      ]);
      expect([...paths].filter((p) => p.endsWith('Dockerfile')).length).toBeGreaterThanOrEqual(9);
      expect([...paths].filter((p) => p.startsWith('tools/kind/values/')).length).toBe(4);
      // dist/ is built by npm ci + nx build before the run (prereqs checks it).
      const missing = [...paths].filter(
        (p) => !p.startsWith('tools/kind/dist/') && !existsSync(join(repoRoot, p)),
      );
      expect(missing).toEqual([]);
    });

    it('builds every Dockerfile of the repository, bases first', () => {
      const built = lines
        .map((l) => /^docker build .*--file (\S+) \.$/.exec(l)?.[1])
        .filter((f): f is string => f !== undefined);
      const inRepo = spawnSync('git', ['ls-files', '*Dockerfile', '*.Dockerfile'], {
        cwd: repoRoot,
        encoding: 'utf8',
      })
        .stdout.split('\n')
        .filter(Boolean);
      expect(new Set(built)).toEqual(new Set(inRepo));
      expect(built.slice(0, 2)).toEqual([
        'docker/builder.Dockerfile',
        'docker/dpdk-runtime.Dockerfile',
      ]);
    });

    it('loads every image it built for the cluster (not the bases) under the tag the charts get', () => {
      const load = lines.find((l) => l.startsWith('kind load docker-image'))!;
      const loaded = load.split(' ').filter((w) => w.startsWith('ghcr.io/'));
      expect(loaded).toHaveLength(8);
      for (const ref of loaded) expect(ref).toMatch(/^ghcr\.io\/flowline\/[a-z-]+:e2e$/);
      for (const l of lines.filter((x) => x.startsWith('helm ')))
        expect(l).toMatch(/--set (global\.imageTag|image\.tag)=e2e/);
    });

    it('reserves hugepages and creates veth-backed emulated NICs on every node before kubelet restarts', () => {
      for (const node of [
        'flowline-e2e-control-plane',
        'flowline-e2e-worker',
        'flowline-e2e-worker2',
      ]) {
        const own = lines
          .map((l, i) => ({ l, i }))
          .filter(({ l }) => l.includes(`docker exec ${node} `));
        const at = (re: RegExp): number => own.find(({ l }) => re.test(l))?.i ?? -1;
        const hp = at(/nr_hugepages/);
        const emu = at(
          /packages\/emulation\/dist\/cli\.js create --root \/var\/lib\/flowline\/emulated-sysfs --pf ens1f0:4:0 --veth/,
        );
        const restart = at(/systemctl restart kubelet/);
        expect(hp, node).toBeGreaterThan(-1);
        expect(emu, node).toBeGreaterThan(hp);
        expect(restart, node).toBeGreaterThan(emu);
      }
      // The tree the plugin reads is the one the flowline values point it at.
      const values = readFileSync(join(kindDir, 'values/flowline.yaml'), 'utf8');
      expect(values).toMatch(/sysfsRoot: \/var\/lib\/flowline\/emulated-sysfs/);
    });

    it('joins both workers on an underlay network (eth1, MTU 1600) that the flowline values make OVS take, the router on the other worker, and removes the network at teardown', () => {
      const net = 'flowline-underlay-flowline-e2e';
      const created = first(
        /docker network create .*--opt com\.docker\.network\.driver\.mtu=1600 /,
      );
      expect(lines[created]).toMatch(new RegExp(` ${net}$`));
      expect(plan.commands[created]!.step).toBe('underlay');
      for (const worker of ['flowline-e2e-worker', 'flowline-e2e-worker2']) {
        const joined = first(new RegExp(`docker network connect --ip \\S+ ${net} ${worker}$`));
        expect(joined).toBeGreaterThan(created);
        expect(joined).toBeLessThan(first(/^helm upgrade --install flowline /));
      }
      const values = parse(readFileSync(join(kindDir, 'values/flowline.yaml'), 'utf8')) as {
        ovs: { underlay: { device: string; mtu: number } };
      };
      expect(values.ovs.underlay).toMatchObject({ device: 'eth1', mtu: 1600 });
      // The chain crosses the workers: kind-config labels them a and b, the NFs select them.
      const config = parse(readFileSync(join(kindDir, 'kind-config.yaml'), 'utf8')) as {
        nodes: { role: string; labels?: Record<string, string> }[];
      };
      expect(
        config.nodes
          .filter((n) => n.role === 'worker')
          .map((n) => n.labels?.['flowline.io/e2e-node']),
      ).toEqual(['a', 'b']);
      const side = (nf: string): string | undefined =>
        (
          parse(readFileSync(join(kindDir, `values/${nf}.yaml`), 'utf8')) as {
            nodeSelector: Record<string, string>;
          }
        ).nodeSelector['flowline.io/e2e-node'];
      expect(['traffic-gen', 'firewall', 'router'].map(side)).toEqual(['a', 'a', 'b']);
      const removed = first(new RegExp(`docker network rm ${net}`));
      expect(removed).toBeGreaterThan(first(/^kind delete cluster /));
    });

    it('installs a pinned Multus release, its thin plugin (delegates run on the node)', () => {
      const apply = lines[first(/^kubectl apply -f https:\/\/.*multus/)]!;
      expect(apply).toMatch(/\/multus-cni\/v\d+\.\d+\.\d+\/deployments\/multus-daemonset\.yml$/);
      expect(first(/multus/)).toBeLessThan(first(/^helm upgrade --install flowline /));
    });

    it('prints only the steps asked for', () => {
      const r = runScript(['--dry-run', 'chain', 'traffic'], { PATH: tools.path });
      expect(r.status).toBe(0);
      expect(parsePlan(r.stdout).steps).toEqual(['chain', 'traffic']);
    });
  });

  it('refuses an unknown step or option with the list of steps', () => {
    const r = runScript(['--dry-run', 'deploy']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/unknown step deploy; steps: prereqs cluster underlay images/);
    expect(runScript(['--fast']).stderr).toMatch(/unknown option --fast/);
  });

  it('names a missing prerequisite and how to install it', () => {
    const dir = join(tmp, 'bare');
    spawnSync('mkdir', ['-p', dir]);
    for (const tool of ['dirname', 'sed', 'grep', 'tr'])
      spawnSync('ln', [
        '-sf',
        spawnSync('which', [tool], { encoding: 'utf8' }).stdout.trim(),
        join(dir, tool),
      ]);
    const r = runScript(['prereqs'], { PATH: dir });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(
      /docker is not installed: it is needed to run the kind nodes.*Install it: https:\/\/docs\.docker\.com/,
    );
  });

  it('says when docker is there but its engine is not (as on the development machine)', () => {
    const tools = fakeTools('no-engine', 0, 1);
    const r = runScript(['prereqs'], { PATH: tools.path });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(
      /docker is installed but its engine is not reachable \(docker info failed\)/,
    );
    expect(readFileSync(tools.log, 'utf8')).toBe('docker info\n');
  });
});
