// `npm test` after set-up: runs every project's tests through nx (one project at a time: the
// integration tests start DPDK and OVS pollers and 2 cores fit one set), then lint, and ends
// with one line "N passed, N failed, N skipped" counted from vitest's JSON reports. A project
// whose report is missing (its build or test process crashed) counts as one failure; so does a
// project whose lint fails.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const reportDir = join(root, '.reports', 'vitest');
rmSync(reportDir, { recursive: true, force: true });
mkdirSync(reportDir, { recursive: true });
const env = {
  ...process.env,
  NX_DAEMON: 'false',
  NX_NO_CLOUD: 'true',
  FLOWLINE_TEST_REPORT_DIR: reportDir,
};
const nx = (args, opts = {}) =>
  spawnSync(process.execPath, [join(root, 'node_modules', 'nx', 'dist', 'bin', 'nx.js'), ...args], {
    cwd: root,
    env,
    encoding: 'utf8',
    ...opts,
  });

const list = nx(['show', 'projects', '--withTarget', 'test', '--json'], {
  stdio: ['ignore', 'pipe', 'inherit'],
});
if (list.status !== 0) {
  console.error('cannot list nx projects');
  console.log('0 passed, 1 failed, 0 skipped');
  process.exit(1);
}
const projects = JSON.parse(list.stdout).sort();
const only = process.env.FLOWLINE_TEST_PROJECTS; // e.g. "@flowline/proto,@flowline/dpdk"
const selected = only ? projects.filter((p) => only.split(',').includes(p)) : projects;

const testRun = nx(
  [
    'run-many',
    '-t',
    'test',
    '--parallel=1',
    '--outputStyle=stream',
    `--projects=${selected.join(',')}`,
  ],
  { stdio: 'inherit' },
);
const lintRun = only
  ? { status: 0 }
  : nx(['run-many', '-t', 'lint', '--outputStyle=static'], { stdio: 'inherit' });

let passed = 0;
let failed = 0;
let skipped = 0;
const problems = [];
for (const project of selected) {
  const file = join(reportDir, `${project.replace(/^@flowline\//, '')}.json`);
  if (!existsSync(file)) {
    failed += 1;
    problems.push(`${project}: no test report (build or test run crashed)`);
    continue;
  }
  const report = JSON.parse(readFileSync(file, 'utf8'));
  passed += report.numPassedTests;
  failed += report.numFailedTests;
  skipped += report.numPendingTests + report.numTodoTests;
  // A test file that fails to load has no tests but is a failure all the same.
  const brokenFiles = report.testResults.filter(
    (r) => r.status === 'failed' && r.assertionResults.length === 0,
  );
  failed += brokenFiles.length;
  for (const r of brokenFiles)
    problems.push(`${project}: ${r.name} failed to run: ${r.message.split('\n')[0]}`);
}
if (lintRun.status !== 0) {
  failed += 1;
  problems.push('lint failed (see above)');
}
if (testRun.status !== 0 && failed === 0) {
  failed += 1;
  problems.push(`nx run-many -t test exited ${testRun.status}`);
}
for (const p of problems) console.log(`  ✗ ${p}`);
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed === 0 ? 0 : 1);
