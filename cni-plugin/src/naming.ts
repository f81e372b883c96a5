import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { NetConf } from './config';
import type { CniEnv } from './env';
import { CniCode, CniError } from './errors';

/** sun_path is 108 bytes with the terminating NUL: a socket path may have 107. */
export const UNIX_SOCKET_PATH_MAX = 107;

export interface AttachmentPaths {
  /** `<namespace>_<pod>`, or the container ID without pod identity. */
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

export function folderName(env: Pick<CniEnv, 'containerId' | 'pod'>): string {
  return env.pod ? `${env.pod.namespace}_${env.pod.name}` : env.containerId;
}

/**
 * Where an attachment's socket and description live (contract 2):
 * `<socketDir>/<namespace>_<pod>/<ifname>.sock` and `<ifname>.json` beside it. Refuses, with
 * code 7 naming socketDir, a socket path longer than the unix socket limit.
 */
export function attachmentPaths(
  conf: Pick<NetConf, 'socketDir'>,
  env: Pick<CniEnv, 'containerId' | 'pod' | 'ifname'>,
): AttachmentPaths {
  const folder = folderName(env);
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
