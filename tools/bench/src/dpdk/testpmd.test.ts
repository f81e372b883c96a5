import { describe, expect, it } from 'vitest';
import { runtimeDirOf } from './testpmd';

describe('testpmd: the EAL runtime directory removed after it exits', () => {
  it('is /var/run/dpdk/<file-prefix> for a plain prefix (as root; DPDK uses another for users)', () => {
    const root = process.getuid?.() === 0;
    expect(runtimeDirOf(['-l', '0,1', '--file-prefix', 'flb12-gen', '--no-pci'])).toBe(
      root ? '/var/run/dpdk/flb12-gen' : undefined,
    );
  });

  it('is nothing for a prefix that is not one plain name, or no prefix', () => {
    for (const p of ['..', '../etc', 'a/b', '.hidden', ''])
      expect(runtimeDirOf(['--file-prefix', p])).toBeUndefined();
    expect(runtimeDirOf(['-l', '0'])).toBeUndefined();
    expect(runtimeDirOf(['--file-prefix'])).toBeUndefined();
  });
});
