import { flowlineVitestConfig } from '../../vitest.shared.mjs';

export default flowlineVitestConfig('nf-runtime');
