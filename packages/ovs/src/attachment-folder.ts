// Where a pod's vhost-user sockets live under the CNI plugin's socket dir: one folder per pod
// (or per container, when the runtime names no pod). The CNI plugin makes it; the local node
// runtime hands it to the NF as FLOWLINE_POD_DIR; the chain controller looks there. All three
// derive the name with this one function, so a long name that had to be hashed is found too.
import { createHash } from 'node:crypto';

/** sun_path is 108 bytes with the terminating NUL: a socket path may have 107. */
export const UNIX_SOCKET_PATH_MAX = 107;
/** Linux interface names have at most 15 bytes (IFNAMSIZ - 1). */
export const MAX_IFNAME_BYTES = 15;
/** `+` and 16 hex digits: never a container ID or `<namespace>_<pod>` (neither has a `+`). */
export const HASHED_FOLDER = /^\+[0-9a-f]{16}$/;
const HASHED_FOLDER_BYTES = 17;

/** Who a folder is for: the pod, when the runtime named one, else the container. */
export interface FolderIdentity {
  containerId: string;
  pod?: { namespace: string; name: string } | undefined;
}

/** The readable folder name: `<namespace>_<pod>`, or the container ID without pod identity. */
export function readableFolderName(id: FolderIdentity): string {
  return id.pod ? `${id.pod.namespace}_${id.pod.name}` : id.containerId;
}

/** The short stable name of a folder whose readable name does not fit. */
export function hashedFolderName(readable: string): string {
  return `+${createHash('sha256').update(readable).digest('hex').slice(0, 16)}`;
}

/**
 * The pod folder's name under `socketDir`: the readable name when a socket of any interface
 * name (15 bytes) fits in it within the unix socket limit (or when it is no longer than a hashed
 * name), else `+<16 hex of sha256(readable)>`. Derived from socketDir and the identity alone.
 */
export function podFolderName(socketDir: string, id: FolderIdentity): string {
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
