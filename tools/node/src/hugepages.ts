import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Which EAL file prefixes a removal takes: `one` process's (the prefix itself, or with the NF
 * runtime's "-<pid>" after it: pod fw's, never pod fw2's), or every prefix that starts with it
 * (`family`: all pods' at teardown).
 */
export type PrefixMatch = 'one' | 'family';

/** Whether a name that starts with an EAL prefix belongs to it, given what follows the prefix. */
function belongs(name: string, prefix: string, match: PrefixMatch, ends: readonly string[]) {
  if (!name.startsWith(prefix)) return false;
  if (match === 'family') return true;
  const rest = name.slice(prefix.length).replace(/^-\d+/, '');
  return ends.some((e) => (e === '' ? rest === '' : rest.startsWith(e)));
}

/**
 * Removes hugepage files an EAL with this --file-prefix left (a SIGKILLed process leaves them:
 * DPDK names them <prefix>map_<n>, or <prefix>seg... with single-file segments).
 */
export function removeHugepageFiles(
  hugeDir: string,
  prefix: string,
  match: PrefixMatch = 'one',
): number {
  if (!prefix) return 0;
  let n = 0;
  try {
    for (const f of readdirSync(hugeDir)) {
      if (belongs(f, prefix, match, ['map_', 'seg'])) {
        rmSync(join(hugeDir, f), { force: true });
        n++;
      }
    }
  } catch {
    // no hugetlbfs mounted: nothing to remove
  }
  return n;
}

/**
 * Removes the EAL runtime directories (<runDir>/<file-prefix>) of this prefix: DPDK leaves them
 * even after a clean exit. Names come from the directory's own listing. Returns how many.
 */
export function removeEalRuntimeDirs(
  prefix: string,
  match: PrefixMatch = 'one',
  runDir = '/var/run/dpdk',
): number {
  if (!prefix) return 0;
  let n = 0;
  try {
    for (const d of readdirSync(runDir)) {
      if (belongs(d, prefix, match, [''])) {
        rmSync(join(runDir, d), { recursive: true, force: true });
        n++;
      }
    }
  } catch {
    // no runtime directory: nothing to remove
  }
  return n;
}
