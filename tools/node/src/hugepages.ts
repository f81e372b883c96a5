import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

/** Removes hugepage files an EAL with this --file-prefix left (a SIGKILLed process leaves them). */
export function removeHugepageFiles(hugeDir: string, prefix: string): number {
  let n = 0;
  try {
    for (const f of readdirSync(hugeDir)) {
      if (f.startsWith(prefix)) {
        rmSync(join(hugeDir, f), { force: true });
        n++;
      }
    }
  } catch {
    // no hugetlbfs mounted: nothing to remove
  }
  return n;
}
