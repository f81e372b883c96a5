// The command line as an operator (or tools/node, or a kind node's init script) uses it.
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CLI } from './harness';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'fl-dp-cli-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function run(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 20_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('flowline-device-plugin CLI', () => {
  it('emulate create / numvfs / unbind / link / destroy, and inspect reads the tree', () => {
    const root = join(dir, 'sys');
    expect(
      run(
        'emulate',
        'create',
        '--root',
        root,
        '--pf',
        'ens1f0:2:0',
        '--pf',
        'ens2f0:1:1:vfio-pci',
        '--hugepages',
        '4',
      ).code,
    ).toBe(0);
    expect(readlinkSync(join(root, 'bus/pci/devices/0000:3b:00.0/virtfn1'))).toBe(
      '../0000:3b:02.1',
    );
    expect(run('emulate', 'numvfs', '--root', root, '--pf', 'ens1f0', '--count', '0').code).toBe(0);
    expect(run('emulate', 'numvfs', '--root', root, '--pf', 'ens1f0', '--count', '3').code).toBe(0);
    const busy = run('emulate', 'numvfs', '--root', root, '--pf', 'ens1f0', '--count', '4');
    expect(busy.code).toBe(1);
    expect(busy.stderr).toContain('write 0 first');
    expect(run('emulate', 'unbind', '--root', root, '--vf', '0000:3b:02.2').code).toBe(0);
    expect(
      run('emulate', 'link', '--root', root, '--ifname', 'ens2f0', '--state', 'down').code,
    ).toBe(0);

    const config = join(dir, 'pools.json');
    writeFileSync(
      config,
      JSON.stringify({ pools: [{ name: 'vf', selectors: { pfNames: ['ens1f0'] } }] }),
    );
    const out = run('inspect', '--sysfs-root', root, '--config', config);
    expect(out.code).toBe(0);
    const report = JSON.parse(out.stdout);
    expect(
      report.pfs.map((p: { name: string; numVfs: number; operstate: string }) => [
        p.name,
        p.numVfs,
        p.operstate,
      ]),
    ).toEqual([
      ['ens1f0', 3, 'up'],
      ['ens2f0', 1, 'down'],
    ]);
    expect(report.resources[0].resourceName).toBe('flowline.io/vf');
    // the unbound VF is not in a pool of a fresh scan (no memory of its earlier pool)
    expect(report.resources[0].devices.map((d: { id: string }) => d.id)).toEqual([
      '0000:3b:02.0',
      '0000:3b:02.1',
    ]);
    expect(report.hugepages.perNode).toHaveLength(2);

    expect(run('emulate', 'destroy', '--root', root).code).toBe(0);
    expect(existsSync(root)).toBe(false);
  });

  it('emulate commands start over a garbled state file from its previous copy, and say so; with none they name the file', () => {
    const root = join(dir, 'sys');
    const state = join(root, '.flowline-emulated.json');
    expect(run('emulate', 'create', '--root', root, '--pf', 'ens1f0:2:0').code).toBe(0);
    expect(run('emulate', 'numvfs', '--root', root, '--pf', 'ens1f0', '--count', '0').code).toBe(0);
    writeFileSync(state, readFileSync(state, 'utf8').slice(0, 30)); // cut short
    const destroy = run('emulate', 'destroy', '--root', root);
    expect(destroy.code).toBe(0);
    const said = JSON.parse(destroy.stderr.trim().split('\n')[0]!) as Record<string, string>;
    expect(said).toMatchObject({ level: 'warn', component: 'device-plugin', file: state });
    expect(said.msg).toMatch(/unreadable emulated host state moved aside/);
    expect(said.error).toMatch(/JSON/);
    expect(said.movedTo).toMatch(/\.flowline-emulated\.json\.corrupt-/);
    expect(existsSync(root)).toBe(false);

    // Garbled with no earlier copy: refused, naming the file and the parse error.
    expect(run('emulate', 'create', '--root', root, '--pf', 'ens1f0:2:0').code).toBe(0);
    writeFileSync(state, '\u0000\u0000garbage');
    const unbind = run('emulate', 'unbind', '--root', root, '--vf', '0000:3b:02.0');
    expect(unbind.code).toBe(1);
    expect(unbind.stderr).toContain(`holds no readable emulated host state (${state}: `);
    expect(unbind.stderr).toMatch(/remove the folder .* and create it again/);
  });

  it('rejects bad usage with exit 64 and says what to do', () => {
    const noConfig = run('serve');
    expect(noConfig.code).toBe(64);
    expect(noConfig.stderr).toContain('--config is required');
    const badState = run('emulate', 'link', '--root', dir, '--ifname', 'x', '--state', 'sideways');
    expect(badState.code).toBe(64);
    expect(badState.stderr).toContain('use up or down');
    expect(run('emulate', 'create', '--root', join(dir, 's'), '--pf', 'ens1f0').stderr).toContain(
      'NAME:VFS',
    );
    expect(run('--help').stdout).toContain('emulate create');
  });
});
