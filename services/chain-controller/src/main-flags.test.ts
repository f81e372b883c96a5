import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

/** src/main.ts as a process with `args` and `env` (PATH only besides), until it exits. */
function runMain(args: string[], env: Record<string, string> = {}) {
  const root = join(__dirname, '..');
  return spawnSync(process.execPath, ['--import', 'tsx', join(root, 'src/main.ts'), ...args], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', ...env },
    encoding: 'utf8',
    timeout: 30_000,
  });
}

describe('flowline-chain-controller flags', () => {
  it('refuses an underlay MTU that is not an integer 576-65535, from the flag or the environment (exit 2, naming it)', () => {
    for (const [args, env, shown] of [
      [['--underlay-mtu', '575'], {}, '575'],
      [['--underlay-mtu', '65536'], {}, '65536'],
      [['--underlay-mtu', '1500.5'], {}, '1500.5'],
      [[], { FLOWLINE_UNDERLAY_MTU: 'jumbo' }, 'jumbo'],
    ] as const) {
      const run = runMain(['--insecure', '--ovsdb', '/nonexistent/db.sock', ...args], env);
      expect(run.status).toBe(2);
      expect(JSON.parse(run.stderr.trim())).toMatchObject({
        level: 'error',
        msg: `--underlay-mtu: "${shown}" must be an integer 576-65535`,
      });
    }
  });

  it('lists the flag and its variable in --help', () => {
    const help = runMain(['--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/--underlay-mtu <bytes>\s+FLOWLINE_UNDERLAY_MTU/);
  });
});
