import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
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

  it('bytes of the install path that are not UTF-8 come out as U+FFFD, UTF-8 as it is (code 11)', () => {
    // A directory name of raw bytes: é (UTF-8), 0xff (never UTF-8), 0xc3 before '(' (a lead byte
    // cut short), 0xe2 0x82 before '-' (a 3-byte sequence cut short: one U+FFFD for both).
    const dir = Buffer.concat([
      Buffer.from(join(root, 'bytes-\u00e9-')),
      Buffer.from([0xff, 0xc3, 0x28, 0xe2, 0x82]),
      Buffer.from('-end'),
    ]);
    mkdirSync(dir);
    const alone = Buffer.concat([dir, Buffer.from('/flowline')]);
    copyFileSync(PLUGIN, alone);
    // Spawned through a symlink of plain ASCII: the executable reads its own path from
    // /proc/self/exe, the raw bytes.
    const link = join(root, 'to-raw-bytes');
    symlinkSync(alone, link);
    const socket = join(root, 'no-daemon-raw.sock');
    const r = spawnSync(link, [], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env, FLOWLINE_CNI_SOCKET: socket },
      input: stdin,
      timeout: 60_000,
    });
    expect(r.status).toBe(1);
    // Well-formed UTF-8 or this throws; Node's own decoder (one U+FFFD per ill-formed
    // subsequence) says what the path reads as.
    const text = new TextDecoder('utf-8', { fatal: true }).decode(r.stdout);
    const out = JSON.parse(text) as { code: number; details: string };
    expect(out.code).toBe(11);
    const shown = new TextDecoder('utf-8').decode(dir);
    expect(shown).toContain('\u00e9-\ufffd\ufffd(\ufffd-end');
    expect(out.details).toContain(`${shown}/flowline-cni: `);
  });
});
