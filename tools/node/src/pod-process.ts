// A pod's process, as a container runtime starts a container: the NF's command in the pod's
// netns, with the environment the NF boots from (contract 3, docs/architecture.md#nf-boot): its
// identity, pod dir, gRPC address, EAL file prefix and hugepages, certificate, the devices' env
// and the manifest's own env last.
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

import { DEFAULT_EAL_RUN_DIR } from '@flowline/dpdk';

import { resolveCommand } from './commands';
import type { NodeConfig, NodePaths } from './config';
import { removeEalRuntimeDirs, removeHugepageFiles } from './hugepages';
import type { PodSpec } from './manifest';
import type { NodeContext } from './node-context';
import { podLogFile, podSocketDir } from './pod-names';
import { startProcess } from './processes';
import type { PodRecord } from './state';

/** The process's environment; `security` is its FLOWLINE_TLS_* (or FLOWLINE_INSECURE). */
export function podEnv(
  config: NodeConfig,
  paths: NodePaths,
  spec: PodSpec,
  pod: PodRecord,
  allocated: Record<string, string>,
  security: Record<string, string>,
): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: '/root',
    POD_NAME: spec.name,
    POD_NAMESPACE: spec.namespace,
    FLOWLINE_NF_NAME: spec.name,
    FLOWLINE_POD_DIR: podSocketDir(paths, spec.namespace, spec.name),
    FLOWLINE_GRPC_ADDRESS: pod.grpcAddress,
    FLOWLINE_METRICS_PORT: 'off',
    FLOWLINE_FILE_PREFIX: pod.filePrefix,
    FLOWLINE_HUGEPAGES_DIR: config.hugepagesDir,
    ...(spec.hugepagesMb > 0 ? { FLOWLINE_HUGEPAGES_MB: String(spec.hugepagesMb) } : {}),
    ...security,
    ...allocated,
    ...spec.env,
  };
}

/**
 * The entry of the pod's command line that names its process: the script of a workspace bin
 * (run by this node, whose path every node process has), else the command's own path (its first
 * argument may be as common as "-l").
 */
export const podMarker = (argv: string[]): string =>
  argv[0] === process.execPath && argv[1] !== undefined ? argv[1] : argv[0]!;

/** Starts the pod's process in its netns and records it (with the env Allocate gave, for restarts). */
export function startPodProcess(
  ctx: NodeContext,
  spec: PodSpec,
  pod: PodRecord,
  allocated: Record<string, string>,
): void {
  const argv = resolveCommand(spec.command);
  pod.process = startProcess({
    argv,
    netns: pod.netns,
    env: podEnv(
      ctx.config,
      ctx.paths,
      spec,
      pod,
      allocated,
      ctx.securityEnv((pki) => pki.nf(spec.namespace, spec.name)),
    ),
    log: podLogFile(ctx.paths, spec.namespace, spec.name),
    marker: podMarker(argv),
  });
  pod.allocatedEnv = allocated;
  ctx.save();
}

/**
 * What a dead process leaves that would stop the next from starting: its hugepage files (and its
 * EAL runtime directory), its virtio-user sockets (a new server cannot bind over them; the switch
 * side reconnects once the new process listens) and its gRPC socket. Returns how many hugepage
 * files it removed.
 */
export function clearDeadProcess(
  hugepagesDir: string,
  paths: NodePaths,
  pod: PodRecord,
  ealRunDir = DEFAULT_EAL_RUN_DIR,
): number {
  const removed = removeHugepageFiles(hugepagesDir, pod.filePrefix);
  removeEalRuntimeDirs(pod.filePrefix, 'process', ealRunDir);
  const podDir = podSocketDir(paths, pod.namespace, pod.name);
  for (const f of existsSync(podDir) ? readdirSync(podDir) : [])
    if (f.endsWith('.sock')) rmSync(join(podDir, f), { force: true });
  rmSync(pod.grpcAddress.replace(/^unix:\/\//, ''), { force: true });
  return removed;
}
