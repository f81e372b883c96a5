// The command line as an operator (or tools/node) uses it. The emulated NICs it inspects are made
// by @flowline/emulation's flowline-emulate (its own tests: packages/emulation/test/cli.test.ts).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EMULATE_CLI } from '@flowline/emulation';
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

/** `flowline-emulate <args>`: what `flowline-device-plugin emulate <args>` was. */
function emulate(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [EMULATE_CLI, ...args], {
    encoding: 'utf8',
    timeout: 20_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('flowline-device-plugin CLI', () => {
  it('emulate create / numvfs / unbind / link / destroy, and inspect reads the tree', () => {
    const root = join(dir, 'sys');
    expect(
      emulate(
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
    expect(emulate('numvfs', '--root', root, '--pf', 'ens1f0', '--count', '0').code).toBe(0);
    expect(emulate('numvfs', '--root', root, '--pf', 'ens1f0', '--count', '3').code).toBe(0);
    const busy = emulate('numvfs', '--root', root, '--pf', 'ens1f0', '--count', '4');
    expect(busy.code).toBe(1);
    expect(busy.stderr).toContain('write 0 first');
    expect(emulate('unbind', '--root', root, '--vf', '0000:3b:02.2').code).toBe(0);
    expect(emulate('link', '--root', root, '--ifname', 'ens2f0', '--state', 'down').code).toBe(0);

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

    expect(emulate('destroy', '--root', root).code).toBe(0);
    expect(existsSync(root)).toBe(false);
  });

  it('rejects bad usage with exit 64 and says what to do', () => {
    const noConfig = run('serve');
    expect(noConfig.code).toBe(64);
    expect(noConfig.stderr).toContain('--config is required');
    // The emulated-NIC tool is not in the device plugin's executable: it says where it went.
    const emulateHere = run('emulate', 'create', '--root', join(dir, 's'), '--pf', 'ens1f0:1');
    expect(emulateHere.code).toBe(64);
    expect(emulateHere.stderr).toContain('flowline-emulate');
    expect(existsSync(join(dir, 's'))).toBe(false);
    expect(run('--help').stdout).not.toContain('emulate');
  });
});
