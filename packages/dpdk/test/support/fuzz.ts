/**
 * Builds a libFuzzer harness of native/fuzz (clang, AddressSanitizer and UBSan) and runs it for
 * a bounded time on a seed corpus. A run passes when it ends by itself with exit code 0: no
 * crash, no sanitizer report, no broken invariant (the harnesses abort on one).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { expect } from 'vitest';

export const nativeDir = path.resolve(__dirname, '../../native');
export const hasClang = spawnSync('clang', ['--version']).status === 0;

/** Compiles harness (native/fuzz/<name>.c) with sources (relative to native/) into dir. */
export function buildFuzzer(
  dir: string,
  name: string,
  sources: string[],
  flags: string[] = [],
): string {
  const bin = path.join(dir, name);
  const build = spawnSync(
    'clang',
    [
      '-g',
      '-O1',
      '-fsanitize=fuzzer,address,undefined',
      '-fno-sanitize-recover=undefined',
      ...flags,
      `-I${nativeDir}`,
      path.join(nativeDir, 'fuzz', `${name}.c`),
      ...sources.map((s) => path.join(nativeDir, s)),
      '-o',
      bin,
    ],
    { encoding: 'utf8' },
  );
  expect(build.stderr).toBe('');
  expect(build.status).toBe(0);
  return bin;
}

/** A conntrack harness (native/fuzz/<name>.c with ct_stubs.h): fl_conntrack.c and fl_parse.c,
 * compiled against DPDK's headers. */
export function buildConntrackFuzzer(dir: string, name: string): string {
  const dpdk = execFileSync('pkg-config', ['--cflags', 'libdpdk'], { encoding: 'utf8' });
  return buildFuzzer(dir, name, ['fl_conntrack.c', 'fl_parse.c'], dpdk.trim().split(/\s+/));
}

/** Runs bin for seconds on the seeds; returns its log after checking it found nothing. */
export function runFuzzer(dir: string, bin: string, seeds: Buffer[], seconds: number): string {
  const corpus = path.join(dir, `${path.basename(bin)}-corpus`);
  mkdirSync(corpus);
  seeds.forEach((s, i) => writeFileSync(path.join(corpus, `seed${i}`), s));
  const run = spawnSync(
    bin,
    [
      `-max_total_time=${seconds}`,
      '-timeout=5',
      '-rss_limit_mb=1024',
      `-artifact_prefix=${dir}/`,
      corpus,
    ],
    { encoding: 'utf8', timeout: (seconds + 60) * 1000 },
  );
  const log = run.stderr;
  expect(log).not.toMatch(
    /AddressSanitizer|UndefinedBehaviorSanitizer|deadly signal|runtime error/,
  );
  expect(run.status).toBe(0);
  const done = /Done (\d+) runs/.exec(log);
  expect(done).not.toBeNull();
  expect(Number(done![1])).toBeGreaterThan(10_000);
  return log;
}
