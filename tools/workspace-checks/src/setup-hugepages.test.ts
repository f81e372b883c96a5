// The set-up script's hugepage step (tools/setup/setup.sh), against a fake /sys and /proc: it
// reserves 2 MiB pages by their own counter (not vm.nr_hugepages, which counts pages of the
// kernel's default size, 1 GiB on hosts booted so), accepts an existing hugetlbfs only of 2 MiB
// pages, refuses a count that is not a number, and says when reserved pages are not free.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

const SCRIPT = resolve(__dirname, '..', '..', 'setup', 'setup.sh');

describe('setup.sh: hugepages', () => {
  let root: string;
  let pages2m: string;
  let mountPoint: string;

  /** A kernel with `nr` 2 MiB pages reserved, `free` of them free, and these mounts. */
  const kernel = (nr: number, free: number, mounts: string[]): void => {
    writeFileSync(join(pages2m, 'nr_hugepages'), `${nr}\n`);
    writeFileSync(join(pages2m, 'free_hugepages'), `${free}\n`);
    writeFileSync(join(root, 'proc', 'mounts'), mounts.map((m) => `${m}\n`).join(''));
  };
  const hugetlbfs = (path: string, pagesize: string): string =>
    `nodev ${path} hugetlbfs rw,relatime,pagesize=${pagesize} 0 0`;
  const run = (env: Record<string, string>) =>
    spawnSync('bash', [SCRIPT], {
      encoding: 'utf8',
      timeout: 60_000,
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        FLOWLINE_SKIP_APT: '1',
        FLOWLINE_SKIP_BUILD: '1',
        FLOWLINE_SETUP_SYSFS: join(root, 'sys'),
        FLOWLINE_SETUP_PROC: join(root, 'proc'),
        FLOWLINE_HUGEPAGE_MOUNT: mountPoint,
        ...env,
      },
    });

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'fl-setup-'));
    pages2m = join(root, 'sys', 'kernel', 'mm', 'hugepages', 'hugepages-2048kB');
    mkdirSync(pages2m, { recursive: true });
    mkdirSync(join(root, 'proc'));
    mountPoint = join(root, 'huge');
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('reserves 2 MiB pages through their own counter and takes a 2 MiB hugetlbfs as it is', () => {
    kernel(0, 0, [hugetlbfs(mountPoint, '2M'), hugetlbfs('/dev/hugepages', '1024M')]);
    const r = run({ FLOWLINE_HUGEPAGES: '8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(readFileSync(join(pages2m, 'nr_hugepages'), 'utf8').trim()).toBe('8');
    expect(r.stdout).toContain('reserving 8 2 MiB hugepages (had 0)');
    expect(r.stdout).toContain(`hugetlbfs mounted on ${mountPoint}`);
    expect(r.stdout).toContain('ready');
  });

  it('finds the mount written with a trailing slash, and says when reserved pages are not free', () => {
    kernel(8, 3, [hugetlbfs(mountPoint, '2M')]);
    const r = run({ FLOWLINE_HUGEPAGES: '8', FLOWLINE_HUGEPAGE_MOUNT: `${mountPoint}/` });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('hugepages reserved: 8');
    expect(r.stdout).toContain('warning: only 3 of them are free');
    expect(r.stdout).toContain(`hugetlbfs mounted on ${mountPoint}\n`);
  });

  it('refuses a hugetlbfs of 1 GiB pages at the mount path, naming it', () => {
    kernel(8, 8, [hugetlbfs(mountPoint, '1024M')]);
    const r = run({ FLOWLINE_HUGEPAGES: '8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(
      `the hugetlbfs on ${mountPoint} is not of 2 MiB pages (rw,relatime,pagesize=1024M)`,
    );
    expect(r.stdout).not.toContain('ready');
  });

  it('refuses a count of pages that is not a number, before touching anything', () => {
    kernel(0, 0, [hugetlbfs(mountPoint, '2M')]);
    const r = run({ FLOWLINE_HUGEPAGES: '2G' });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('FLOWLINE_HUGEPAGES="2G" is not a number of 2 MiB pages');
    expect(readFileSync(join(pages2m, 'nr_hugepages'), 'utf8').trim()).toBe('0');
  });
});
