/**
 * Builds native/test/ct_acl_swap.c (the conntrack and ACL stages run on a packet across ACL
 * table swaps, no EAL: see the file) with UBSan and runs it: a table built at a freed table's
 * address must not be taken for it (the old table's cached denial answered, counted at its rule
 * index in the new table's counters), nor a cached rule index past the table's rules counted.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { nativeDir } from '../support/fuzz';

const work = mkdtempSync(path.join(tmpdir(), 'fl-ct-acl-swap-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const pkgConfig = (what: string): string[] =>
  execFileSync('pkg-config', [what, 'libdpdk'], { encoding: 'utf8' }).trim().split(/\s+/);

describe('conntrack across ACL table swaps (C, no EAL)', () => {
  it('knows a table by its generation, not its address, and never counts a rule the table lacks', () => {
    const bin = path.join(work, 'ct_acl_swap');
    const build = spawnSync(
      'cc',
      [
        '-O1',
        '-g',
        '-Wall',
        '-Wextra',
        '-Werror',
        '-fsanitize=undefined',
        '-fno-sanitize-recover=undefined',
        ...pkgConfig('--cflags'),
        `-I${nativeDir}`,
        ...['test/ct_acl_swap.c', 'fl_stage_conntrack.c', 'fl_stage_acl.c', 'fl_conntrack.c']
          .concat('fl_parse.c')
          .map((f) => path.join(nativeDir, f)),
        ...pkgConfig('--libs'),
        '-o',
        bin,
      ],
      { encoding: 'utf8' },
    );
    expect(build.stderr).toBe('');
    expect(build.status).toBe(0);
    const run = spawnSync(bin, [], { encoding: 'utf8' });
    // 2: the allocator did not put the new table at the old one's address (nothing shown)
    expect(run.stderr).toBe('ct_acl_swap: ok\n');
    expect(run.status).toBe(0);
  });
});
