// Which identity an NF's gRPC server must prove when the controller calls it (hop configs,
// health watches). The identity is derived only from what the NF's pod cannot forge, so a pod
// cannot make the controller accept another workload's certificate, nor present its own
// certificate where another NF is expected.
import {
  channelCredentials,
  nfId,
  type SecurityLog,
  type TransportSecurity,
} from '@flowline/grpc-auth';
import * as grpc from '@grpc/grpc-js';

/** The workload an NF instance belongs to: its certificate is spiffe://<td>/ns/<namespace>/nf/<name>. */
export interface NfWorkload {
  namespace: string;
  name: string;
}

/** The parts of a v1 Pod the rule reads. */
export interface PodIdentitySource {
  metadata?: {
    name?: string;
    namespace?: string;
    ownerReferences?: { kind?: string; name?: string; controller?: boolean; apiVersion?: string }[];
  };
}

/**
 * THE rule for an NF's expected identity, `nfId(namespace, workload)`:
 *
 * - namespace: the pod's namespace (metadata.namespace, from the apiserver).
 * - workload: in a cluster, the name of the pod's controlling ownerReference when that is a
 *   StatefulSet (apps/v1; what the network-function chart deploys, and what its certificate
 *   names: one certificate per StatefulSet); otherwise (a standalone pod, as on the local node,
 *   or another kind of owner) the pod's own name.
 *
 * Both come from the pod object as the apiserver (or the local node runtime) holds it, never
 * from the NF process, its attachment files or anything in its folder. A ServiceChain can only
 * name pods of its own namespace, so a tenant cannot make the controller expect another
 * namespace's identity.
 */
export function nfWorkloadOf(pod: PodIdentitySource): NfWorkload | undefined {
  const meta = pod.metadata ?? {};
  if (!meta.name) return undefined;
  const owner = meta.ownerReferences?.find(
    (o) => o.controller === true && o.kind === 'StatefulSet' && o.apiVersion?.startsWith('apps/'),
  );
  return { namespace: meta.namespace ?? 'default', name: owner?.name || meta.name };
}

/** Credentials for calling an NF: the controller's certificate, and the NF's expected identity. */
export function nfChannelCredentials(
  security: TransportSecurity,
  trustDomain: string,
  workload: NfWorkload | undefined,
  log?: SecurityLog,
): grpc.ChannelCredentials {
  // Plaintext was configured explicitly; the listener's start already warned about it (no log
  // here, so that each call does not warn again).
  if (security.insecure) return channelCredentials(security, () => true);
  if (!workload)
    throw new Error(
      'the NF has no known workload (namespace and name), so its identity cannot be checked',
    );
  return channelCredentials(security, nfId(workload.namespace, workload.name, trustDomain), log);
}
