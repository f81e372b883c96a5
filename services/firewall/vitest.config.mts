import { flowlineVitestConfig } from '../../vitest.shared.mjs';

// One EAL per process: every test file runs in its own forked process, one file at a time
// (the integration tests start pollers and share two cores).
export default flowlineVitestConfig('firewall', {
  pool: 'forks',
  isolate: true,
  fileParallelism: false,
  testTimeout: 60_000,
});
