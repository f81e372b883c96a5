/**
 * The addon built a second way, with AddressSanitizer and UndefinedBehaviorSanitizer (gcc,
 * -fsanitize=address,undefined, in build-asan/), and this package's integration tests run
 * against it: Node itself is not instrumented, so libasan is preloaded (LD_PRELOAD) and the
 * tests load the instrumented addon through FLOWLINE_DPDK_ADDON. Every sanitizer report halts
 * the process that made it and is written to a log file: the run passes only with every test
 * passed, none skipped, and no report. (The fuzzers in test/fuzz run under ASan + UBSan too.)
 */
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { dataplaneReady } from '../support/env';

const pkg = path.resolve(__dirname, '../..');
const root = path.resolve(pkg, '../..');
const buildDir = path.join(pkg, 'build-asan');
const work = mkdtempSync(path.join(tmpdir(), 'fl-asan-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const SANITIZE = '-fsanitize=address,undefined -fno-sanitize-recover=undefined';
const CFLAGS = `${SANITIZE} -fno-omit-frame-pointer -g -O1`;

/** binding.gyp of the package, its sources seen from build-asan/. */
function asanGyp(): string {
  const gyp = readFileSync(path.join(pkg, 'binding.gyp'), 'utf8');
  return gyp.replace(/"native\//g, '"../native/');
}

function libasan(): string {
  const r = spawnSync('gcc', ['-print-file-name=libasan.so'], { encoding: 'utf8' });
  return r.stdout.trim();
}

/** The sanitizer reports left in the log directory (ASan and UBSan log_path). */
function reports(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.startsWith('asan') || f.startsWith('ubsan'))
    .map((f) => readFileSync(path.join(dir, f), 'utf8'))
    .filter((t) => t.trim() !== '');
}

describe.skipIf(dataplaneReady())('the addon under ASan + UBSan (root, hugepages, gcc)', () => {
  it('builds with -fsanitize=address,undefined and passes every integration test with no sanitizer report', () => {
    const asan = libasan();
    expect(existsSync(asan)).toBe(true);
    mkdirSync(buildDir, { recursive: true });
    writeFileSync(path.join(buildDir, 'binding.gyp'), asanGyp());
    const env = { ...process.env, CFLAGS, CXXFLAGS: CFLAGS, LDFLAGS: SANITIZE };
    const gyp = path.join(root, 'node_modules', '.bin', 'node-gyp');
    for (const step of [['configure'], ['build', '-j', '2']]) {
      const r = spawnSync(gyp, step, { cwd: buildDir, env, encoding: 'utf8' });
      expect(r.status, `node-gyp ${step[0]}: ${r.stderr.slice(-4000)}`).toBe(0);
    }
    const addon = path.join(buildDir, 'build', 'Release', 'flowline_dpdk.node');
    const logs = path.join(work, 'logs');
    mkdirSync(logs);
    const results = path.join(work, 'results.json');
    const childEnv: NodeJS.ProcessEnv = {
      ...process.env,
      FLOWLINE_DPDK_ADDON: addon,
      LD_PRELOAD: asan,
      // Node is not instrumented and keeps memory until exit: leak checking would only see it.
      ASAN_OPTIONS: `detect_leaks=0:halt_on_error=1:log_path=${logs}/asan`,
      UBSAN_OPTIONS: `halt_on_error=1:print_stacktrace=1:log_path=${logs}/ubsan`,
    };
    delete childEnv.FLOWLINE_TEST_REPORT_DIR; // the outer run's report is this test's
    const run = spawnSync(
      process.execPath,
      [
        path.join(root, 'node_modules', 'vitest', 'vitest.mjs'),
        'run',
        'test/integration',
        '--exclude',
        '**/sanitizers.test.ts',
        '--reporter=json',
        `--outputFile=${results}`,
      ],
      { cwd: pkg, env: childEnv, encoding: 'utf8', timeout: 240_000 },
    );
    const found = [
      ...reports(logs),
      ...(/AddressSanitizer|UndefinedBehaviorSanitizer|runtime error:/.test(run.stderr)
        ? [run.stderr.slice(-8000)]
        : []),
    ];
    expect(found, found.join('\n---\n').slice(0, 8000)).toEqual([]);
    const r = JSON.parse(readFileSync(results, 'utf8')) as {
      numTotalTests: number;
      numPassedTests: number;
      numFailedTests: number;
      numPendingTests: number;
      testResults: {
        assertionResults: { fullName: string; status: string; failureMessages: string[] }[];
      }[];
    };
    // Which tests failed under the sanitizers, and why (the child's stderr is mostly DPDK's).
    const failures = r.testResults
      .flatMap((f) => f.assertionResults)
      .filter((a) => a.status === 'failed')
      .map((a) => `${a.fullName}: ${a.failureMessages.join('\n').slice(0, 1500)}`);
    expect(failures).toEqual([]);
    expect(run.status, run.stderr.slice(-4000)).toBe(0);
    expect(r.numFailedTests).toBe(0);
    expect(r.numPendingTests).toBe(0);
    expect(r.numPassedTests).toBe(r.numTotalTests);
    expect(r.numTotalTests).toBeGreaterThan(30);
  }, 300_000);
});
