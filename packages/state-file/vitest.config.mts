import { flowlineVitestConfig } from '../../vitest.shared.mjs';

export default flowlineVitestConfig('state-file');
