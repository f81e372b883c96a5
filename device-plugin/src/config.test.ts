import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfigFile, parseConfig, parsePfName } from './config';
import { ConfigError } from './errors';

function fieldOf(value: unknown): string {
  try {
    parseConfig(value);
  } catch (err) {
    if (err instanceof ConfigError) return err.field;
    throw err;
  }
  throw new Error('config was accepted');
}

describe('pool config', () => {
  it('fills defaults and normalizes selectors', () => {
    const c = parseConfig({
      pools: [
        {
          name: 'sriov_vf',
          selectors: {
            vendors: ['0x8086'],
            devices: ['154C'],
            pfNames: ['ens1f0#0-3,6', 'ens2f0'],
            numaNodes: [0],
          },
        },
      ],
    });
    expect(c.pools[0]).toEqual({
      name: 'sriov_vf',
      resourceName: 'flowline.io/sriov_vf',
      deviceType: 'netdevice',
      allocationPolicy: 'spread',
      cdi: false,
      hugepagesMb: undefined,
      selectors: {
        vendors: ['8086'],
        devices: ['154c'],
        pfNames: [
          {
            pf: 'ens1f0',
            vfs: [
              [0, 3],
              [6, 6],
            ],
          },
          { pf: 'ens2f0', vfs: undefined },
        ],
        numaNodes: [0],
      },
    });
    expect(c.hugepages).toEqual({
      mount: false,
      hostPath: '/dev/hugepages',
      containerPath: '/dev/hugepages',
      resource: false,
      sizes: undefined,
    });
  });

  it('mounts hugetlbfs into containers only when asked, or when hugepages are resources of their own', () => {
    const mount = (hugepages: unknown): boolean =>
      parseConfig({ pools: [], hugepages }).hugepages.mount;
    // A pod's own HugePages emptyDir is where its pages come from; a mount would collide with it.
    expect(mount(undefined)).toBe(false);
    expect(mount({})).toBe(false);
    expect(mount({ mount: true })).toBe(true);
    // flowline.io/hugepages-<size> pods have no such emptyDir: the mount is how they get pages.
    expect(mount({ resource: true })).toBe(true);
    expect(mount({ resource: true, mount: false })).toBe(false);
  });

  it('names the bad field', () => {
    expect(fieldOf([])).toBe('(top level)');
    expect(fieldOf({})).toBe('pools');
    expect(fieldOf({ pools: [], extra: 1 })).toBe('extra');
    expect(fieldOf({ pools: [{}] })).toBe('pools[0].name');
    expect(fieldOf({ pools: [{ name: 'a b' }] })).toBe('pools[0].name');
    expect(fieldOf({ pools: [{ name: 'x'.repeat(64) }] })).toBe('pools[0].name');
    expect(fieldOf({ pools: [{ name: 'hugepages-2Mi' }] })).toBe('pools[0].name');
    expect(fieldOf({ pools: [{ name: 'a', deviceType: 'vdpa' }] })).toBe('pools[0].deviceType');
    expect(fieldOf({ pools: [{ name: 'a', allocationPolicy: 'random' }] })).toBe(
      'pools[0].allocationPolicy',
    );
    expect(fieldOf({ pools: [{ name: 'a', selectors: { vendors: ['intel'] } }] })).toBe(
      'pools[0].selectors.vendors[0]',
    );
    expect(fieldOf({ pools: [{ name: 'a', selectors: { drivers: [] } }] })).toBe(
      'pools[0].selectors.drivers',
    );
    expect(fieldOf({ pools: [{ name: 'a', selectors: { pfNames: ['ens1f0#a'] } }] })).toBe(
      'pools[0].selectors.pfNames[0]',
    );
    expect(fieldOf({ pools: [{ name: 'a', selectors: { numaNodes: [-1] } }] })).toBe(
      'pools[0].selectors.numaNodes[0]',
    );
    expect(fieldOf({ pools: [{ name: 'a', selectors: { pfname: ['x'] } }] })).toBe(
      'pools[0].selectors.pfname',
    );
    expect(fieldOf({ pools: [{ name: 'a', hugepagesMb: 0 }] })).toBe('pools[0].hugepagesMb');
    expect(fieldOf({ pools: [{ name: 'a.b', cdi: true }] })).toBe('pools[0].name');
    expect(fieldOf({ pools: [{ name: 'vf-a' }, { name: 'vf_a' }] })).toBe('pools[1].name');
    expect(fieldOf({ pools: [], hugepages: { hostPath: 'dev/hugepages' } })).toBe(
      'hugepages.hostPath',
    );
    expect(fieldOf({ pools: [], hugepages: { sizes: ['2M'] } })).toBe('hugepages.sizes[0]');
  });

  it('takes as CDI class only a name the CDI spec allows (letter first, letter or digit last)', () => {
    for (const name of ['1g', '9_vf']) {
      expect(() => parseConfig({ pools: [{ name, cdi: true }] }), name).toThrow(
        /pools\[0\]\.name: .* cannot be a CDI class \(starts with a letter/,
      );
      expect(fieldOf({ pools: [{ name, cdi: true }] })).toBe('pools[0].name');
    }
    for (const name of ['a', 'vf1', 'vf_1g', 'Vf-a0'])
      expect(parseConfig({ pools: [{ name, cdi: true }] }).pools[0]!.cdi, name).toBe(true);
    // without CDI a leading digit is a fine resource name
    expect(parseConfig({ pools: [{ name: '1g' }] }).pools[0]!.resourceName).toBe('flowline.io/1g');
  });

  it('names hugepage sizes as sysfs sizes are named, whatever the unit', () => {
    const sizes = (s: string[]): string[] | undefined =>
      parseConfig({ pools: [], hugepages: { sizes: s } }).hugepages.sizes;
    expect(sizes(['2048Ki', '1024Mi', '1Gi', '2Mi', '64Ki'])).toEqual(['2Mi', '1Gi', '64Ki']);
    for (const bad of ['3Mi', '0Ki', '2Ki', '2MB', '2 Mi', '99999999999Gi', '-2Mi']) {
      expect(fieldOf({ pools: [], hugepages: { sizes: ['1Gi', bad] } }), bad).toBe(
        'hugepages.sizes[1]',
      );
    }
    expect(() => sizes(['3Mi'])).toThrow(/"3Mi" is not a hugepage size \(a power of two/);
  });

  it('parses PF names with VF ranges', () => {
    expect(parsePfName('ens1f0#2', 'f')).toEqual({ pf: 'ens1f0', vfs: [[2, 2]] });
    expect(() => parsePfName('ens1f0#3-1', 'f')).toThrow(/ends before it starts/);
    expect(() => parsePfName('a#1#2', 'f')).toThrow(ConfigError);
  });

  it('reports the file with the field', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fl-dp-config-'));
    try {
      const file = join(dir, 'c.json');
      writeFileSync(file, '{"pools": [{"name": "ok", "deviceType": "x"}]}');
      expect(() => loadConfigFile(file)).toThrow(`${file}: pools[0].deviceType:`);
      writeFileSync(file, '{"pools": ');
      expect(() => loadConfigFile(file)).toThrow(/not JSON/);
      expect(() => loadConfigFile(join(dir, 'missing.json'))).toThrow(/cannot read/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
