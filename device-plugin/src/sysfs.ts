import { existsSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { basename, join } from 'node:path';

/**
 * The one seam to sysfs. Every read of the host's devices goes through an instance, whose root
 * stands for /sys: the real one in production, a generated tree in tests and emulated-NIC mode.
 * Reads never throw for a missing file: devices come and go while we look at them.
 */
export class Sysfs {
  constructor(readonly root = '/sys') {}

  path(...parts: string[]): string {
    return join(this.root, ...parts);
  }

  exists(...parts: string[]): boolean {
    return existsSync(this.path(...parts));
  }

  /** The attribute's text, trimmed; undefined when absent or unreadable. */
  read(...parts: string[]): string | undefined {
    try {
      return readFileSync(this.path(...parts), 'utf8').trim();
    } catch {
      return undefined;
    }
  }

  /** An integer attribute (decimal or 0x-hex); undefined when absent or not a number. */
  readInt(...parts: string[]): number | undefined {
    const text = this.read(...parts);
    if (text === undefined || text === '') return undefined;
    const value = text.startsWith('0x') ? Number.parseInt(text, 16) : Number(text);
    return Number.isInteger(value) ? value : undefined;
  }

  /** Basename of a symlink's target (a driver, an IOMMU group, a VF address); undefined if none. */
  linkName(...parts: string[]): string | undefined {
    try {
      return basename(readlinkSync(this.path(...parts)));
    } catch {
      return undefined;
    }
  }

  /** Entries of a folder; [] when absent. */
  list(...parts: string[]): string[] {
    try {
      return readdirSync(this.path(...parts));
    } catch {
      return [];
    }
  }
}

/** Drivers that hand a device to user space: no kernel netdev. */
export const USERSPACE_DRIVERS = new Set(['vfio-pci', 'uio_pci_generic', 'igb_uio']);

export interface VfInfo {
  address: string;
  /** Position under its PF (virtfnN). */
  index: number;
  pfAddress: string;
  /** The PF's first netdev, e.g. ens1f0; undefined when the PF has none. */
  pfName: string | undefined;
  vendor: string | undefined;
  device: string | undefined;
  driver: string | undefined;
  iommuGroup: string | undefined;
  /** PCI addresses of every device in iommuGroup (kernel/iommu_groups/<n>/devices), itself too. */
  iommuGroupDevices: string[];
  /** undefined when the kernel does not know (numa_node -1) */
  numaNode: number | undefined;
  /** Netdevs that exist now (a dangling link counts as gone). */
  netdevs: string[];
  operstate: string | undefined;
}

export interface PfInfo {
  address: string;
  name: string | undefined;
  vendor: string | undefined;
  device: string | undefined;
  driver: string | undefined;
  numaNode: number | undefined;
  totalVfs: number;
  numVfs: number;
  operstate: string | undefined;
  vfs: VfInfo[];
}

/** A link is up unless the kernel says otherwise; "unknown" is what many drivers report. */
export function linkIsUp(operstate: string | undefined): boolean {
  return operstate === undefined || operstate === 'up' || operstate === 'unknown';
}

/** Lowercase hex without 0x, as selectors are written (8086, 154c). */
function hexId(text: string | undefined): string | undefined {
  if (text === undefined || text === '') return undefined;
  return text.toLowerCase().replace(/^0x/, '');
}

function numaOf(sysfs: Sysfs, dir: string): number | undefined {
  const n = sysfs.readInt(dir, 'numa_node');
  return n === undefined || n < 0 ? undefined : n;
}

/** Netdevs of a PCI device whose sysfs entries still resolve. */
function netdevsOf(sysfs: Sysfs, dir: string): string[] {
  return sysfs
    .list(dir, 'net')
    .filter((name) => sysfs.exists(dir, 'net', name))
    .sort();
}

function readVf(sysfs: Sysfs, pf: { address: string; name: string | undefined }, link: string) {
  const address = sysfs.linkName('bus/pci/devices', pf.address, link);
  if (address === undefined) return undefined;
  const dir = join('bus/pci/devices', address);
  if (!sysfs.exists(dir)) return undefined;
  const netdevs = netdevsOf(sysfs, dir);
  const iommuGroup = sysfs.linkName(dir, 'iommu_group');
  const vf: VfInfo = {
    address,
    index: Number(link.slice('virtfn'.length)),
    pfAddress: pf.address,
    pfName: pf.name,
    vendor: hexId(sysfs.read(dir, 'vendor')),
    device: hexId(sysfs.read(dir, 'device')),
    driver: sysfs.linkName(dir, 'driver'),
    iommuGroup,
    iommuGroupDevices:
      iommuGroup === undefined
        ? []
        : sysfs.list('kernel/iommu_groups', iommuGroup, 'devices').sort(),
    numaNode: numaOf(sysfs, dir),
    netdevs,
    operstate:
      netdevs[0] === undefined ? undefined : sysfs.read(dir, 'net', netdevs[0], 'operstate'),
  };
  return vf;
}

/**
 * Every SR-IOV PF under bus/pci/devices (a device with sriov_totalvfs) and its VFs (virtfnN
 * links), sorted by address and VF index.
 */
export function discoverPfs(sysfs: Sysfs): PfInfo[] {
  const pfs: PfInfo[] = [];
  for (const address of sysfs.list('bus/pci/devices').sort()) {
    const dir = join('bus/pci/devices', address);
    const totalVfs = sysfs.readInt(dir, 'sriov_totalvfs');
    if (totalVfs === undefined) continue;
    const netdevs = netdevsOf(sysfs, dir);
    const name = netdevs[0];
    const vfLinks = sysfs
      .list(dir)
      .filter((entry) => /^virtfn\d+$/.test(entry))
      .sort((a, b) => Number(a.slice(6)) - Number(b.slice(6)));
    const vfs = vfLinks
      .map((link) => readVf(sysfs, { address, name }, link))
      .filter((vf): vf is VfInfo => vf !== undefined);
    pfs.push({
      address,
      name,
      vendor: hexId(sysfs.read(dir, 'vendor')),
      device: hexId(sysfs.read(dir, 'device')),
      driver: sysfs.linkName(dir, 'driver'),
      numaNode: numaOf(sysfs, dir),
      totalVfs,
      numVfs: sysfs.readInt(dir, 'sriov_numvfs') ?? 0,
      operstate: name === undefined ? undefined : sysfs.read(dir, 'net', name, 'operstate'),
      vfs,
    });
  }
  return pfs;
}

export interface HugepagePool {
  /** e.g. 2048 */
  sizeKb: number;
  /** Kubernetes' name of the size: 2Mi, 1Gi */
  sizeName: string;
  /** NUMA node, or undefined for the system-wide counters */
  numaNode: number | undefined;
  total: number;
  free: number;
}

export function hugepageSizeName(sizeKb: number): string {
  if (sizeKb % (1024 * 1024) === 0) return `${sizeKb / (1024 * 1024)}Gi`;
  if (sizeKb % 1024 === 0) return `${sizeKb / 1024}Mi`;
  return `${sizeKb}Ki`;
}

function readHugepageDirs(sysfs: Sysfs, base: string, numaNode: number | undefined) {
  const out: HugepagePool[] = [];
  for (const entry of sysfs.list(base).sort()) {
    const m = /^hugepages-(\d+)kB$/.exec(entry);
    if (!m) continue;
    const sizeKb = Number(m[1]);
    out.push({
      sizeKb,
      sizeName: hugepageSizeName(sizeKb),
      numaNode,
      total: sysfs.readInt(base, entry, 'nr_hugepages') ?? 0,
      free: sysfs.readInt(base, entry, 'free_hugepages') ?? 0,
    });
  }
  return out;
}

/**
 * Hugepage capacity and free pages: system-wide per size (kernel/mm/hugepages) and per NUMA
 * node (devices/system/node/nodeN/hugepages).
 */
export function discoverHugepages(sysfs: Sysfs): {
  system: HugepagePool[];
  perNode: HugepagePool[];
} {
  const system = readHugepageDirs(sysfs, 'kernel/mm/hugepages', undefined);
  const perNode = sysfs
    .list('devices/system/node')
    .filter((n) => /^node\d+$/.test(n))
    .sort((a, b) => Number(a.slice(4)) - Number(b.slice(4)))
    .flatMap((n) =>
      readHugepageDirs(sysfs, join('devices/system/node', n, 'hugepages'), Number(n.slice(4))),
    );
  return { system, perNode };
}
