import { mkdirSync, rmSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ealLeftovers } from './testpmd';

describe('testpmd: what its EAL leaves, removed after it exits', () => {
  it("is the prefix's runtime directory under /var/run/dpdk when one exists", () => {
    const prefix = `flbtest${process.pid}`;
    const dir = `/var/run/dpdk/${prefix}`;
    let made = true;
    try {
      mkdirSync(dir, { recursive: true });
    } catch {
      made = false; // not root: DPDK uses another directory, and there is nothing here
    }
    try {
      expect(ealLeftovers(['-l', '0,1', '--file-prefix', prefix])).toEqual(made ? [dir] : []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is nothing for a prefix that is not one plain name, or no prefix', () => {
    for (const p of ['..', '../etc', 'a/b', '.hidden', ''])
      expect(ealLeftovers(['--file-prefix', p])).toEqual([]);
    expect(ealLeftovers(['-l', '0'])).toEqual([]);
    expect(ealLeftovers(['--file-prefix'])).toEqual([]);
  });
});
