import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { formatMac, parseMac } from '@flowline/packet';
import type { PortSpec, RuntimeConfig } from './config';
import { PodDeviceError } from './errors';

/**
 * How a port reaches the pod:
 * - virtio-user: a vhost-user socket the CNI plugin wired to the switch (server=1: we listen,
 *   OVS's dpdkvhostuserclient connects, so either side may restart);
 * - pci: an SR-IOV VF bound to vfio-pci, from the device plugin;
 * - netdev: a kernel netdev VF, opened with AF_XDP when the kernel allows, else AF_PACKET;
 * - vdev: a port named explicitly by devargs (plain-process runs, tests).
 */
export type PodPortKind = 'virtio-user' | 'pci' | 'netdev' | 'vdev';

export interface PodPort {
  /** Interface name inside the pod (net1, ...) or <pool><index> for a VF. */
  name: string;
  kind: PodPortKind;
  /** DPDK devargs to try in order; the first that probes wins (AF_XDP before AF_PACKET). */
  devargs: string[];
  /** Where this port came from, for logs and errors. */
  origin: string;
  mac?: string;
  ips?: string[];
  socketPath?: string;
  pciAddress?: string;
}

/** What the CNI plugin writes beside each socket: `<socketDir>/<ns>_<pod>/<ifname>.json`. */
export interface PodInterfaceFile {
  socketPath: string;
  mac?: string;
  ips?: (string | { address: string })[];
  ovsPort?: string;
  ifName?: string;
}

export interface PodEnvironmentSeam {
  readDir(dir: string): string[];
  readFile(path: string): string;
}

const realFs: PodEnvironmentSeam = {
  readDir: (dir) => readdirSync(dir),
  readFile: (path) => readFileSync(path, 'utf8'),
};

const PCI_ADDRESS = /^[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$/;
const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;

/** DPDK's RTE_DEV_NAME_MAX_LEN (rte_dev.h): a device name's buffer, its NUL included. */
const RTE_DEV_NAME_MAX_LEN = 64;

/** How vdevName writes the characters of an interface name that are not letters or digits. */
const VDEV_ESCAPES: Record<string, string> = { _: '__', '.': '_d', '-': '_h' };

/**
 * DPDK vdev names must be unique and start with the driver's name; they keep to letters, digits
 * and "_". The interface name's "_", "." and "-" are escaped ("__", "_d", "_h"), not dropped, so
 * two interfaces never share a device (net-1 and net1 are net_virtio_user_net_h1 and
 * net_virtio_user_net1); a name of letters and digits is kept as it is.
 */
function vdevName(driver: string, ifName: string): string {
  // ifName has passed IFNAME: letters, digits and these three only.
  const name = `${driver}_${ifName.replace(/[_.-]/g, (c) => VDEV_ESCAPES[c] ?? c)}`;
  // 15 characters escape to at most 30: with net_virtio_user_ that is 46, within the limit.
  if (name.length >= RTE_DEV_NAME_MAX_LEN)
    throw new PodDeviceError(
      ifName,
      `device name ${name} is longer than DPDK's ${RTE_DEV_NAME_MAX_LEN - 1} characters`,
    );
  return name;
}

/** The device name a devargs string probes (DPDK's, with a PCI address in lower case). */
function deviceNameOf(devargs: string): string {
  const comma = devargs.indexOf(',');
  const name = comma < 0 ? devargs : devargs.slice(0, comma);
  return PCI_ADDRESS.test(name) ? name.toLowerCase() : name;
}

function readInterfaceFile(path: string, fs: PodEnvironmentSeam): PodInterfaceFile {
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFile(path));
  } catch (err) {
    throw new PodDeviceError(path, `not readable JSON: ${(err as Error).message}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
    throw new PodDeviceError(path, 'is not an object; was it written by the flowline CNI plugin?');
  const file = parsed as Partial<PodInterfaceFile>;
  if (file.mac !== undefined) {
    try {
      // Written back in the one form DPDK's devargs read (aa:bb:cc:dd:ee:ff).
      file.mac = formatMac(parseMac(file.mac));
    } catch (err) {
      throw new PodDeviceError(path, `"mac": ${(err as Error).message}`);
    }
  }
  return file as PodInterfaceFile;
}

/**
 * The ports a pod was given, per contract 3 (docs/architecture.md#nf-boot): each `<ifname>.json`
 * in the pod dir
 * becomes a net_virtio_user port (server=1) on its socket; each PCI address in PCIDEVICE_* a PCI
 * port; each netdev in FLOWLINE_NETDEV_* an AF_XDP port (AF_PACKET as fallback); and explicit
 * ports from the config are added as they are. Names must be unique.
 */
export function discoverPodPorts(
  config: Pick<RuntimeConfig, 'podDir' | 'ports'> & Partial<Pick<RuntimeConfig, 'virtioQueueSize'>>,
  env: NodeJS.ProcessEnv = process.env,
  fs: PodEnvironmentSeam = realFs,
): PodPort[] {
  const ports: PodPort[] = [];

  if (config.podDir) {
    let names: string[];
    try {
      names = fs.readDir(config.podDir);
    } catch (err) {
      throw new PodDeviceError(config.podDir, `cannot list the pod dir: ${(err as Error).message}`);
    }
    for (const file of names.filter((n) => n.endsWith('.json')).sort()) {
      const ifName = file.slice(0, -'.json'.length);
      const path = join(config.podDir, file);
      if (!IFNAME.test(ifName))
        throw new PodDeviceError(path, `"${ifName}" is not an interface name`);
      const info = readInterfaceFile(path, fs);
      // The socket is <podDir>/<ifname>.sock as this process sees the folder (in a cluster the
      // pod's mount, not the host path the file's socketPath names).
      const socketPath = join(config.podDir, `${ifName}.sock`);
      const args = [
        `${vdevName('net_virtio_user', ifName)}`,
        `path=${socketPath}`,
        'server=1',
        'queues=1',
        // 1024 (default) rather than virtio's 256: a worker that backs off when idle, or shares
        // its core with the switch's PMD, needs room for a few hundred microseconds of traffic.
        `queue_size=${config.virtioQueueSize ?? 1024}`,
      ];
      if (info.mac) args.push(`mac=${info.mac}`);
      ports.push({
        name: ifName,
        kind: 'virtio-user',
        devargs: [args.join(',')],
        origin: path,
        socketPath,
        ...(info.mac ? { mac: info.mac } : {}),
        ...(info.ips
          ? { ips: info.ips.map((ip) => (typeof ip === 'string' ? ip : ip.address)) }
          : {}),
      });
    }
  }

  for (const [key, value] of Object.entries(env).sort(([a], [b]) => a.localeCompare(b))) {
    if (!value) continue;
    const pci = /^PCIDEVICE_FLOWLINE_IO_([A-Z0-9_]+)$/.exec(key);
    if (pci) {
      const pool = pci[1]!.toLowerCase();
      value.split(',').forEach((address, i) => {
        const addr = address.trim();
        if (!PCI_ADDRESS.test(addr))
          throw new PodDeviceError(key, `"${addr}" is not a PCI address (dddd:bb:dd.f)`);
        ports.push({
          name: `${pool}${i}`.slice(0, 15),
          kind: 'pci',
          devargs: [addr],
          origin: key,
          pciAddress: addr,
        });
      });
      continue;
    }
    const netdev = /^FLOWLINE_NETDEV_([A-Z0-9_]+)$/.exec(key);
    if (netdev) {
      for (const raw of value.split(',')) {
        const ifName = raw.trim();
        if (!IFNAME.test(ifName))
          throw new PodDeviceError(key, `"${ifName}" is not an interface name`);
        ports.push({
          name: ifName,
          kind: 'netdev',
          devargs: [
            `${vdevName('net_af_xdp', ifName)},iface=${ifName},start_queue=0,queue_count=1`,
            `${vdevName('net_af_packet', ifName)},iface=${ifName},qpairs=1`,
          ],
          origin: key,
        });
      }
    }
  }

  for (const spec of config.ports as PortSpec[]) {
    ports.push({ name: spec.name, kind: 'vdev', devargs: [spec.devargs], origin: 'config ports' });
  }

  const seen = new Map<string, string>();
  for (const port of ports) {
    const before = seen.get(port.name);
    if (before)
      throw new PodDeviceError(port.origin, `port name "${port.name}" is also used by ${before}`);
    seen.set(port.name, port.origin);
  }
  // Two ports on one DPDK device: the second probe would fail naming neither, or a netdev's
  // AF_XDP would quietly fall back to AF_PACKET. vdevName keeps the generated ones apart; this
  // catches an explicit port's devargs (or a VF listed twice) taking another port's device.
  const devices = new Map<string, PodPort>();
  for (const port of ports) {
    for (const device of new Set(port.devargs.map(deviceNameOf))) {
      const other = devices.get(device);
      if (other)
        throw new PodDeviceError(
          port.origin,
          `port "${port.name}" would probe DPDK device ${device}, which port "${other.name}" (from ${other.origin}) probes`,
        );
      devices.set(device, port);
    }
  }
  return ports;
}

/** What the NF's EAL is started with, derived from the config and the pod's ports. */
export interface EalPlan {
  lcores: string;
  hugeDir?: string;
  memoryMb: number;
  noHuge: boolean;
  inMemory: boolean;
  filePrefix: string;
  /** PCI devices to allow; none means --no-pci, so DPDK never probes the host's own NICs. */
  pciAllow: string[];
  extraArgs: string[];
}

export function planEal(config: RuntimeConfig, ports: readonly PodPort[]): EalPlan {
  return {
    lcores: config.eal.lcores,
    ...(config.eal.hugeDir ? { hugeDir: config.eal.hugeDir } : {}),
    memoryMb: config.eal.memoryMb,
    noHuge: config.eal.noHuge,
    inMemory: config.eal.inMemory,
    filePrefix: config.eal.filePrefix,
    pciAllow: ports.filter((p) => p.kind === 'pci').map((p) => p.pciAddress!),
    extraArgs: config.eal.extraArgs,
  };
}
