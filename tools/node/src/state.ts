// What the node has made, written to disk after every step (crash-safely, through
// @flowline/state-file: unique temp file, fsync, rename, fsync of the folder; the replaced
// content kept as `.prev`), so that `down` can undo all of it even when the agent that made it
// was killed. A state file that does not parse is moved aside and the previous copy is used.
import {
  previousPath,
  readStateFileSync,
  removeStateFile,
  writeStateFileSync,
} from '@flowline/state-file';
import type { Logger } from '@flowline/telemetry';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

export interface ProcessRecord {
  pid: number;
  /**
   * An entry of its command line, and its start time (/proc/<pid>/stat field 22; absent in
   * older states), checked before a signal so a reused pid is never hit.
   */
  marker: string;
  startTime?: number;
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
  /**
   * The hugetlbfs the pods' and switch's EALs map from, as configured at `up`: `down` sweeps it
   * without the config file (a state from before it was recorded: the default).
   */
  hugepagesDir?: string;
  /** Manifests or pods the agent could not run, with why. */
  problems?: Record<string, string>;
  /** When each problem was first seen (ms since the epoch). */
  problemsAt?: Record<string, number>;
  ready: boolean;
}

export function emptyState(): NodeState {
  return { version: 1, startedAt: new Date().toISOString(), pods: {}, ready: false };
}

/** The state file's content; throws on anything that is not a node state of version 1. */
export function parseState(text: string): NodeState {
  const state = JSON.parse(text) as Partial<NodeState> | null;
  if (typeof state !== 'object' || state === null) throw new Error('not a JSON object');
  if (state.version !== 1) throw new Error(`version ${String(state.version)} is not 1`);
  if (typeof state.pods !== 'object' || state.pods === null) throw new Error('no pods object');
  return state as NodeState;
}

/**
 * Reads the node's state; undefined when there is none. A file that does not parse (cut short,
 * garbled) is moved to `<file>.corrupt-<time>` and the previous copy is used and put back in its
 * place, so every later reader finds it too; each unreadable file is logged with its parse error.
 */
export function readState(file: string, log?: Logger): NodeState | undefined {
  const read = readStateFileSync(file, parseState);
  for (const p of read.problems)
    log?.warn('node state file unreadable; moved aside', {
      file: p.file,
      error: p.error,
      ...(p.movedTo ? { movedTo: p.movedTo } : {}),
      using: read.source === 'previous' ? previousPath(file) : 'nothing (no usable copy)',
    });
  // A previous copy read is the current file again (state-file puts it back).
  return read.value;
}

export function writeState(file: string, state: NodeState): void {
  mkdirSync(dirname(file), { recursive: true });
  // 0644 as before: `flowline status` reads it.
  writeStateFileSync(file, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o644 });
}

/** Removes the state file and its previous copy (teardown done: nothing left to undo). */
export function removeState(file: string): Promise<void> {
  return removeStateFile(file);
}
