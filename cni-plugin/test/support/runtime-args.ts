/**
 * CNI_ARGS as each runtime sends it (read from their sources; the README's runtime table):
 * containerd's CRI plugin passes a map to go-cni (so any key order), CRI-O's ocicni a fixed list,
 * podman 4's CNI backend only the container name, Multus its own list followed by the runtime's
 * CNI_ARGS again (so every key twice, IgnoreUnknown once as "true").
 */
export interface RuntimeArgs {
  runtime: string;
  args: string;
  /** The pod identity the plugin must take from it (none: the container names the folder). */
  pod?: { namespace: string; name: string };
}

export function runtimeArgs(containerId: string, pod = 'web-0', ns = 'default'): RuntimeArgs[] {
  const uid = '6f1c2a3b-0000-4000-8000-00000000beef';
  const crio = `IgnoreUnknown=1;K8S_POD_NAMESPACE=${ns};K8S_POD_NAME=${pod};K8S_POD_INFRA_CONTAINER_ID=${containerId};K8S_POD_UID=${uid}`;
  return [
    {
      runtime: 'containerd (CRI, go-cni)',
      args: `K8S_POD_UID=${uid};IgnoreUnknown=1;K8S_POD_INFRA_CONTAINER_ID=${containerId};K8S_POD_NAME=${pod};K8S_POD_NAMESPACE=${ns}`,
      pod: { namespace: ns, name: pod },
    },
    { runtime: 'CRI-O (ocicni)', args: crio, pod: { namespace: ns, name: pod } },
    {
      runtime: 'CRI-O (ocicni) with a static IP',
      args: `${crio};IP=10.77.0.200`,
      pod: { namespace: ns, name: pod },
    },
    { runtime: 'podman 4.3 (CNI backend)', args: `IgnoreUnknown=1;K8S_POD_NAME=Web_Server.1` },
    {
      runtime: 'Multus (thin) under containerd or CRI-O',
      args: `IgnoreUnknown=true;K8S_POD_NAMESPACE=${ns};K8S_POD_NAME=${pod};K8S_POD_INFRA_CONTAINER_ID=${containerId};K8S_POD_UID=${uid};${crio}`,
      pod: { namespace: ns, name: pod },
    },
    {
      runtime: 'Multus without Kubernetes arguments',
      args: 'IgnoreUnknown=true;K8S_POD_NAMESPACE=;K8S_POD_NAME=;K8S_POD_INFRA_CONTAINER_ID=;K8S_POD_UID=',
    },
    { runtime: 'libcni with no arguments (cnitool)', args: '' },
  ];
}
