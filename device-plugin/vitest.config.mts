import { flowlineVitestConfig } from '../vitest.shared.mjs';

// The daemon tests spawn the built daemon and share the plugin directory layout per test file;
// files run one at a time so two daemons never compete for the two cores.
export default flowlineVitestConfig('device-plugin', { fileParallelism: false });
