/**
 * The external_ids the CNI plugin writes on each pod interface's OVS Port and Interface. They
 * are the switch's own record of which pod an interface belongs to: the plugin's CHECK and GC
 * read them back, and the chain controller finds a pod's ports by them over OVSDB, from any
 * machine, without the node's attachment files.
 */
export const ATTACHMENT_EXTERNAL_IDS = {
  network: 'flowline-network',
  containerId: 'cni-container-id',
  ifname: 'cni-ifname',
  netns: 'cni-netns',
  socket: 'flowline-socket',
  podNamespace: 'k8s-pod-namespace',
  podName: 'k8s-pod-name',
} as const;
