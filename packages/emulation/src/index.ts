import { join } from 'node:path';

export {
  EmulatedHost,
  STATE_FILE,
  parsePfSpec,
  pfAddress,
  vfAddress,
  vfIfname,
  type EmulatedHostSpec,
  type EmulatedPfSpec,
} from './emulate';
export { EmulationError, UsageError, VfCreationError } from './errors';
export { KubeletPeer, type PluginConnection } from './kubelet-peer';

/** The `flowline-emulate` executable (dist/cli.js), for tests and tools that spawn it. */
export const EMULATE_CLI = join(__dirname, 'cli.js');
