import { isAbsolute } from 'node:path';
import { CniCode, CniError } from './errors';
import { DEFAULT_DEVICE_INFO_DIR, deviceInfoFileProblem } from './device-info';
import { selectVersion, type CniVersion } from './versions';

export const DEFAULT_OVSDB_SOCKET = '/var/run/openvswitch/db.sock';
export const DEFAULT_BRIDGE = 'br-flowline';

export interface Attachment {
  containerID: string;
  ifname: string;
}

/**
 * The network configuration this plugin reads (contract 2,
 * docs/architecture.md#cni-to-switch-and-pod), after validation.
 */
export interface NetConf {
  cniVersion: CniVersion;
  name: string;
  type: string;
  bridge: string;
  socketDir: string;
  mtu: number;
  ovsdbSocket: string;
  /** How long ADD/DEL wait for another operation on the same pod; default 10 s. */
  lockTimeoutMs: number;
  /** The ipam section, passed whole to the IPAM plugin; undefined when there is none. */
  ipam?: { type: string } & Record<string, unknown>;
  dns?: Record<string, unknown>;
  prevResult?: Record<string, unknown>;
  /**
   * The SR-IOV VF this attachment is: `runtimeConfig.deviceID`, which Multus passes from the
   * device plugin's allocation to a plugin declaring the `deviceID` capability. Then the pod
   * uses the VF directly, no vhost-user port is made, and the result's interface carries its
   * pciID.
   */
  deviceID?: string;
  /**
   * A `deviceID` at the top level (without runtimeConfig.deviceID): the NetworkAttachmentDefinition's
   * author, a tenant, can write it, so it never picks a VF (ADD and CHECK refuse it with 7); DEL
   * uses it to release what an attachment recorded.
   */
  topLevelDeviceID?: string;
  /** Where device-info files go (Device Information Spec 4.2); default /var/run/k8s.cni.cncf.io/devinfo/cni. */
  deviceInfoDir: string;
  /**
   * runtimeConfig.CNIDeviceInfoFile, the device-info path an NPWG implementation (Multus) chose
   * (spec 5.1), when it is a file directly in deviceInfoDir; else `deviceInfoFileProblem` says why
   * not (ADD refuses it with code 7, DEL ignores it).
   */
  deviceInfoFile?: string;
  deviceInfoFileProblem?: string;
  /** Where sysfs is read (a generated tree in tests); default /sys. */
  sysfsRoot: string;
  /** GC only: the union of cni.dev/valid-attachments and cni.dev/attachments. */
  validAttachments?: Attachment[];
  /** The config exactly as it came (what delegated plugins receive). */
  raw: Record<string, unknown>;
}

/**
 * A PCI address in sysfs form (lower case), domain:bus:device.function; the domain has 4 to 8
 * hex digits, as the device plugin accepts (VMD domains such as 10000:01:00.1).
 */
export const PCI_ADDRESS = /^[0-9a-f]{4,8}:[0-9a-f]{2}:[0-1][0-9a-f]\.[0-7]$/;
const NETWORK_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const PLUGIN_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
/** Well-known keys (SPEC section 1) that mean nothing for a vhost-user port. */
const UNSUPPORTED_TRUE_KEYS = [
  'ipMasq',
  'isGateway',
  'isDefaultGateway',
  'hairpinMode',
  'promiscMode',
];

const bad = (field: string, why: string): CniError =>
  new CniError(CniCode.InvalidConfig, `invalid network configuration: ${field} ${why}`, undefined, {
    field,
  });

/** Decodes stdin: code 6 when it is not a JSON object. */
export function decodeConfig(stdin: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdin);
  } catch (err) {
    throw new CniError(
      CniCode.DecodeFailure,
      `failed to decode the network configuration on stdin: ${(err as Error).message}`,
      stdin.length > 200 ? `${stdin.slice(0, 200)}...` : stdin,
    );
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new CniError(
      CniCode.DecodeFailure,
      'failed to decode the network configuration: stdin is not a JSON object',
    );
  return parsed as Record<string, unknown>;
}

function parseAttachments(raw: Record<string, unknown>): Attachment[] | undefined {
  const lists = ['cni.dev/valid-attachments', 'cni.dev/attachments'].filter(
    (k) => raw[k] !== undefined,
  );
  if (lists.length === 0) return undefined;
  const out: Attachment[] = [];
  for (const key of lists) {
    const list = raw[key];
    if (!Array.isArray(list)) throw bad(key, 'must be a list of {containerID, ifname}');
    list.forEach((a: unknown, i) => {
      const o = a as Record<string, unknown> | null;
      if (!o || typeof o.containerID !== 'string' || typeof o.ifname !== 'string')
        throw bad(`${key}[${i}]`, 'must be an object with string containerID and ifname');
      out.push({ containerID: o.containerID, ifname: o.ifname });
    });
  }
  return out;
}

/** Validates a decoded config for this plugin; each error names its field and how to fix it. */
export function parseNetConf(raw: Record<string, unknown>): NetConf {
  const cniVersion = selectVersion(raw.cniVersion, raw.cniVersions);
  const { name, type } = raw;
  if (typeof name !== 'string' || !NETWORK_NAME.test(name))
    throw bad(
      'name',
      `${JSON.stringify(name)} must be a network name (letters, digits, "_", ".", "-")`,
    );
  if (typeof type !== 'string' || !PLUGIN_NAME.test(type))
    throw bad('type', 'must be the plugin name "flowline"');
  for (const key of UNSUPPORTED_TRUE_KEYS)
    if (raw[key] !== undefined && raw[key] !== false)
      throw new CniError(
        CniCode.UnsupportedField,
        `unsupported field in network configuration: ${key}=${JSON.stringify(raw[key])} (a vhost-user port has no kernel interface); remove it`,
        undefined,
        { field: key },
      );
  const bridge = raw.bridge ?? DEFAULT_BRIDGE;
  if (typeof bridge !== 'string' || !/^[A-Za-z0-9_.-]{1,15}$/.test(bridge))
    throw bad('bridge', `${JSON.stringify(bridge)} must be an OVS bridge name of 1-15 characters`);
  const socketDir = raw.socketDir;
  if (
    typeof socketDir !== 'string' ||
    !isAbsolute(socketDir) ||
    socketDir.split('/').includes('..')
  )
    throw bad(
      'socketDir',
      `${JSON.stringify(socketDir)} must be an absolute directory path without ".."`,
    );
  const mtu = raw.mtu ?? 1500;
  if (typeof mtu !== 'number' || !Number.isInteger(mtu) || mtu < 68 || mtu > 9702)
    throw bad('mtu', `${JSON.stringify(mtu)} must be an integer from 68 to 9702`);
  const ovsdbSocket = raw.ovsdbSocket ?? DEFAULT_OVSDB_SOCKET;
  if (typeof ovsdbSocket !== 'string' || !isAbsolute(ovsdbSocket))
    throw bad(
      'ovsdbSocket',
      `${JSON.stringify(ovsdbSocket)} must be the absolute path of ovsdb-server's unix socket`,
    );
  const lockTimeoutMs = raw.lockTimeoutMs ?? 10_000;
  if (typeof lockTimeoutMs !== 'number' || !(lockTimeoutMs >= 0 && lockTimeoutMs <= 600_000))
    throw bad(
      'lockTimeoutMs',
      `${JSON.stringify(lockTimeoutMs)} must be a number of milliseconds from 0 to 600000`,
    );
  const sysfsRoot = raw.sysfsRoot ?? '/sys';
  if (typeof sysfsRoot !== 'string' || !isAbsolute(sysfsRoot))
    throw bad('sysfsRoot', `${JSON.stringify(sysfsRoot)} must be an absolute path (default /sys)`);
  const deviceInfoDir = raw.deviceInfoDir ?? DEFAULT_DEVICE_INFO_DIR;
  if (
    typeof deviceInfoDir !== 'string' ||
    !isAbsolute(deviceInfoDir) ||
    deviceInfoDir.split('/').includes('..')
  )
    throw bad(
      'deviceInfoDir',
      `${JSON.stringify(deviceInfoDir)} must be an absolute directory path without ".." (default ${DEFAULT_DEVICE_INFO_DIR})`,
    );
  const conf: NetConf = {
    cniVersion,
    name,
    type,
    bridge,
    socketDir: socketDir.replace(/\/+$/, '') || '/',
    mtu,
    ovsdbSocket,
    lockTimeoutMs,
    sysfsRoot,
    deviceInfoDir: deviceInfoDir.replace(/\/+$/, '') || '/',
    raw,
  };
  const runtimeConfig = raw.runtimeConfig as Record<string, unknown> | undefined;
  const infoFile = runtimeConfig?.CNIDeviceInfoFile;
  if (infoFile !== undefined && infoFile !== '') {
    const problem =
      typeof infoFile === 'string'
        ? deviceInfoFileProblem(infoFile, conf.deviceInfoDir)
        : `${JSON.stringify(infoFile)} is not a path`;
    if (problem) conf.deviceInfoFileProblem = problem;
    else conf.deviceInfoFile = infoFile as string;
  }
  const pciAddress = (field: string, v: unknown): string | undefined => {
    if (v === undefined || v === '') return undefined;
    if (typeof v !== 'string' || !PCI_ADDRESS.test(v.toLowerCase()))
      throw bad(
        field,
        `${JSON.stringify(v)} must be a PCI address like 0000:03:02.0 (the VF the device plugin allocated)`,
      );
    return v.toLowerCase();
  };
  const deviceID = pciAddress('runtimeConfig.deviceID', runtimeConfig?.deviceID);
  const topLevel = pciAddress('deviceID', raw.deviceID);
  if (deviceID) conf.deviceID = deviceID;
  else if (topLevel) conf.topLevelDeviceID = topLevel;
  if (raw.ipam !== undefined) {
    const ipam = raw.ipam as Record<string, unknown> | null;
    if (typeof ipam !== 'object' || ipam === null || Array.isArray(ipam))
      throw bad('ipam', 'must be an object');
    if (Object.keys(ipam).length > 0) {
      if (typeof ipam.type !== 'string' || !PLUGIN_NAME.test(ipam.type))
        throw bad(
          'ipam.type',
          `${JSON.stringify(ipam.type)} must name an IPAM plugin binary on CNI_PATH (e.g. host-local)`,
        );
      conf.ipam = ipam as NetConf['ipam'];
    }
  }
  if (raw.dns !== undefined) {
    if (typeof raw.dns !== 'object' || raw.dns === null) throw bad('dns', 'must be an object');
    conf.dns = raw.dns as Record<string, unknown>;
  }
  if (raw.prevResult !== undefined && raw.prevResult !== null) {
    if (typeof raw.prevResult !== 'object' || Array.isArray(raw.prevResult))
      throw bad('prevResult', 'must be an object');
    conf.prevResult = raw.prevResult as Record<string, unknown>;
  }
  const attachments = parseAttachments(raw);
  if (attachments) conf.validAttachments = attachments;
  return conf;
}
