// Files the node's daemons read, made from the node's config and state: the device plugin's
// config and the chain controller's map of NF gRPC addresses.
import { join } from 'node:path';
import { writeStateFileSync } from '@flowline/state-file';
import type { PodRecord } from './state';

/**
 * Writes a file a daemon reads whole or not at all. Made from the node's state, so no `.prev`
 * is kept.
 */
export function writeDerivedFile(path: string, value: unknown): void {
  writeStateFileSync(path, `${JSON.stringify(value, null, 2)}\n`, {
    mode: 0o644,
    keepPrevious: false,
  });
}

/** Where the chain controller reads each NF's gRPC address (`--nf-addresses`). */
export const nfAddressesFile = (stateDir: string): string => join(stateDir, 'nf-addresses.json');

/** The chain controller's map: pod key (`<namespace>/<name>`) → the pod's gRPC address. */
export function writeNfAddresses(stateDir: string, pods: Record<string, PodRecord>): void {
  const map: Record<string, string> = {};
  for (const pod of Object.values(pods)) map[pod.key] = pod.grpcAddress;
  writeDerivedFile(nfAddressesFile(stateDir), map);
}
