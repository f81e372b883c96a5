// Where a pod's things are and what they are called: its netns, its EAL file prefix, its folder
// under <state>/pods (gRPC socket), its folder of sockets and attachment files (the CNI plugin's
// name for it) and its log.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { podFolderName } from '@flowline/ovs';
import type { NodePaths } from './config';

export const POD_NETNS_PREFIX = 'flpod-';
export const POD_FILE_PREFIX = 'flpod_';

/** Longest EAL --file-prefix of a pod: the NF adds "-<pid>" (up to 8 characters) to it, and an
 * EAL takes 64. */
export const POD_FILE_PREFIX_MAX = 56;

/**
 * A pod's name for a node-wide thing: full (the prefix, namespace and name) as it is when it is
 * unambiguous and fits in max characters; else its start and, after sep, 8 hex digits of a hash
 * of the namespace and name. Namespaces and names are DNS labels, so a '-' in either makes the
 * plain form ambiguous: pod c of namespace a-b and pod b-c of namespace a would share it (and one
 * pod's sandbox would take the other's netns). Cutting alone would make two long names share it.
 */
function podScopedName(
  full: string,
  max: number,
  sep: string,
  namespace: string,
  name: string,
): string {
  if (full.length <= max && !namespace.includes('-') && !name.includes('-')) return full;
  const hash = createHash('sha256').update(`${namespace}/${name}`).digest('hex').slice(0, 8);
  return `${full.slice(0, max - 1 - hash.length)}${sep}${hash}`;
}

/** The pod's `ip netns` name (at most 60 characters). */
export const podNetns = (namespace: string, name: string): string =>
  podScopedName(`${POD_NETNS_PREFIX}${namespace}-${name}`, 60, '-', namespace, name);

/** The pod's EAL --file-prefix (its hugepage files start with it; at most POD_FILE_PREFIX_MAX). */
export const podFilePrefix = (namespace: string, name: string): string =>
  podScopedName(
    `${POD_FILE_PREFIX}${namespace}_${name}`.replace(/[^A-Za-z0-9_]/g, '_'),
    POD_FILE_PREFIX_MAX,
    '_',
    namespace,
    name,
  );

/** The pod's own folder under <state>/pods: its gRPC socket. */
export const podStateDir = (paths: NodePaths, namespace: string, name: string): string =>
  join(paths.pods, `${namespace}_${name}`);

/** The address the pod's NF serves gRPC on (FLOWLINE_GRPC_ADDRESS). */
export const podGrpcAddress = (paths: NodePaths, namespace: string, name: string): string =>
  `unix://${join(podStateDir(paths, namespace, name), 'grpc.sock')}`;

/** The CNI plugin's folder for the pod's sockets (hashed when its readable name is too long). */
export function podSocketDir(paths: NodePaths, namespace: string, name: string): string {
  const folder = podFolderName(paths.sockets, {
    containerId: '',
    pod: { namespace, name },
  });
  return join(paths.sockets, folder);
}

/** The log of the pod's process. */
export const podLogFile = (paths: NodePaths, namespace: string, name: string): string =>
  join(paths.logs, `${namespace}_${name}.log`);
