import { rmSync } from 'node:fs';

import {
  DEFAULT_EAL_RUN_DIR,
  ealHugepageFiles,
  ealRuntimeDirs,
  type EalPrefixMatch,
} from '@flowline/dpdk';

/**
 * Removes the hugepage files an EAL with this --file-prefix left (a SIGKILLed process leaves
 * them), by @flowline/dpdk's rule for their names: one pod process's (`process`: the prefix, or it
 * with the NF runtime's "-<pid>"), or every pod's (`family`). Returns how many.
 */
export function removeHugepageFiles(
  hugeDir: string,
  prefix: string,
  match: EalPrefixMatch = 'process',
): number {
  const files = ealHugepageFiles(prefix, { hugeDir, match });
  for (const f of files) rmSync(f, { force: true });
  return files.length;
}

/**
 * Removes the EAL runtime directories (<runDir>/<file-prefix>) of this prefix: DPDK leaves them
 * even after a clean exit. Returns how many.
 */
export function removeEalRuntimeDirs(
  prefix: string,
  match: EalPrefixMatch = 'process',
  runDir = DEFAULT_EAL_RUN_DIR,
): number {
  const dirs = ealRuntimeDirs(prefix, { runDir, match });
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  return dirs.length;
}
