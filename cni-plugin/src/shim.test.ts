import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PLUGIN, runProcess } from '../test/support/exec';

// The native executable's own errors (shim/flowline.c) must be the spec's error JSON on stdout
// whatever FLOWLINE_CNI_SOCKET and its install path hold: quotes, backslashes, control bytes.
describe('native executable: its error JSON parses whatever the socket and install paths hold', () => {
  const root = mkdtempSync(join(tmpdir(), 'flcni-shim-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const odd = 'a"b\\c\td\u0001e';
  const env = { CNI_COMMAND: 'VERSION' };
  const stdin = '{"cniVersion":"1.0.0"}';

  it('a FLOWLINE_CNI_SOCKET too long for a unix socket (code 5, the value in details)', async () => {
    const socket = `/${odd}/${'s'.repeat(120)}`;
    const r = await runProcess(PLUGIN, [], { ...env, FLOWLINE_CNI_SOCKET: socket }, stdin);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toEqual({
      cniVersion: '1.0.0',
      code: 5,
      msg: expect.stringContaining('FLOWLINE_CNI_SOCKET'),
      details: socket,
    });
  });

  it('no daemon and no flowline-cni beside an executable installed under an odd path (code 11)', async () => {
    const dir = join(root, odd);
    mkdirSync(dir, { recursive: true });
    const alone = join(dir, 'flowline');
    copyFileSync(PLUGIN, alone);
    const socket = join(root, `no-daemon-${odd}.sock`);
    const r = await runProcess(alone, [], { ...env, FLOWLINE_CNI_SOCKET: socket }, stdin);
    expect(r.code).toBe(1);
    const out = JSON.parse(r.stdout) as { code: number; details: string };
    expect(out.code).toBe(11);
    expect(out.details).toContain(`daemon socket ${socket}: `);
    expect(out.details).toContain(`${join(dir, 'flowline-cni')}: `);
  });
});
