// flowline-emulate as tools/node, the device plugin's tests and a kind node use it (the built
// dist/cli.js, as a separate process). The device plugin reading the tree it makes is tested in
// device-plugin/test/cli.test.ts.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';

const CLI = join(__dirname, '..', 'dist', 'cli.js');

let dir: string;
beforeAll(() => {
  if (!existsSync(CLI))
    throw new Error(`${CLI} is missing: build first (npx nx build @flowline/emulation)`);
});
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'fl-emu-cli-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function run(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 20_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('flowline-emulate CLI', () => {
  it('commands start over a garbled state file from its previous copy, and say so; with none they name the file', () => {
    const root = join(dir, 'sys');
    const state = join(root, '.flowline-emulated.json');
    expect(run('create', '--root', root, '--pf', 'ens1f0:2:0').code).toBe(0);
    expect(run('numvfs', '--root', root, '--pf', 'ens1f0', '--count', '0').code).toBe(0);
    writeFileSync(state, readFileSync(state, 'utf8').slice(0, 30)); // cut short
    const destroy = run('destroy', '--root', root);
    expect(destroy.code).toBe(0);
    const said = JSON.parse(destroy.stderr.trim().split('\n')[0]!) as Record<string, string>;
    expect(said).toMatchObject({ level: 'warn', component: 'emulation', file: state });
    expect(said.msg).toMatch(/unreadable emulated host state moved aside/);
    expect(said.error).toMatch(/JSON/);
    expect(said.movedTo).toMatch(/\.flowline-emulated\.json\.corrupt-/);
    expect(existsSync(root)).toBe(false);

    // Garbled with no earlier copy: refused, naming the file and the parse error.
    expect(run('create', '--root', root, '--pf', 'ens1f0:2:0').code).toBe(0);
    writeFileSync(state, '\u0000\u0000garbage');
    const unbind = run('unbind', '--root', root, '--vf', '0000:3b:02.0');
    expect(unbind.code).toBe(1);
    expect(unbind.stderr).toContain(`holds no readable emulated host state (${state}: `);
    expect(unbind.stderr).toMatch(/remove the folder .* and create it again/);
  });

  it('rejects bad usage with exit 64 and says what to do', () => {
    const badState = run('link', '--root', dir, '--ifname', 'x', '--state', 'sideways');
    expect(badState.code).toBe(64);
    expect(badState.stderr).toContain('use up or down');
    expect(run('create', '--root', join(dir, 's'), '--pf', 'ens1f0').stderr).toContain('NAME:VFS');
    expect(run('--help').stdout).toContain('flowline-emulate create');
  });
});
