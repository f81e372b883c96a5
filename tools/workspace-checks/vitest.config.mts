import { flowlineVitestConfig } from '../../vitest.shared.mjs';

export default flowlineVitestConfig('workspace-checks');
