import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { NetConf } from './config';
import type { CniEnv } from './env';
import { CniCode, CniError } from './errors';

/** sun_path is 108 bytes with the terminating NUL: a socket path may have 107. */
export const UNIX_SOCKET_PATH_MAX = 107;

export interface AttachmentPaths {
  /** `<namespace>_<pod>` or the container ID when that fits, else `+<hash>` (folderName). */
  folderName: string;
  podDir: string;
  socketPath: string;
  jsonPath: string;
}

const hash = (containerId: string, ifname: string): Buffer =>
  createHash('sha256').update(`${containerId}/${ifname}`).digest();

/** OVS port name of an attachment: stable from (containerID, ifname), so DEL needs no state. */
export function ovsPortName(containerId: string, ifname: string): string {
  return `fl${hash(containerId, ifname).toString('hex').slice(0, 12)}`;
}

/** A locally administered unicast MAC, stable per attachment. */
export function macAddress(containerId: string, ifname: string): string {
  const b = hash(containerId, ifname).subarray(16, 21);
  return ['02', ...[...b].map((x) => x.toString(16).padStart(2, '0'))].join(':');
}

/** Who an attachment's folder is for: the pod, when the runtime named one, else the container. */
export type FolderIdentity = Pick<CniEnv, 'containerId' | 'pod'>;

/** The readable folder name: `<namespace>_<pod>`, or the container ID without pod identity. */
export function readableFolderName(id: FolderIdentity): string {
  return id.pod ? `${id.pod.namespace}_${id.pod.name}` : id.containerId;
}

/** Linux interface names have at most 15 bytes (IFNAMSIZ - 1). */
export const MAX_IFNAME_BYTES = 15;
/** `+` and 16 hex digits: never a container ID or `<namespace>_<pod>` (neither has a `+`). */
export const HASHED_FOLDER = /^\+[0-9a-f]{16}$/;

const HASHED_FOLDER_BYTES = 17;

/** The short stable name of a folder whose readable name does not fit. */
export function hashedFolderName(readable: string): string {
  return `+${createHash('sha256').update(readable).digest('hex').slice(0, 16)}`;
}

/**
 * The pod folder's name under `socketDir`: the readable name when a socket of any interface
 * name (15 bytes) fits in it within the unix socket limit (or when it is no longer than a hashed
 * name), else `+<16 hex of sha256(readable)>`.
 * Derived from socketDir and the identity alone, so every command (and GC, from OVS's
 * external_ids or the plugin's index) finds the same folder; all interfaces of a pod share it.
 */
export function folderName(socketDir: string, id: FolderIdentity): string {
  const readable = readableFolderName(id);
  const longest =
    Buffer.byteLength(socketDir.replace(/\/+$/, '')) +
    1 +
    Buffer.byteLength(readable) +
    1 +
    MAX_IFNAME_BYTES +
    '.sock'.length;
  // A readable name no longer than the hashed one stays: hashing it would not help.
  const short = Buffer.byteLength(readable) <= HASHED_FOLDER_BYTES;
  return short || longest <= UNIX_SOCKET_PATH_MAX ? readable : hashedFolderName(readable);
}

/**
 * Where an attachment's socket and description live (contract 2):
 * `<socketDir>/<folder>/<ifname>.sock` and `<ifname>.json` beside it, the folder from
 * `folderName`. Refuses, with code 7 naming socketDir, a socketDir so long that even the hashed
 * folder's socket path is over the unix socket limit.
 */
export function attachmentPaths(
  conf: Pick<NetConf, 'socketDir'>,
  env: Pick<CniEnv, 'containerId' | 'pod' | 'ifname'>,
): AttachmentPaths {
  const folder = folderName(conf.socketDir, env);
  const podDir = join(conf.socketDir, folder);
  const socketPath = join(podDir, `${env.ifname}.sock`);
  const length = Buffer.byteLength(socketPath);
  if (length > UNIX_SOCKET_PATH_MAX)
    throw new CniError(
      CniCode.InvalidConfig,
      `invalid network configuration: socketDir "${conf.socketDir}" is too long: the socket path ${socketPath} has ${length} bytes, ` +
        `over the unix socket limit of ${UNIX_SOCKET_PATH_MAX}; use a socketDir at most ${UNIX_SOCKET_PATH_MAX - (length - Buffer.byteLength(conf.socketDir))} bytes long`,
      undefined,
      { field: 'socketDir', length },
    );
  return { folderName: folder, podDir, socketPath, jsonPath: join(podDir, `${env.ifname}.json`) };
}
