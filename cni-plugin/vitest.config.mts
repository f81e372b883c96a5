import { flowlineVitestConfig } from '../vitest.shared.mjs';

export default flowlineVitestConfig('cni-plugin', { fileParallelism: false });
