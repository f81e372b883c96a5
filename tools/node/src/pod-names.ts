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

/** Longest netns name of a pod. */
export const POD_NETNS_MAX = 60;

/** What namespaces and names are made of (the manifest takes DNS labels only): no '_'. */
const LABEL_CHARS = /^[a-z0-9-]+$/;

/** 8 hex digits of a hash of the pod's namespace and name. */
const podHash = (namespace: string, name: string): string =>
  createHash('sha256').update(`${namespace}/${name}`).digest('hex').slice(0, 8);

/**
 * The pod's `ip netns` name (at most POD_NETNS_MAX characters): the prefix, namespace and name
 * when that is unambiguous and fits; else its start, '_' and a hash. A '-' in the namespace or
 * name makes the plain form ambiguous (pod c of namespace a-b and pod b-c of namespace a would
 * share it, and one pod's sandbox would delete the other's netns), and cutting alone would make
 * two long names share it. No namespace or name has a '_', so a hashed name is never another
 * pod's plain one.
 */
export function podNetns(namespace: string, name: string): string {
  const full = `${POD_NETNS_PREFIX}${namespace}-${name}`;
  const plain = /^[a-z0-9]+$/;
  if (full.length <= POD_NETNS_MAX && plain.test(namespace) && plain.test(name)) return full;
  const tail = `_${podHash(namespace, name)}`;
  return `${full.slice(0, POD_NETNS_MAX - tail.length)}${tail}`;
}

/**
 * The pod's EAL --file-prefix (at most POD_FILE_PREFIX_MAX). Hugepage files are found by what
 * starts with a prefix (@flowline/dpdk's ealHugepageFiles), so no pod's prefix may start another
 * pod's: `flpod_<ns>_<name>_`, ending in a '_' that no namespace or name has, or, when that is
 * too long, `flpod__<hash>_<start of ns_name>_`, whose empty namespace no plain prefix has and
 * whose hash tells pods apart.
 */
export function podFilePrefix(namespace: string, name: string): string {
  const plain = `${POD_FILE_PREFIX}${namespace}_${name}_`;
  if (plain.length <= POD_FILE_PREFIX_MAX && LABEL_CHARS.test(namespace) && LABEL_CHARS.test(name))
    return plain;
  const head = `${POD_FILE_PREFIX}_${podHash(namespace, name)}_`;
  // The NF runtime takes [A-Za-z0-9_-] only.
  const readable = `${namespace}_${name}`.replace(/[^A-Za-z0-9-]/g, '_');
  return `${head}${readable.slice(0, POD_FILE_PREFIX_MAX - head.length - 1)}_`;
}

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
