// What the node has made, written to disk after every step (atomically: temp file + rename), so
// that `down` can undo all of it even when the agent that made it was killed.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

export interface ProcessRecord {
  pid: number;
  /** A word of its command line, checked before a signal so a reused pid is never hit. */
  marker: string;
  log: string;
}

export interface AttachmentRecord {
  network: string;
  ifname: string;
  containerId: string;
  netconf: Record<string, unknown>;
}

export interface PodRecord {
  key: string;
  namespace: string;
  name: string;
  /** `ip netns` name; the netns path is /run/netns/<netns>. */
  netns: string;
  containerId: string;
  attachments: AttachmentRecord[];
  /** Netdevs (emulated VFs) moved into the pod's netns, to move back on teardown. */
  movedNetdevs: string[];
  devices: Record<string, string[]>;
  /** Env from Allocate, kept for restarts of the process (kubelet keeps it in its checkpoint). */
  allocatedEnv: Record<string, string>;
  grpcAddress: string;
  filePrefix: string;
  process?: ProcessRecord;
  restarts: number;
  phase: 'Pending' | 'Running' | 'Failed' | 'Terminating';
  message?: string;
  manifest: string;
}

export interface NodeState {
  version: 1;
  startedAt: string;
  agent?: ProcessRecord;
  ovs?: { runDir: string; netns: string; filePrefix: string; dbSocket: string; bridge: string };
  emulated?: { root: string; pfs: string[] };
  devicePlugin?: ProcessRecord;
  /** The resident CNI plugin daemon the `flowline` executable hands invocations to. */
  cniDaemon?: ProcessRecord & { socket: string };
  controller?: ProcessRecord & { grpcAddress: string };
  pods: Record<string, PodRecord>;
  /** Manifests or pods the agent could not run, with why. */
  problems?: Record<string, string>;
  /** When each problem was first seen (ms since the epoch). */
  problemsAt?: Record<string, number>;
  ready: boolean;
}

export function emptyState(): NodeState {
  return { version: 1, startedAt: new Date().toISOString(), pods: {}, ready: false };
}

export function readState(file: string): NodeState | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const state = JSON.parse(text) as NodeState;
    return state.version === 1 ? state : undefined;
  } catch {
    return undefined;
  }
}

export function writeState(file: string, state: NodeState): void {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`);
  renameSync(tmp, file);
}
