export * from './config';
export * from './errors';
export * from './names';
export { DevicePluginDaemon, type DaemonOptions } from './daemon';
export {
  EmulatedHost,
  parsePfSpec,
  pfAddress,
  vfAddress,
  vfIfname,
  type EmulatedHostSpec,
  type EmulatedPfSpec,
} from './emulate';
export { PLUGIN_OPTIONS, PoolServer } from './plugin-server';
export { preferredAllocation, type Placement } from './preferred';
export * from './providers';
export { registerWithKubelet } from './registration';
export * from './selectors';
export * from './sysfs';
export { KubeletPeer, type PluginConnection } from './kubelet-peer';
