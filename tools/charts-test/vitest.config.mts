import { flowlineVitestConfig } from '../../vitest.shared.mjs';

// One fork at a time: helm and the schema checks are CPU work on a machine shared with DPDK pollers.
export default flowlineVitestConfig('charts-test', {
  globalSetup: ['./src/global-setup.ts'],
  fileParallelism: false,
});
