// Shared vitest settings. When FLOWLINE_TEST_REPORT_DIR is set (by tools/scripts/run-tests.mjs)
// each project also writes vitest's JSON report there, from which the summary line is counted.
import { defineConfig } from 'vitest/config';

/**
 * @param {string} project nx project name, used for the report file name
 * @param {import('vitest/config').UserConfig['test']} [overrides]
 */
export function flowlineVitestConfig(project, overrides = {}) {
  const reportDir = process.env.FLOWLINE_TEST_REPORT_DIR;
  return defineConfig({
    test: {
      include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
      testTimeout: 30_000,
      hookTimeout: 60_000,
      reporters: reportDir
        ? ['default', ['json', { outputFile: `${reportDir}/${project}.json` }]]
        : ['default'],
      ...overrides,
    },
  });
}
