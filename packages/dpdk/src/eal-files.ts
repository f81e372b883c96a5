/**
 * What an EAL leaves on disk, by its --file-prefix: hugepage files (DPDK names them
 * <prefix>map_<n>, or <prefix>seg... with single-file segments; a SIGKILLed process leaves them)
 * and its runtime directory (<run dir>/<prefix>, which DPDK leaves even after a clean exit).
 * The one rule for every package and tool that cleans up after an EAL: names come from the
 * directories' own listings, and a prefix that is not one plain name names nothing.
 */
import { existsSync, readdirSync } from 'node:fs';
import * as path from 'node:path';

/** A --file-prefix: one plain name (it names <run dir>/<prefix>, so never "." or ".."). */
export const EAL_PREFIX_RE = /^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$/;

/**
 * Which prefixes a lookup takes: the prefix itself (`exact`); it, or it with a "-<pid>" after it
 * (`process`: the NF runtime's per-process prefixes, pod fw's and never pod fw2's); or every
 * prefix that starts with it (`family`: all pods' at a node's teardown).
 */
export type EalPrefixMatch = 'exact' | 'process' | 'family';

export interface EalFilesOptions {
  /** hugetlbfs mount the EAL mapped its pages from. Default /dev/hugepages. */
  hugeDir?: string;
  /** Where EALs keep their runtime directories. Default /var/run/dpdk. */
  runDir?: string;
  /** Default `exact`. */
  match?: EalPrefixMatch;
}

export const DEFAULT_HUGE_DIR = '/dev/hugepages';
export const DEFAULT_EAL_RUN_DIR = '/var/run/dpdk';

/** Whether an entry of a listing belongs to prefix: what follows the prefix is one of `ends`. */
function belongs(name: string, prefix: string, match: EalPrefixMatch, ends: readonly string[]) {
  if (!name.startsWith(prefix)) return false;
  if (match === 'family') return true;
  let rest = name.slice(prefix.length);
  if (match === 'process') rest = rest.replace(/^-\d+/, '');
  return ends.some((e) => (e === '' ? rest === '' : rest.startsWith(e)));
}

function listed(dir: string, keep: (name: string) => boolean): string[] {
  if (!existsSync(dir)) return [];
  try {
    return readdirSync(dir)
      .filter(keep)
      .map((f) => path.join(dir, f));
  } catch {
    return []; // not a directory, or unreadable: nothing of ours there
  }
}

/** Hugepage files of an EAL with this prefix, as paths. */
export function ealHugepageFiles(filePrefix: string, options: EalFilesOptions = {}): string[] {
  if (!EAL_PREFIX_RE.test(filePrefix)) return [];
  const match = options.match ?? 'exact';
  return listed(options.hugeDir ?? DEFAULT_HUGE_DIR, (f) =>
    belongs(f, filePrefix, match, ['map_', 'seg']),
  );
}

/** Runtime directories of an EAL with this prefix, as paths. */
export function ealRuntimeDirs(filePrefix: string, options: EalFilesOptions = {}): string[] {
  if (!EAL_PREFIX_RE.test(filePrefix)) return [];
  const match = options.match ?? 'exact';
  return listed(options.runDir ?? DEFAULT_EAL_RUN_DIR, (f) => belongs(f, filePrefix, match, ['']));
}

/**
 * Hugepage files and runtime directories an EAL with this prefix left behind (callers remove
 * what this returns, recursively for the directories).
 */
export function leftoverFiles(filePrefix: string, options: EalFilesOptions = {}): string[] {
  return [...ealHugepageFiles(filePrefix, options), ...ealRuntimeDirs(filePrefix, options)];
}
