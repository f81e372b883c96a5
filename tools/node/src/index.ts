export { NodeAgent, type AgentOptions } from './agent';
export { execCni, type CniInvocation } from './cni';
export { REPO_ROOT, resolveCommand, workspaceBins } from './commands';
export {
  loadNodeConfig,
  netconfFor,
  nodePaths,
  parseNodeConfig,
  type NodeConfig,
  type NodePaths,
} from './config';
export {
  applyManifests,
  deleteManifests,
  nodeDown,
  nodeStatus,
  nodeUp,
  type NodeStatus,
  type PodStatus,
} from './control';
export {
  CniExecError,
  ManifestError,
  NodeAlreadyUpError,
  NodeConfigError,
  NodeStepError,
} from './errors';
export {
  NETWORKS_ANNOTATION,
  parseNetworkSelection,
  parsePods,
  podFromObject,
  podKey,
  type PodSpec,
} from './manifest';
export { NodeRuntime } from './runtime';
export { ovsDaemons } from './ovs-switch';
export { POD_FILE_PREFIX, POD_NETNS_PREFIX } from './pod-names';
export { removeEalRuntimeDirs, removeHugepageFiles } from './hugepages';
export { readState, type NodeState, type PodRecord } from './state';
export { nodePki, operatorTlsFiles, pkiDir } from './pki';
export { FILE_ENV, resolveManifestFiles } from './pod-files';
export {
  emptyStopReport,
  isEmptyStopReport,
  type RemovedPort,
  type StopReport,
  type StoppedProcess,
} from './stop-report';
