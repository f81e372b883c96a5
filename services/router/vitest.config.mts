import { flowlineVitestConfig } from '../../vitest.shared.mjs';

// The integration test starts the router process and an EAL of its own: one file at a time.
export default flowlineVitestConfig('router', {
  pool: 'forks',
  fileParallelism: false,
  testTimeout: 60_000,
});
