import { flowlineVitestConfig } from '../../vitest.shared.mjs';

export default flowlineVitestConfig('emulation');
