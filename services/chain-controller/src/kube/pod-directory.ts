import type { NfDirectory, NfRecord } from '../directory';
import { nfWorkloadOf, type NfWorkload, type PodIdentitySource } from '../nf-identity';

/** Overrides the NF's gRPC port; without it the container port named "grpc" is used. */
export const GRPC_PORT_ANNOTATION = 'flowline.io/grpc-port';

/** The parts of a v1 Pod the directory reads (list items and watch objects alike). */
export interface PodLike {
  metadata?: {
    name?: string;
    namespace?: string;
    annotations?: Record<string, string>;
    ownerReferences?: NonNullable<PodIdentitySource['metadata']>['ownerReferences'];
  };
  spec?: {
    nodeName?: string;
    containers?: { ports?: { name?: string; containerPort?: number }[] }[];
  };
  status?: { podIP?: string; hostIP?: string; phase?: string };
}

export interface PodInfo {
  key: string;
  node?: string;
  /** The node's IP (status.hostIP): where that node's OVS is reached. */
  hostIP?: string;
  ip?: string;
  grpcPort?: number;
  /** Whose identity its gRPC server must prove (nfWorkloadOf: its StatefulSet, else itself). */
  workload?: NfWorkload;
}

/**
 * Where a pod's NF serves gRPC: the annotation flowline.io/grpc-port, else the container port
 * named "grpc" (the network-function chart's convention).
 */
export function podInfo(pod: PodLike): PodInfo {
  const meta = pod.metadata ?? {};
  const info: PodInfo = { key: `${meta.namespace ?? 'default'}/${meta.name ?? ''}` };
  if (pod.spec?.nodeName) info.node = pod.spec.nodeName;
  if (pod.status?.podIP) info.ip = pod.status.podIP;
  if (pod.status?.hostIP) info.hostIP = pod.status.hostIP;
  const annotated = Number(meta.annotations?.[GRPC_PORT_ANNOTATION]);
  const named = pod.spec?.containers
    ?.flatMap((c) => c.ports ?? [])
    .find((p) => p.name === 'grpc')?.containerPort;
  const port =
    Number.isInteger(annotated) && annotated > 0 && annotated < 65536 ? annotated : named;
  if (port) info.grpcPort = port;
  const workload = nfWorkloadOf(pod);
  if (workload) info.workload = workload;
  return info;
}

/**
 * NF instances in a cluster: the pods say which exist, on which node and at which gRPC address;
 * the CNI plugin's attachment files (an AttachmentDirectory over its socketDir) still name each
 * interface's OVS port. An NF without a pod is unknown, even if stale files remain.
 */
export class PodDirectory implements NfDirectory {
  private readonly pods = new Map<string, PodInfo>();

  constructor(private readonly attachments: NfDirectory) {}

  replace(pods: PodLike[]): void {
    this.pods.clear();
    for (const p of pods) this.upsert(p);
  }

  upsert(pod: PodLike): PodInfo {
    const info = podInfo(pod);
    this.pods.set(info.key, info);
    return info;
  }

  remove(pod: PodLike): PodInfo {
    const info = podInfo(pod);
    this.pods.delete(info.key);
    return info;
  }

  /**
   * The node whose IP (status.hostIP) is `address`, by the pods' spec.nodeName: which switch
   * certificate (ovs-switch.<node>) the OVS at that address must present. Undefined when no pod
   * says, or when pods disagree (then no name can be trusted, and the node is not programmed).
   */
  nodeNameOf(address: string): string | undefined {
    const names = new Set(
      [...this.pods.values()].flatMap((p) => (p.hostIP === address && p.node ? [p.node] : [])),
    );
    return names.size === 1 ? [...names][0] : undefined;
  }

  /** The IPs of the nodes NF pods run on. */
  nodeAddresses(): string[] {
    return [...new Set([...this.pods.values()].flatMap((p) => (p.hostIP ? [p.hostIP] : [])))];
  }

  pod(nf: string): PodInfo | undefined {
    return this.pods.get(nf.includes('/') ? nf : `default/${nf}`);
  }

  async lookup(nf: string): Promise<NfRecord | undefined> {
    const pod = this.pod(nf);
    if (!pod) return undefined;
    const files = await this.attachments.lookup(pod.key);
    const host = pod.ip?.includes(':') ? `[${pod.ip}]` : pod.ip;
    return {
      name: nf,
      interfaces: files?.interfaces ?? {},
      ...(pod.workload ? { workload: pod.workload } : {}),
      ...(host && pod.grpcPort ? { grpcAddress: `${host}:${pod.grpcPort}` } : {}),
    };
  }
}
