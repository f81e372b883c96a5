import type { DeviceType, PoolConfig, Selectors } from './config';
import { type PfInfo, USERSPACE_DRIVERS, type VfInfo, linkIsUp } from './sysfs';

/** vfio-pci when bound to vfio-pci, netdevice when bound to a kernel driver, undefined unbound. */
export function deviceTypeOf(driver: string | undefined): DeviceType | undefined {
  if (driver === undefined) return undefined;
  if (driver === 'vfio-pci') return 'vfio-pci';
  return USERSPACE_DRIVERS.has(driver) ? undefined : 'netdevice';
}

/** The selectors that do not depend on the VF's driver: vendor, device, PF name and VF index, NUMA. */
export function matchesIdentity(vf: VfInfo, s: Selectors): boolean {
  if (s.vendors && (vf.vendor === undefined || !s.vendors.includes(vf.vendor))) return false;
  if (s.devices && (vf.device === undefined || !s.devices.includes(vf.device))) return false;
  if (s.numaNodes && !s.numaNodes.includes(vf.numaNode ?? 0)) return false;
  if (s.pfNames) {
    const ok = s.pfNames.some(
      (sel) =>
        sel.pf === vf.pfName &&
        (sel.vfs === undefined || sel.vfs.some(([from, to]) => vf.index >= from && vf.index <= to)),
    );
    if (!ok) return false;
  }
  return true;
}

/** Every selector of the pool, including drivers and the device type. */
export function matchesPool(vf: VfInfo, pool: PoolConfig): boolean {
  if (!matchesIdentity(vf, pool.selectors)) return false;
  if (deviceTypeOf(vf.driver) !== pool.deviceType) return false;
  const drivers = pool.selectors.drivers;
  return drivers === undefined || (vf.driver !== undefined && drivers.includes(vf.driver));
}

/** Why a VF of a pool cannot be handed out now, or undefined when it can. */
export function vfProblem(vf: VfInfo, pf: PfInfo, deviceType: DeviceType): string | undefined {
  if (vf.driver === undefined) return 'no driver bound';
  if (deviceTypeOf(vf.driver) !== deviceType)
    return `bound to ${vf.driver}, pool wants ${deviceType}`;
  // Not the netdev: a VF's net/ lists only netdevs in sysfs's own network namespace, and a CNI
  // such as sriov-cni moves the VF's netdev into the pod, so its absence here says nothing about
  // health (sriov-network-device-plugin reports such VFs Healthy). An unbound driver is caught
  // above.
  if (deviceType === 'vfio-pci') {
    if (vf.iommuGroup === undefined) return 'no IOMMU group';
    // The IOMMU group is VFIO's unit of isolation: a pod given /dev/vfio/<group> can open every
    // device in it. With ACS each VF has a group of its own, which sriov-network-device-plugin
    // takes for granted; a VF sharing its group is Unhealthy here rather than handed out.
    const others = vf.iommuGroupDevices.filter((d) => d !== vf.address);
    if (others.length > 0) return `IOMMU group ${vf.iommuGroup} also holds ${others.join(', ')}`;
  }
  if (pf.name !== undefined && !linkIsUp(pf.operstate))
    return `PF ${pf.name} link is ${pf.operstate}`;
  return undefined;
}

export interface AssignedVf {
  vf: VfInfo;
  pf: PfInfo;
  /** undefined when healthy */
  problem: string | undefined;
}

/**
 * Puts each VF into the first pool (in config order) whose selectors match. A VF that loses its
 * driver stays in the pool it was in, as an Unhealthy device, as long as its identity still
 * matches: kubelet must see it go Unhealthy, not vanish, and come back Healthy when re-bound.
 */
export class PoolAssigner {
  private readonly last = new Map<string, string>();

  assign(pfs: PfInfo[], pools: PoolConfig[]): Map<string, AssignedVf[]> {
    const out = new Map<string, AssignedVf[]>(pools.map((p) => [p.name, []]));
    const present = new Set<string>();
    for (const pf of pfs) {
      for (const vf of pf.vfs) {
        present.add(vf.address);
        let pool = pools.find((p) => matchesPool(vf, p));
        if (!pool && deviceTypeOf(vf.driver) === undefined) {
          const previous = pools.find((p) => p.name === this.last.get(vf.address));
          if (previous && matchesIdentity(vf, previous.selectors)) pool = previous;
        }
        if (!pool) {
          this.last.delete(vf.address);
          continue;
        }
        this.last.set(vf.address, pool.name);
        out.get(pool.name)?.push({ vf, pf, problem: vfProblem(vf, pf, pool.deviceType) });
      }
    }
    for (const address of [...this.last.keys()])
      if (!present.has(address)) this.last.delete(address);
    return out;
  }
}
