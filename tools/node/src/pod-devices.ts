// A pod's devices, as kubelet gets them: for each `flowline.io/*` limit, the free healthy devices
// of the resource, GetPreferredAllocation, then Allocate, whose env goes to the pod's process.
// Netdev VFs then move into the pod's netns, as the SR-IOV CNI does in a cluster.
import type { KubeletPeer } from '@flowline/emulation';
import { NodeStepError } from './errors';
import type { PodSpec } from './manifest';
import { ip, tryIp } from './netns';
import type { NodeContext } from './node-context';
import type { PodRecord } from './state';

/** What the node asks of kubelet's side of the device plugin API. */
export type DeviceSource = Pick<KubeletPeer, 'devices' | 'preferred' | 'allocate'>;

/** Devices this resource has that are healthy and not given to any of `pods`. */
export function freeDevices(
  kubelet: DeviceSource | undefined,
  pods: Record<string, PodRecord>,
  resource: string,
): string[] {
  const devices = kubelet?.devices(resource);
  if (!devices)
    throw new NodeStepError(
      'allocate devices',
      `no device plugin serves ${resource}`,
      'check the node config devicePlugin.pools',
    );
  const taken = new Set(Object.values(pods).flatMap((pod) => pod.devices[resource] ?? []));
  return devices.filter((d) => d.health === 'Healthy' && !taken.has(d.ID)).map((d) => d.ID);
}

/**
 * Allocates every device the pod asks for, recording each resource's devices in the pod (and
 * saving) before Allocate; resolves to the env the device plugin returned.
 */
export async function allocateDevices(
  ctx: NodeContext,
  kubelet: DeviceSource | undefined,
  spec: PodSpec,
  pod: PodRecord,
): Promise<Record<string, string>> {
  const step = `run pod ${pod.key}`;
  const env: Record<string, string> = {};
  for (const [resource, count] of Object.entries(spec.devices)) {
    const free = freeDevices(kubelet, ctx.state.pods, resource);
    if (free.length < count)
      throw new NodeStepError(
        step,
        `${resource}: ${count} requested, ${free.length} free and healthy`,
        'lower the request or free devices',
      );
    const ids = await kubelet!.preferred(resource, free, [], count);
    const chosen = ids.length === count ? ids : free.slice(0, count);
    pod.devices[resource] = chosen;
    ctx.save();
    const response = await kubelet!.allocate(resource, chosen);
    const container = response.containerResponses[0];
    Object.assign(env, container?.envs ?? {});
    for (const m of container?.mounts ?? []) {
      // No mount namespace here: the pod sees the host's tree, so a mount is only honoured
      // when its container path is where the host has it.
      if (m.containerPath !== m.hostPath)
        ctx.log.warn('mount not applied: the local node has no mount namespaces', {
          pod: pod.key,
          mount: m,
        });
    }
  }
  return env;
}

/** The netdevs the allocated env names (`FLOWLINE_NETDEV_*`, comma-separated). */
export function netdevsOf(env: Record<string, string>): string[] {
  return Object.entries(env)
    .filter(([k]) => k.startsWith('FLOWLINE_NETDEV_'))
    .flatMap(([, v]) => v.split(',').filter(Boolean));
}

/** Moves the allocated netdev VFs into the pod's netns (each recorded before it moves). */
export function moveNetdevsIn(ctx: NodeContext, pod: PodRecord, env: Record<string, string>): void {
  for (const ifname of netdevsOf(env)) {
    ip(['link', 'set', 'dev', ifname, 'netns', pod.netns]);
    pod.movedNetdevs.push(ifname);
    ctx.save();
    ip(['-n', pod.netns, 'link', 'set', ifname, 'up']);
  }
}

/** Moves them back to the host's netns; one already gone is skipped. */
export function moveNetdevsBack(pod: PodRecord): void {
  for (const ifname of pod.movedNetdevs)
    tryIp(['-n', pod.netns, 'link', 'set', 'dev', ifname, 'netns', '1']);
}
