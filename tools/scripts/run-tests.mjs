// `npm test` after set-up: runs every project's tests through nx (one project at a time: the
// integration tests start DPDK and OVS pollers and 2 cores fit one set), then lint, and ends
// with one line "N passed, N failed, N skipped" counted from each project's outcome report by the
// rules in test-outcomes.mjs: a skip not in expected-skips.json (with its condition holding here)
// fails, a failing hook fails, a missing report fails, and so does a project whose lint fails.
// A FLOWLINE_TEST_PROJECTS filter naming an unknown project is an error.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  countOutcomes,
  machineFacts,
  selectProjects,
  validateExpectedSkips,
} from './test-outcomes.mjs';

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
let selected;
let expectedSkips;
try {
  selected = selectProjects(projects, process.env.FLOWLINE_TEST_PROJECTS); // e.g. "@flowline/proto,@flowline/dpdk"
  expectedSkips = validateExpectedSkips(
    JSON.parse(readFileSync(join(root, 'tools', 'scripts', 'expected-skips.json'), 'utf8')),
  );
} catch (err) {
  console.error(err.message);
  console.log('0 passed, 1 failed, 0 skipped');
  process.exit(1);
}
const only = process.env.FLOWLINE_TEST_PROJECTS !== undefined;

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
// Builds compile only src (tsconfig.lib.json) and vitest strips types: one program over every
// project's sources, tests included (about 15 s; 23 tsc runs, one a project, took minutes).
const typecheckRun = only
  ? { status: 0 }
  : spawnSync(
      process.execPath,
      [
        join(root, 'node_modules', 'typescript', 'bin', 'tsc'),
        '-p',
        join(root, 'tsconfig.typecheck.json'),
      ],
      { stdio: 'inherit', cwd: root },
    );

const reports = selected.map((project) => {
  const file = join(reportDir, `${project.replace(/^@flowline\//, '')}.json`);
  return { project, report: existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : undefined };
});
const outcome = countOutcomes(reports, expectedSkips, machineFacts());
let { failed } = outcome;
const { passed, skipped, problems, skippedTests } = outcome;
if (lintRun.status !== 0) {
  failed += 1;
  problems.push('lint failed (see above)');
}
if (typecheckRun.status !== 0) {
  failed += 1;
  problems.push('tsc -p tsconfig.typecheck.json failed (see above)');
}
if (testRun.status !== 0 && failed === 0) {
  failed += 1;
  problems.push(`nx run-many -t test exited ${testRun.status}`);
}
for (const t of skippedTests) console.log(`  - skipped: ${t}`);
for (const p of problems) console.log(`  ✗ ${p}`);
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed === 0 ? 0 : 1);
