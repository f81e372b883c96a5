import { existsSync, rmSync } from 'node:fs';

import { leftoverFiles } from '../../src/eal-files';

/** Integration tests need root and 2 MiB hugepages (tools/setup/setup.sh reserves them). */
export function dataplaneReady(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root';
  if (!existsSync('/dev/hugepages'))
    return 'needs hugetlbfs on /dev/hugepages (tools/setup/setup.sh)';
  return undefined;
}

/** A file prefix unique to this test process. */
export function testPrefix(name: string): string {
  return `fltest-${name}-${process.pid}`;
}

/** Removes anything an EAL with this prefix (or one that extends it) could have left. */
export function scrubPrefix(prefix: string): void {
  for (const f of leftoverFiles(prefix, { match: 'family' }))
    rmSync(f, { recursive: true, force: true });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls fn until it returns true or timeoutMs passes; returns the last result. */
export async function waitFor(fn: () => boolean, timeoutMs = 5000, stepMs = 5): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (fn()) return true;
    await sleep(stepMs);
  }
  return fn();
}
