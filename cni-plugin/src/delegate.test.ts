import {
  chmodSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '@flowline/telemetry';
import { afterAll, describe, expect, it } from 'vitest';
import { cachedPluginVersions, execPlugin } from './delegate';

describe('cachedPluginVersions', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flcni-delegate-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  // A plugin that answers VERSION by the exec protocol and counts how often it was asked.
  const plugin = join(dir, 'ipam');
  const calls = join(dir, 'calls');
  writeFileSync(
    plugin,
    `#!/bin/sh\necho x >> ${calls}\necho '{"cniVersion":"1.0.0","supportedVersions":["0.4.0","1.0.0"]}'\n`,
  );
  chmodSync(plugin, 0o755);
  const asked = (): number => readFileSync(calls, 'utf8').trim().split('\n').length;
  const cache = join(dir, 'cache');

  it('asks the plugin once, then answers from the cache until the binary changes', async () => {
    expect(await cachedPluginVersions(plugin, [dir], '1.1.0', cache, process.env)).toEqual([
      '0.4.0',
      '1.0.0',
    ]);
    expect(await cachedPluginVersions(plugin, [dir], '1.1.0', cache, process.env)).toEqual([
      '0.4.0',
      '1.0.0',
    ]);
    expect(asked()).toBe(1);
    utimesSync(plugin, new Date(), new Date(Date.now() + 5000)); // replaced binary: new mtime
    expect(await cachedPluginVersions(plugin, [dir], '1.1.0', cache, process.env)).toEqual([
      '0.4.0',
      '1.0.0',
    ]);
    expect(asked()).toBe(2);
    expect(
      Object.keys(JSON.parse(readFileSync(join(cache, 'plugin-versions.json'), 'utf8'))),
    ).toHaveLength(1);
  });

  it('falls back to asking when the cache is unreadable or cannot be written', async () => {
    writeFileSync(join(cache, 'plugin-versions.json'), '{not json');
    expect(await cachedPluginVersions(plugin, [dir], '1.1.0', cache, process.env)).toEqual([
      '0.4.0',
      '1.0.0',
    ]);
    expect(asked()).toBe(3);
    const unwritable = join(dir, 'afile');
    writeFileSync(unwritable, '');
    expect(
      await cachedPluginVersions(plugin, [dir], '1.1.0', join(unwritable, 'sub'), process.env),
    ).toEqual(['0.4.0', '1.0.0']);
    expect(asked()).toBe(4);
  });

  it('a truncated or garbled cache is moved aside, logged with the file and the parse error, and rewritten', async () => {
    const dir2 = join(dir, 'cache2');
    const file = join(dir2, 'plugin-versions.json');
    const lines: string[] = [];
    const log = createLogger('test', { write: (l) => lines.push(l) });
    const ask = () => cachedPluginVersions(plugin, [dir], '1.1.0', dir2, process.env, log);
    expect(await ask()).toEqual(['0.4.0', '1.0.0']);
    const before = asked();
    for (const damage of ['', '{"x": ["1.0', '\u0000\u0001garbage']) {
      writeFileSync(file, damage);
      lines.length = 0;
      expect(await ask()).toEqual(['0.4.0', '1.0.0']);
      const said = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(said).toContainEqual(
        expect.objectContaining({
          level: 'warn',
          msg: 'plugin version cache unreadable',
          file,
          error: expect.any(String),
          movedTo: expect.stringContaining(`${file}.corrupt-`),
        }),
      );
      // What it did: the cache works again (from the previous copy, or rewritten after asking).
      expect(JSON.parse(readFileSync(file, 'utf8'))).toBeTypeOf('object');
    }
    expect(asked() - before).toBeLessThanOrEqual(3);
    expect(readdirSync(dir2).filter((n) => n.includes('.tmp-'))).toEqual([]);
  });
});

describe('execPlugin', () => {
  it("gives the delegate the environment it was handed, not this process's own", async () => {
    // The resident daemon runs invocations for many callers: the IPAM plugin must see the
    // runtime's environment of this invocation, with the CNI_* of the delegated call.
    const dir = mkdtempSync(join(tmpdir(), 'flcni-delegate-env-'));
    try {
      const plugin = join(dir, 'ipam');
      writeFileSync(
        plugin,
        `#!/bin/sh\nprintf '{"mark":"%s","own":"%s","cmd":"%s","path":"%s"}' "$CALLER_MARK" "$DAEMON_ONLY" "$CNI_COMMAND" "$CNI_PATH"\n`,
      );
      chmodSync(plugin, 0o755);
      process.env.DAEMON_ONLY = 'daemon';
      const out = await execPlugin(
        plugin,
        {
          command: 'ADD',
          path: [dir, '/x'],
          inherit: { PATH: '/usr/bin:/bin', CALLER_MARK: 'caller', CNI_COMMAND: 'DEL' },
        },
        {},
      );
      expect(out).toEqual({ mark: 'caller', own: '', cmd: 'ADD', path: `${dir}:/x` });
    } finally {
      delete process.env.DAEMON_ONLY;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
