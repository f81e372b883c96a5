import { lstat, mkdir, readdir, unlink } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join } from 'node:path';
import { removeStateFile, writeStateFile } from '@flowline/state-file';
import { readUntrusted, type UntrustedRead } from './attachment-file';

// The Network Plumbing WG's Device Information Specification v1.1.0
// (github.com/k8snetworkplumbingwg/device-info-spec, SPEC.md). For a vhost-user attachment the
// device-info is {"type":"vhost-user","version":"1.1.0","vhost-user":{"mode","path"}} (3.1.5).
// A CNI plugin's file is /var/run/k8s.cni.cncf.io/devinfo/cni/<UniqueFileName> (4.2): the NPWG
// implementation (Multus) chooses the name and passes the whole path as the CNIDeviceInfoFile
// capability (runtimeConfig.CNIDeviceInfoFile, 5.1); with no such path (podman, containerd or
// CRI-O without Multus, Multus for a delegate without a deviceID) the plugin uses the name
// Multus would generate, `<network>-<containerID>_<ifname>`. Multus copies the file's content
// into the pod's k8s.v1.cni.cncf.io/network-status annotation as "device-info" (6.1).

export const DEVICE_INFO_SPEC_VERSION = '1.1.0';
/** 4.2: where CNI plugin device-info files live. */
export const DEFAULT_DEVICE_INFO_DIR = '/var/run/k8s.cni.cncf.io/devinfo/cni';

export interface VhostUserDeviceInfo {
  type: 'vhost-user';
  version: typeof DEVICE_INFO_SPEC_VERSION;
  'vhost-user': {
    /**
     * 3.1.5.1: "server" when the application in the container creates the socket and the host
     * attaches: Flowline's pod opens it as a virtio-user server, OVS's dpdkvhostuserclient
     * port connects to it.
     */
    mode: 'server' | 'client';
    /** 3.1.5.2: the vhost-user socket (the host's path; the pod mounts its folder). */
    path: string;
  };
}

export function vhostUserDeviceInfo(socketPath: string): VhostUserDeviceInfo {
  return {
    type: 'vhost-user',
    version: DEVICE_INFO_SPEC_VERSION,
    'vhost-user': { mode: 'server', path: socketPath },
  };
}

/** The file name Multus generates (`<network>-<containerID>_<ifname>`, "/" as "-"). */
export function defaultDeviceInfoFile(
  dir: string,
  network: string,
  containerId: string,
  ifname: string,
): string {
  return join(dir, `${network}-${containerId}_${ifname}`.replaceAll('/', '-'));
}

/**
 * Why `path` is not a device-info file this plugin writes or removes: it must be a plain file
 * name directly in `dir` (the spec's folder), so a config cannot point the plugin (root) at
 * another file. Undefined when it is one.
 */
export function deviceInfoFileProblem(path: string, dir: string): string | undefined {
  const name = basename(path);
  if (!isAbsolute(path) || dirname(path) !== dir || path !== join(dir, name))
    return `"${path}" is not a file directly in ${dir}`;
  if (name === '' || name.startsWith('.') || name.includes('\0'))
    return `"${path}" is not a device-info file name`;
  return undefined;
}

/** Written through @flowline/state-file (whole or absent after a crash), creating the folder (4.2). */
export async function writeDeviceInfoFile(path: string, info: VhostUserDeviceInfo): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o755 });
  await writeStateFile(path, JSON.stringify(info) + '\n', { mode: 0o444, keepPrevious: false });
}

export type DeviceInfoRead = UntrustedRead<{ info: unknown }>;

/** Reads a device-info file without following a symlink or blocking on a FIFO (CHECK). */
export function readDeviceInfoFile(path: string): Promise<DeviceInfoRead> {
  return readUntrusted(path, 65536, (text) => ({ info: JSON.parse(text) as unknown }));
}

/**
 * Removes a device-info file (and a temporary copy a crash left) when it is a regular file or a
 * symlink (unlink never follows one). Returns what it removed; a missing file is not an error.
 */
export async function removeDeviceInfoFile(path: string): Promise<string[]> {
  const removed: string[] = [];
  const st = await lstat(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (st && (st.isFile() || st.isSymbolicLink())) {
    await removeStateFile(path);
    removed.push(path);
  } else if (st) throw new Error(`${path} is not a regular file; left alone`);
  const tmpPrefix = `.${basename(path)}.tmp-`;
  for (const name of await readdir(dirname(path)).catch(() => [] as string[])) {
    if (!name.startsWith(tmpPrefix)) continue;
    const tmp = join(dirname(path), name);
    const t = await lstat(tmp).catch(() => undefined);
    if (t && (t.isFile() || t.isSymbolicLink())) {
      await unlink(tmp).catch(() => undefined);
      removed.push(tmp);
    }
  }
  return removed;
}
