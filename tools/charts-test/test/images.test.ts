import { spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../src/paths';

interface Image {
  dockerfile: string;
  kind: 'nf' | 'node' | 'base';
}
const images: Image[] = [
  { dockerfile: 'services/firewall/Dockerfile', kind: 'nf' },
  { dockerfile: 'services/router/Dockerfile', kind: 'nf' },
  { dockerfile: 'services/traffic-gen/Dockerfile', kind: 'nf' },
  { dockerfile: 'services/ipsec-gw/Dockerfile', kind: 'nf' },
  { dockerfile: 'services/chain-controller/Dockerfile', kind: 'node' },
  { dockerfile: 'device-plugin/Dockerfile', kind: 'node' },
  { dockerfile: 'cni-plugin/Dockerfile', kind: 'node' },
  { dockerfile: 'docker/builder.Dockerfile', kind: 'base' },
  { dockerfile: 'docker/dpdk-runtime.Dockerfile', kind: 'base' },
  { dockerfile: 'docker/ovs-dpdk/Dockerfile', kind: 'base' },
];

/** Dockerfile instructions, with continuation lines joined and comments kept apart. */
function instructions(file: string): { op: string; args: string; comment: string }[] {
  const out: { op: string; args: string; comment: string }[] = [];
  let comment = '';
  let pending = '';
  for (const raw of readFileSync(join(repoRoot, file), 'utf8').split('\n')) {
    const line = raw.trim();
    if (!pending && line.startsWith('#')) {
      comment += `${line.slice(1).trim()} `;
      continue;
    }
    if (!line && !pending) {
      comment = '';
      continue;
    }
    pending += `${line.replace(/\\$/, '')} `;
    if (line.endsWith('\\')) continue;
    const [, op, args] = /^(\S+)\s*(.*)$/.exec(pending.trim())!;
    out.push({ op: op!.toUpperCase(), args: args!.trim(), comment: comment.trim() });
    pending = '';
    comment = '';
  }
  return out;
}

function aptPackages(file: string): string[] {
  return instructions(file)
    .filter((i) => i.op === 'RUN' && i.args.includes('apt-get install'))
    .flatMap((i) => {
      const after = i.args.split('apt-get install')[1]!.split('&&')[0]!;
      return after.split(/\s+/).filter((w) => /^[a-z0-9][a-z0-9+.-]+$/.test(w));
    });
}

describe('Dockerfiles', () => {
  it.each(images.filter((i) => i.kind !== 'base'))(
    '$dockerfile is multi-stage from the shared builder, on Debian bookworm with Node 20',
    ({ dockerfile, kind }) => {
      const ins = instructions(dockerfile);
      const froms = ins.filter((i) => i.op === 'FROM');
      expect(froms.length).toBeGreaterThanOrEqual(2);
      expect(froms[0]!.args).toBe('${BUILDER} AS build');
      const args = Object.fromEntries(
        ins.filter((i) => i.op === 'ARG').map((i) => i.args.split('=')),
      );
      expect(args.BUILDER).toBe('flowline/builder:dev');
      const last = froms[froms.length - 1]!.args;
      if (kind === 'nf') {
        expect(last).toBe('${DPDK_RUNTIME}');
        expect(args.DPDK_RUNTIME).toBe('flowline/dpdk-runtime:dev');
      } else {
        expect(last).toBe('node:20-bookworm-slim');
      }
    },
  );

  it('leaves the test doubles (packages/emulation) out of the device plugin image', () => {
    const ins = instructions('device-plugin/Dockerfile');
    const froms = ins.map((i, at) => ({ ...i, at })).filter((i) => i.op === 'FROM');
    const copy = ins.findIndex((i) => i.op === 'COPY' && i.args.startsWith('--from=build /app '));
    const removed = ins.findIndex(
      (i, at) =>
        at > froms[0]!.at &&
        at < froms[1]!.at &&
        i.op === 'RUN' &&
        /rm -rf .*\/app\/packages\/emulation /.test(i.args) &&
        i.args.includes('/app/node_modules/@flowline/emulation'),
    );
    expect(removed, 'a RUN rm -rf of packages/emulation in the build stage').toBeGreaterThan(-1);
    expect(copy).toBeGreaterThan(froms[1]!.at);
  });

  it('builds everything on node:20-bookworm-slim and lists the librte packages the addon links', () => {
    const ins = instructions('docker/builder.Dockerfile');
    expect(ins.find((i) => i.op === 'FROM')!.args).toBe('node:20-bookworm-slim AS build');
    expect(aptPackages('docker/builder.Dockerfile')).toEqual(
      expect.arrayContaining(['libdpdk-dev', 'pkg-config', 'build-essential']),
    );
    const run = ins
      .filter((i) => i.op === 'RUN')
      .map((i) => i.args)
      .join('\n');
    expect(run).toContain('npm ci');
    expect(run).toContain('nx run-many -t build');
    expect(run).toContain('npm prune --omit=dev');
    expect(run).toMatch(
      /ldd \$addons .*dpkg -S .*grep '\^librte-' .*> \.flowline\/dpdk-runtime-packages/,
    );
  });

  it("installs Debian's dpdk and librte-* runtime packages in the NF base", () => {
    const pkgs = aptPackages('docker/dpdk-runtime.Dockerfile');
    expect(pkgs).toContain('dpdk');
    for (const pmd of [
      'librte-net-virtio23',
      'librte-net-af-xdp23',
      'librte-net-af-packet23',
      'librte-mempool-ring23',
      'librte-crypto-ipsec-mb23',
      'librte-crypto-openssl23',
    ])
      expect(pkgs).toContain(pmd);
    expect(pkgs.filter((p) => !p.startsWith('librte-') && p !== 'dpdk')).toEqual([]);
    expect(
      instructions('docker/dpdk-runtime.Dockerfile').some(
        (i) => i.op === 'RUN' && i.args.includes('$(cat /tmp/dpdk-runtime-packages)'),
      ),
    ).toBe(true);
  });

  const debian = spawnSync('apt-cache', ['policy', 'dpdk'], { encoding: 'utf8' });
  const bookworm =
    existsSync('/etc/debian_version') &&
    /^12\./.test(readFileSync('/etc/debian_version', 'utf8')) &&
    /Candidate: (?!\(none\))/.test(debian.stdout ?? '');
  (bookworm ? it : it.skip)(
    'names only packages that Debian bookworm has (apt-cache on this Debian 12 host)',
    () => {
      const all = [...new Set(images.flatMap((i) => aptPackages(i.dockerfile)))];
      expect(all.length).toBeGreaterThan(10);
      const r = spawnSync('apt-cache', ['policy', ...all], { encoding: 'utf8' });
      const missing = all.filter(
        (p) =>
          !new RegExp(
            `^${p.replace(/[.+]/g, '\\$&')}:\\n\\s+Installed: .*\\n\\s+Candidate: (?!\\(none\\))`,
            'm',
          ).test(r.stdout),
      );
      expect(missing).toEqual([]);
    },
  );

  it.each(images)(
    '$dockerfile copies only files that exist and explains every root user',
    ({ dockerfile, kind }) => {
      const ins = instructions(dockerfile);
      for (const copy of ins.filter((i) => i.op === 'COPY' && !i.args.includes('--from'))) {
        const sources = copy.args
          .split(/\s+/)
          .filter((w) => !w.startsWith('--'))
          .slice(0, -1);
        for (const s of sources)
          expect(existsSync(join(repoRoot, s)), `${dockerfile}: COPY ${s}`).toBe(true);
      }
      const users = ins.filter((i) => i.op === 'USER');
      if (dockerfile === 'docker/builder.Dockerfile') return expect(users).toEqual([]); // runs nothing
      // NF images inherit the user of their base, docker/dpdk-runtime.Dockerfile.
      if (kind === 'nf') expect(users).toEqual([]);
      const own =
        kind === 'nf'
          ? instructions('docker/dpdk-runtime.Dockerfile').filter((i) => i.op === 'USER')
          : users;
      expect(own.length).toBe(1);
      const user = own[0]!;
      if (user.args === '0' || user.args === 'root') expect(user.comment).toMatch(/^Root/);
      else expect(user.args).toMatch(/^[1-9][0-9]*(:[1-9][0-9]*)?$/);
    },
  );

  it.each(images.filter((i) => i.kind !== 'base' && !i.dockerfile.startsWith('cni-plugin')))(
    '$dockerfile starts its own workspace',
    ({ dockerfile }) => {
      const entry = instructions(dockerfile).find((i) => i.op === 'ENTRYPOINT')!;
      const argv = JSON.parse(entry.args) as string[];
      expect(argv[argv.length - 1]).toBe(dockerfile.replace(/\/Dockerfile$/, ''));
    },
  );

  it('runs the chain controller as non-root', () => {
    expect(
      instructions('services/chain-controller/Dockerfile').find((i) => i.op === 'USER')!.args,
    ).toBe('65532:65532');
  });
});

describe('image scripts', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'flowline-images-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));
  const app = join(tmp, 'app');
  mkdirSync(join(app, 'services', 'demo', 'dist'), { recursive: true });
  writeFileSync(
    join(app, 'services', 'demo', 'package.json'),
    JSON.stringify({ name: 'demo', bin: { 'flowline-demo': 'dist/main.js' } }),
  );
  writeFileSync(
    join(app, 'services', 'demo', 'dist', 'main.js'),
    'console.log(JSON.stringify({ argv: process.argv.slice(2), lcores: process.env.FLOWLINE_LCORES ?? null }));',
  );
  mkdirSync(join(app, 'services', 'nobin'), { recursive: true });
  writeFileSync(join(app, 'services', 'nobin', 'package.json'), JSON.stringify({ name: 'nobin' }));
  const env = {
    ...process.env,
    FLOWLINE_APP_DIR: app,
    FLOWLINE_RUN_BIN: join(repoRoot, 'docker', 'run-bin.mjs'),
  };

  it("run-bin.mjs runs the workspace's bin entry with the remaining arguments", () => {
    const r = spawnSync(
      process.execPath,
      [join(repoRoot, 'docker', 'run-bin.mjs'), 'services/demo', '--x', '1'],
      { env, encoding: 'utf8' },
    );
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout).argv).toEqual(['--x', '1']);
    const bad = spawnSync(
      process.execPath,
      [join(repoRoot, 'docker', 'run-bin.mjs'), 'services/nobin'],
      { env, encoding: 'utf8' },
    );
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/has no "bin" entry/);
  });

  it('nf-entrypoint.sh gives the NF the CPUs it may run on as its lcores, unless set', () => {
    const allowed = /^Cpus_allowed_list:\s*(\S+)/m.exec(
      readFileSync('/proc/self/status', 'utf8'),
    )![1];
    const r = spawnSync(join(repoRoot, 'docker', 'nf-entrypoint.sh'), ['services/demo'], {
      env: { ...env, FLOWLINE_LCORES: '' },
      encoding: 'utf8',
    });
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout).lcores).toBe(allowed);
    const set = spawnSync(join(repoRoot, 'docker', 'nf-entrypoint.sh'), ['services/demo'], {
      env: { ...env, FLOWLINE_LCORES: '3,4' },
      encoding: 'utf8',
    });
    expect(JSON.parse(set.stdout).lcores).toBe('3,4');
  });

  it('cni-install.sh links the native executable into the CNI bin dir; without a daemon it runs the bundle with the copied node; and a conflist', async () => {
    const bin = join(tmp, 'cni-bin');
    const install = join(tmp, 'opt-flowline');
    const conf = join(tmp, 'net.d');
    const bundle = join(tmp, 'bundle.js');
    writeFileSync(
      bundle,
      'process.stdout.write(JSON.stringify({ cmd: process.env.CNI_COMMAND, args: process.argv.slice(2) }));',
    );
    const conflist = join(tmp, 'flowline-vhost.conflist');
    writeFileSync(
      conflist,
      '{"cniVersion":"1.1.0","name":"flowline-vhost","plugins":[{"type":"flowline"}]}',
    );
    const child = spawn(join(repoRoot, 'docker', 'cni-install.sh'), [], {
      env: {
        ...process.env,
        FLOWLINE_CNI_BIN_DIR: bin,
        FLOWLINE_CNI_INSTALL_DIR: install,
        FLOWLINE_CNI_BUNDLE: bundle,
        // The real native executable (the plugin's build output), as the image carries it.
        FLOWLINE_CNI_EXECUTABLE: join(repoRoot, 'cni-plugin', 'dist', 'flowline'),
        FLOWLINE_CNI_CONF_DIR: conf,
        FLOWLINE_CNI_CONFLIST: conflist,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      let out = '';
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('installed')) resolve();
        });
        child.on('exit', (code) =>
          reject(new Error(`cni-install.sh exited ${code} before installing: ${out}`)),
        );
      });
      expect(out).toContain(`installed ${bin}/flowline`);
      expect(readlinkSync(join(bin, 'flowline'))).toBe(join(install, 'cni', 'flowline'));
      expect(statSync(join(bin, 'flowline')).mode & 0o111).not.toBe(0);
      // No daemon listens: the executable falls back to flowline-cni beside it, which runs the
      // bundle with the copied node (arguments and environment passed through).
      const r = spawnSync(join(bin, 'flowline'), ['a'], {
        env: {
          PATH: '/usr/bin:/bin',
          CNI_COMMAND: 'VERSION',
          FLOWLINE_CNI_SOCKET: join(tmp, 'no-daemon.sock'),
        },
        encoding: 'utf8',
      });
      expect(JSON.parse(r.stdout)).toEqual({ cmd: 'VERSION', args: ['a'] });
      expect(
        readFileSync(join(install, 'bin', 'node')).equals(readFileSync(process.execPath)),
      ).toBe(true);
      expect(readFileSync(join(conf, 'flowline-vhost.conflist'), 'utf8')).toBe(
        readFileSync(conflist, 'utf8'),
      );
    } finally {
      const exited = new Promise((resolve) => child.on('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
  });

  describe('ovs-dpdk start.sh --print-config', () => {
    const run = (vars: Record<string, string>) => {
      const r = spawnSync(join(repoRoot, 'docker', 'ovs-dpdk', 'start.sh'), ['--print-config'], {
        env: { PATH: process.env.PATH, ...vars },
        encoding: 'utf8',
      });
      return {
        status: r.status,
        stderr: r.stderr,
        config: Object.fromEntries(
          r.stdout
            .trim()
            .split('\n')
            .filter(Boolean)
            .map((l) =>
              l
                .replace(/^other_config:/, '')
                .split(/=(.*)/)
                .slice(0, 2),
            ),
        ),
      };
    };

    it('puts PMDs on every allowed CPU but the first, and passes --no-pci without an allow-list', () => {
      expect(run({ FLOWLINE_OVS_CPUS: '2-3,6' }).config).toEqual({
        'dpdk-init': 'true',
        'dpdk-lcore-mask': '0x4',
        'pmd-cpu-mask': '0x48',
        'dpdk-socket-mem': '512',
        'pmd-maxsleep': '0',
        'dpdk-extra': '"--no-pci"',
      });
    });

    it('allow-lists PCI addresses, from the chart or from the device plugin, and keeps an explicit mask', () => {
      const allow = run({
        FLOWLINE_OVS_CPUS: '1',
        FLOWLINE_OVS_PMD_CPU_MASK: '0x6',
        FLOWLINE_OVS_PCI_ALLOW: '0000:3b:00.0,0000:3b:00.1',
        FLOWLINE_OVS_DPDK_EXTRA: '--iova-mode=va',
      }).config;
      expect(allow['dpdk-extra']).toBe('"-a 0000:3b:00.0 -a 0000:3b:00.1 --iova-mode=va"');
      expect(allow['pmd-cpu-mask']).toBe('0x6');
      const fromPool = run({
        FLOWLINE_OVS_CPUS: '0-1',
        FLOWLINE_OVS_PCI_FROM_ENV: 'PCIDEVICE_FLOWLINE_IO_OVS_UPLINK',
        PCIDEVICE_FLOWLINE_IO_OVS_UPLINK: '0000:5e:02.1',
      }).config;
      expect(fromPool['dpdk-extra']).toBe('"-a 0000:5e:02.1"');
    });

    it('refuses a pool that gave OVS no device, naming the variable', () => {
      const r = run({
        FLOWLINE_OVS_CPUS: '0',
        FLOWLINE_OVS_PCI_FROM_ENV: 'PCIDEVICE_FLOWLINE_IO_OVS_UPLINK',
      });
      expect(r.status).toBe(1);
      expect(r.stderr).toContain('PCIDEVICE_FLOWLINE_IO_OVS_UPLINK is empty');
    });
  });
});
