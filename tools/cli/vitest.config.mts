import { flowlineVitestConfig } from '../../vitest.shared.mjs';

// One test file at a time: the e2e and walk-through tests each run a node, and a node's switch
// netns and pod names are the machine's, not the test's.
export default flowlineVitestConfig('cli', { fileParallelism: false });
