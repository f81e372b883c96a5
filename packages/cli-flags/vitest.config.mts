import { flowlineVitestConfig } from '../../vitest.shared.mjs';

export default flowlineVitestConfig('cli-flags');
