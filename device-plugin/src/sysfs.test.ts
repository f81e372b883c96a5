import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseConfig } from './config';
import { EmulatedHost, pfAddress, vfAddress } from '@flowline/emulation';
import { PoolAssigner, deviceTypeOf } from './selectors';
import { Sysfs, discoverHugepages, discoverPfs, hugepageSizeName } from './sysfs';

let dir: string;
let host: EmulatedHost;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'fl-dp-sysfs-'));
  host = EmulatedHost.create({
    root: join(dir, 'sys'),
    veth: false,
    hugepages: 8,
    pfs: [
      { name: 'ens1f0', numVfs: 3, numaNode: 0 },
      { name: 'ens2f0', numVfs: 2, numaNode: 1, vfDriver: 'vfio-pci', totalVfs: 16 },
    ],
  });
});

afterEach(() => {
  host.destroy();
  rmSync(dir, { recursive: true, force: true });
});

describe('sysfs discovery on a generated tree', () => {
  it('finds PFs and VFs with vendor, device, driver, IOMMU group, NUMA node, netdev and link state', () => {
    const pfs = discoverPfs(new Sysfs(host.root));
    expect(pfs.map((p) => [p.address, p.name, p.totalVfs, p.numVfs, p.driver, p.numaNode])).toEqual(
      [
        [pfAddress(0), 'ens1f0', 8, 3, 'i40e', 0],
        [pfAddress(1), 'ens2f0', 16, 2, 'i40e', 1],
      ],
    );
    expect(pfs[0]!.vfs[1]).toEqual({
      address: vfAddress(0, 1),
      index: 1,
      pfAddress: pfAddress(0),
      pfName: 'ens1f0',
      vendor: '8086',
      device: '154c',
      driver: 'iavf',
      iommuGroup: '102',
      iommuGroupDevices: [vfAddress(0, 1)],
      numaNode: 0,
      netdevs: ['ens1f0v1'],
      operstate: 'up',
    });
    expect(pfs[1]!.vfs.map((v) => [v.driver, v.netdevs, v.iommuGroup])).toEqual([
      ['vfio-pci', [], '201'],
      ['vfio-pci', [], '202'],
    ]);
  });

  it('reads numa_node -1 as unknown and tolerates a VF vanishing mid-scan', () => {
    writeFileSync(join(host.root, 'devices/pci0000:00', vfAddress(0, 0), 'numa_node'), '-1\n');
    rmSync(join(host.root, 'bus/pci/devices', vfAddress(0, 2)));
    const vfs = discoverPfs(new Sysfs(host.root))[0]!.vfs;
    expect(vfs.map((v) => v.address)).toEqual([vfAddress(0, 0), vfAddress(0, 1)]);
    expect(vfs[0]!.numaNode).toBeUndefined();
  });

  it('follows the emulated kernel: sriov_numvfs needs 0 first, unbinding removes the netdev', () => {
    expect(() => host.setNumVfs('ens1f0', 5)).toThrow(/write 0 first/);
    host.setNumVfs('ens1f0', 0);
    host.setNumVfs('ens1f0', 5);
    expect(
      readFileSync(join(host.root, 'bus/pci/devices', pfAddress(0), 'sriov_numvfs'), 'utf8').trim(),
    ).toBe('5');
    host.unbind(vfAddress(0, 4));
    const vf = discoverPfs(new Sysfs(host.root))[0]!.vfs[4]!;
    expect([vf.driver, vf.netdevs]).toEqual([undefined, []]);
  });

  it('reads hugepages per size and NUMA node', () => {
    const hp = discoverHugepages(new Sysfs(host.root));
    expect(hp.system).toEqual([
      { sizeKb: 2048, sizeName: '2Mi', numaNode: undefined, total: 16, free: 16 },
    ]);
    expect(hp.perNode.map((h) => [h.numaNode, h.total])).toEqual([
      [0, 8],
      [1, 8],
    ]);
    expect(hugepageSizeName(1048576)).toBe('1Gi');
  });

  it('reads the real /sys of this machine (no SR-IOV here, hugepages as /proc/meminfo says)', () => {
    const real = discoverHugepages(new Sysfs('/sys'));
    const meminfo = readFileSync('/proc/meminfo', 'utf8');
    const total = Number(/HugePages_Total:\s+(\d+)/.exec(meminfo)?.[1]);
    expect(real.system.find((h) => h.sizeKb === 2048)?.total ?? 0).toBe(total);
    expect(Array.isArray(discoverPfs(new Sysfs('/sys')))).toBe(true);
  });
});

describe('pool assignment', () => {
  it('puts a VF in the first matching pool; an unbound VF stays in its pool as Unhealthy', () => {
    const config = parseConfig({
      pools: [
        { name: 'first', selectors: { pfNames: ['ens1f0#0-1'] } },
        { name: 'rest', selectors: { vendors: ['8086'] } },
        { name: 'dpdk', deviceType: 'vfio-pci', selectors: { numaNodes: [1] } },
      ],
    });
    const sysfs = new Sysfs(host.root);
    const assigner = new PoolAssigner();
    const ids = (m: ReturnType<PoolAssigner['assign']>, p: string): string[] =>
      m.get(p)!.map((a) => a.vf.address);
    let m = assigner.assign(discoverPfs(sysfs), config.pools);
    expect(ids(m, 'first')).toEqual([vfAddress(0, 0), vfAddress(0, 1)]);
    expect(ids(m, 'rest')).toEqual([vfAddress(0, 2)]);
    expect(ids(m, 'dpdk')).toEqual([vfAddress(1, 0), vfAddress(1, 1)]);
    host.unbind(vfAddress(0, 1));
    m = assigner.assign(discoverPfs(sysfs), config.pools);
    expect(m.get('first')![1]!.problem).toBe('no driver bound');
    // A fresh assigner has no memory of it: an unbound VF belongs to no pool.
    expect(ids(new PoolAssigner().assign(discoverPfs(sysfs), config.pools), 'first')).toEqual([
      vfAddress(0, 0),
    ]);
    expect(deviceTypeOf('uio_pci_generic')).toBeUndefined();
  });
});
