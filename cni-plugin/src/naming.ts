import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { UNIX_SOCKET_PATH_MAX, podFolderName } from '@flowline/ovs';
import type { NetConf } from './config';
import type { CniEnv } from './env';
import { CniCode, CniError } from './errors';

export {
  HASHED_FOLDER,
  MAX_IFNAME_BYTES,
  UNIX_SOCKET_PATH_MAX,
  hashedFolderName,
  readableFolderName,
} from '@flowline/ovs';

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

/**
 * The pod folder's name under `socketDir` (packages/ovs podFolderName, shared with the node
 * runtime and the chain controller): the readable `<namespace>_<pod>` or container ID when every
 * socket fits the unix limit, else `+<16 hex of sha256(readable)>`.
 */
export function folderName(socketDir: string, id: FolderIdentity): string {
  return podFolderName(socketDir, id);
}

/**
 * Where an attachment's socket and description live (contract 2,
 * docs/architecture.md#cni-to-switch-and-pod):
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
