import { describe, expect, it } from 'vitest';
import { buildEalArgs } from '@flowline/dpdk';
import { PodDeviceError } from './errors';
import { ealOptionsFor, parseLcores } from './pod-dataplane';
import type { EalPlan, PodPort } from './pod-devices';

const plan: EalPlan = {
  lcores: '0,1',
  memoryMb: 256,
  noHuge: false,
  inMemory: true,
  filePrefix: 'router-a',
  pciAllow: [],
  extraArgs: [],
};

const virtio: PodPort = {
  name: 'net1',
  kind: 'virtio-user',
  devargs: ['net_virtio_user_net1,path=/run/flowline/x/net1.sock,server=1,queues=1'],
  origin: '/pod/net1.json',
  socketPath: '/run/flowline/x/net1.sock',
};
const vf: PodPort = {
  name: 'sriov0',
  kind: 'pci',
  devargs: ['0000:03:00.1'],
  origin: 'PCIDEVICE_FLOWLINE_IO_SRIOV',
  pciAddress: '0000:03:00.1',
};

describe('parseLcores', () => {
  it('expands lists and ranges', () => {
    expect(parseLcores('0,1')).toEqual([0, 1]);
    expect(parseLcores('0-2,5')).toEqual([0, 1, 2, 5]);
  });
  it('names eal.lcores when the list is bad', () => {
    expect(() => parseLcores('1-0')).toThrow(PodDeviceError);
    expect(() => parseLcores('a')).toThrow(/eal\.lcores/);
  });
});

describe('ealOptionsFor', () => {
  it('gives each process its own file prefix and --no-pci without VFs', () => {
    const o = ealOptionsFor(plan, [], 4242);
    expect(o.filePrefix).toBe('router-a-4242');
    const args = buildEalArgs(o, 4);
    expect(args).toContain('--no-pci');
    expect(args).toEqual(expect.arrayContaining(['--file-prefix', 'router-a-4242', '-m', '256']));
    expect(args).toContain('--in-memory');
  });

  it('allows exactly the pod VFs and keeps the prefix within 64 characters', () => {
    const o = ealOptionsFor({ ...plan, filePrefix: 'x'.repeat(64) }, [vf], 123456);
    expect(o.filePrefix).toHaveLength(64);
    expect(o.filePrefix.endsWith('-123456')).toBe(true);
    const args = buildEalArgs({ ...o, pciAllow: vf.pciAddress ? [vf.pciAddress] : [] }, 4);
    expect(args).not.toContain('--no-pci');
    expect(args).toEqual(expect.arrayContaining(['-a', '0000:03:00.1']));
  });

  it('asks for single-file segments with virtio-user ports and uses the pod hugetlbfs', () => {
    const o = ealOptionsFor({ ...plan, hugeDir: '/hugepages', inMemory: false }, [virtio], 1);
    expect(o.singleFileSegments).toBe(true);
    const args = buildEalArgs(o, 4);
    expect(args).toEqual(
      expect.arrayContaining(['--single-file-segments', '--huge-dir', '/hugepages']),
    );
    // EAL refuses --huge-unlink with --single-file-segments.
    expect(args.some((a) => a.startsWith('--huge-unlink'))).toBe(false);
    expect(args).not.toContain('--in-memory');
  });

  it('unlinks hugepage files right after mapping when neither in-memory nor virtio-user', () => {
    const args = buildEalArgs(ealOptionsFor({ ...plan, inMemory: false }, [vf], 1), 4);
    expect(args).toContain('--huge-unlink=always');
    expect(args).not.toContain('--single-file-segments');
  });

  it('drops hugeDir under --no-huge (explicitly asked for, tests only)', () => {
    const o = ealOptionsFor({ ...plan, hugeDir: '/hugepages', noHuge: true }, [], 1);
    expect(o.hugeDir).toBeUndefined();
    expect(buildEalArgs(o, 4)).toContain('--no-huge');
  });
});
