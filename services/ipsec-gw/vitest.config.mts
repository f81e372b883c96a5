import { flowlineVitestConfig } from '../../vitest.shared.mjs';

export default flowlineVitestConfig('ipsec-gw', { testTimeout: 30_000 });
