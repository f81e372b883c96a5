// Shared vitest settings. When FLOWLINE_TEST_REPORT_DIR is set (by tools/scripts/run-tests.mjs)
// each project also writes its outcomes there (tools/scripts/outcome-reporter.mjs: every test's
// state and every error outside a test), from which the summary line is counted.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const outcomeReporter = join(
  dirname(fileURLToPath(import.meta.url)),
  'tools',
  'scripts',
  'outcome-reporter.mjs',
);

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
        ? [
            'default',
            [outcomeReporter, { outputFile: `${reportDir}/${project}.json`, root: process.cwd() }],
          ]
        : ['default'],
      ...overrides,
    },
  });
}
