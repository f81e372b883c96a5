// A pod's sandbox, as a container runtime makes one: its network namespace (loopback up) and its
// folder under <state>/pods, where its NF serves gRPC.
import { mkdirSync, rmSync } from 'node:fs';
import type { NodePaths } from './config';
import { deleteNetns, ip, tryIp } from './netns';
import { podStateDir } from './pod-names';
import type { PodRecord } from './state';
import type { StopReport } from './stop-report';

/** Makes the pod's netns afresh (a leftover of a crashed run is deleted) and its folder. */
export function createPodSandbox(paths: NodePaths, pod: PodRecord): void {
  tryIp(['netns', 'del', pod.netns]);
  ip(['netns', 'add', pod.netns]);
  ip(['-n', pod.netns, 'link', 'set', 'lo', 'up']);
  mkdirSync(podStateDir(paths, pod.namespace, pod.name), { recursive: true });
}

/** Deletes the pod's netns (noted when it was there) and its folder; either may be gone. */
export function removePodSandbox(paths: NodePaths, pod: PodRecord, report: StopReport): void {
  deleteNetns(pod.netns, report);
  rmSync(podStateDir(paths, pod.namespace, pod.name), {
    recursive: true,
    force: true,
  });
}
