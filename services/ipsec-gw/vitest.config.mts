import { flowlineVitestConfig } from '../../vitest.shared.mjs';

// One EAL per process: every test file runs in its own forked process, one file at a time
// (the integration test starts the gateway's poller and shares two cores).
export default flowlineVitestConfig('ipsec-gw', {
  pool: 'forks',
  isolate: true,
  fileParallelism: false,
  testTimeout: 60_000,
});
