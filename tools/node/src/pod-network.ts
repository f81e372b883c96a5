// A pod's interfaces, as a container runtime makes them: one CNI ADD per network the pod names
// (the network's config from the node config, each attachment recorded before its ADD), DEL in
// reverse on teardown, every call with the pod's identity in CNI_ARGS.
import { join } from 'node:path';
import { type CniInvocation, execCni } from './cni';
import { cniBinDir, cniDaemonSocket, cniPath } from './cni-plugin';
import { netconfFor } from './config';
import type { PodSpec } from './manifest';
import type { NodeContext } from './node-context';
import type { AttachmentRecord, PodRecord } from './state';
import type { StopReport } from './stop-report';

/** How the attachment's CNI plugin is run for the pod, as a runtime runs it. */
export function podCniInvocation(
  command: 'ADD' | 'DEL',
  stateDir: string,
  pod: PodRecord,
  a: AttachmentRecord,
): CniInvocation {
  return {
    command,
    plugin: join(cniBinDir(stateDir), String(a.netconf.type)),
    cniPath: cniPath(stateDir),
    netconf: a.netconf,
    // Runtimes cannot add variables; the chart's daemon listens on the default path instead.
    env: { FLOWLINE_CNI_SOCKET: cniDaemonSocket(stateDir) },
    containerId: a.containerId,
    netns: `/run/netns/${pod.netns}`,
    ifname: a.ifname,
    args: {
      IgnoreUnknown: 'true',
      K8S_POD_NAMESPACE: pod.namespace,
      K8S_POD_NAME: pod.name,
      K8S_POD_INFRA_CONTAINER_ID: pod.containerId,
    },
  };
}

/** CNI ADD for each network the pod names, in order; each attachment is recorded first. */
export async function attachNetworks(
  ctx: NodeContext,
  spec: PodSpec,
  pod: PodRecord,
): Promise<void> {
  for (const sel of spec.networks) {
    const ovsdb = ctx.state.ovs!.dbSocket;
    const netconf = netconfFor(ctx.config, ctx.paths, sel.name, ovsdb);
    pod.attachments.push({
      network: sel.name,
      ifname: sel.interface,
      containerId: pod.containerId,
      netconf,
    });
    ctx.save();
    await execCni(
      podCniInvocation(
        'ADD',
        ctx.paths.stateDir,
        pod,
        pod.attachments[pod.attachments.length - 1]!,
      ),
    );
  }
}

/** CNI DEL for each attachment, last first; a failure is logged and the rest still go. */
export async function detachNetworks(
  ctx: NodeContext,
  pod: PodRecord,
  report: StopReport,
): Promise<void> {
  for (const a of [...pod.attachments].reverse()) {
    try {
      await execCni(podCniInvocation('DEL', ctx.paths.stateDir, pod, a));
      report.ports.push({ pod: pod.key, interface: a.ifname });
    } catch (err) {
      ctx.log.warn('CNI DEL failed', { pod: pod.key, ifname: a.ifname, err });
    }
  }
}
