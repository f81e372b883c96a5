import { existsSync } from 'node:fs';

/** Why the DPDK integration tests cannot run here (they need root and 2 MiB hugepages), if so. */
export function dataplaneNotReady(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root';
  if (!existsSync('/dev/hugepages')) return 'needs hugetlbfs on /dev/hugepages';
  return undefined;
}
