// Crash-safe state files. A write goes to a unique temporary name in the same directory, is
// fsynced, renamed over the file and the directory is fsynced, so after a crash the file is
// either the old or the new content, never half of either. The content replaced is kept as
// `<file>.prev` (a hard link, so keeping it costs no copy), which is what a reader falls back to
// when the file it finds cannot be parsed (a disk or an editor that did not play by these rules).
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  fsyncSync,
  linkSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { link, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export interface WriteStateOptions {
  /** File mode of a newly written file (default 0o600: state is nobody else's business). */
  mode?: number;
  /** Keep the replaced content as `<file>.prev` for readers to fall back to (default true). */
  keepPrevious?: boolean;
}

/** Why a state file (or its previous copy) was not used, for the caller's log. */
export interface StateFileProblem {
  file: string;
  error: string;
  /** Where the unreadable file was moved, so an operator can look at it. */
  movedTo?: string;
}

export interface ReadStateResult<T> {
  /** The parsed content, or undefined when there is none to use (start empty). */
  value: T | undefined;
  /** Which copy the value came from. */
  source: 'current' | 'previous' | 'none';
  /** Files that existed but could not be parsed; empty when all was well. */
  problems: StateFileProblem[];
}

export const previousPath = (path: string): string => `${path}.prev`;

function tmpPath(path: string): string {
  // Unique per call: concurrent writers (two requests in one daemon) never share a tmp file.
  return join(
    dirname(path),
    `.${basename(path)}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`,
  );
}

/**
 * Removes the temporary files of `path` (its own and its `.prev`'s) that writers which are gone
 * left: one killed between creating its tmp file and the rename leaves a whole copy of the state
 * behind, which nothing else removes. A tmp file of a live process (a write in progress) stays.
 */
function sweepDeadWritersTmp(path: string): void {
  const dir = dirname(path);
  const prefixes = [`.${basename(path)}.tmp-`, `.${basename(previousPath(path))}.tmp-`];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const prefix = prefixes.find((p) => name.startsWith(p));
    if (!prefix) continue;
    const pid = Number(/^(\d+)-[0-9a-f]+$/.exec(name.slice(prefix.length))?.[1]);
    if (!Number.isSafeInteger(pid) || pid <= 0 || pid === process.pid || processAlive(pid))
      continue;
    rmSync(join(dir, name), { force: true });
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, someone else's.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function isMissing(err: unknown): boolean {
  return (err as NodeJS.ErrnoException).code === 'ENOENT';
}

async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function fsyncDirSync(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Writes `data` to `path` crash-safely (tmp, fsync, rename, fsync of the directory). */
export async function writeStateFile(
  path: string,
  data: string | Uint8Array,
  options: WriteStateOptions = {},
): Promise<void> {
  const tmp = tmpPath(path);
  const dir = dirname(path);
  try {
    const handle = await open(tmp, 'wx', options.mode ?? 0o600);
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    if (options.keepPrevious ?? true) await keepPrevious(path);
    await rename(tmp, path);
    await fsyncDir(dir);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/** The synchronous twin of writeStateFile, for code that must not yield (exit handlers). */
export function writeStateFileSync(
  path: string,
  data: string | Uint8Array,
  options: WriteStateOptions = {},
): void {
  const tmp = tmpPath(path);
  const dir = dirname(path);
  try {
    const fd = openSync(tmp, 'wx', options.mode ?? 0o600);
    try {
      const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
      let off = 0;
      while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    if (options.keepPrevious ?? true) keepPreviousSync(path);
    renameSync(tmp, path);
    fsyncDirSync(dir);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

// The current file becomes `.prev` by a link under a temporary name renamed into place, so
// `.prev` too is always whole. A current file that does not exist leaves `.prev` as it was.
async function keepPrevious(path: string): Promise<void> {
  const tmp = tmpPath(previousPath(path));
  try {
    await link(path, tmp);
  } catch (err) {
    if (isMissing(err)) return;
    throw err;
  }
  try {
    await rename(tmp, previousPath(path));
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  // rename() between two links of one file does nothing and leaves the tmp name: drop it.
  await rm(tmp, { force: true });
}

function keepPreviousSync(path: string): void {
  const tmp = tmpPath(previousPath(path));
  try {
    linkSync(path, tmp);
  } catch (err) {
    if (isMissing(err)) return;
    throw err;
  }
  try {
    renameSync(tmp, previousPath(path));
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  rmSync(tmp, { force: true });
}

/**
 * Where a garbled state file is moved aside to: `<path>.corrupt-<time>`, the time in a form
 * without `:` or `.`. Exported so that whoever moves aside anything else at a state path uses the
 * same name, and one glob finds them all.
 */
export function corruptPath(path: string): string {
  return `${path}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`;
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Reads and parses a state file. A file that exists but does not parse (parse throws) is moved
 * aside to `<file>.corrupt-<time>` and the previous copy is tried (and, when it parses, put back
 * as the file, so later reads find it too); when neither is usable the
 * value is undefined and the caller starts empty. Only errors other than "missing" or "does not
 * parse" (permissions, I/O) are thrown.
 */
export async function readStateFile<T>(
  path: string,
  parse: (text: string) => T,
): Promise<ReadStateResult<T>> {
  // State files are small and read once at start: the synchronous reader serves both.
  return readStateFileSync(path, parse);
}

/** The synchronous twin of readStateFile. */
export function readStateFileSync<T>(path: string, parse: (text: string) => T): ReadStateResult<T> {
  sweepDeadWritersTmp(path);
  const problems: StateFileProblem[] = [];
  let text: string | undefined;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if (!isMissing(err)) throw err;
  }
  if (text !== undefined) {
    try {
      return { value: parse(text), source: 'current', problems };
    } catch (err) {
      const movedTo = corruptPath(path);
      renameSync(path, movedTo);
      problems.push({ file: path, error: describe(err), movedTo });
    }
  }
  let prev: string | undefined;
  try {
    prev = readFileSync(previousPath(path), 'utf8');
  } catch (err) {
    if (!isMissing(err)) throw err;
  }
  // Without a problem with the current file, a lone `.prev` is history, not state.
  if (prev !== undefined && problems.length > 0) {
    let value: T;
    try {
      value = parse(prev);
    } catch (err) {
      problems.push({ file: previousPath(path), error: describe(err) });
      return { value: undefined, source: 'none', problems };
    }
    restorePrevious(path);
    return { value, source: 'previous', problems };
  }
  return { value: undefined, source: 'none', problems };
}

/**
 * The previous copy a read fell back to becomes the current file again (a link: it is whole),
 * so the next read finds it too (a lone `.prev` is not read as state). A writer that put a newer
 * file there meanwhile keeps it.
 */
function restorePrevious(path: string): void {
  try {
    linkSync(previousPath(path), path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return;
    throw err;
  }
  fsyncDirSync(dirname(path));
}

/** Removes a state file and its previous copy. */
export async function removeStateFile(path: string): Promise<void> {
  await rm(path, { force: true });
  await rm(previousPath(path), { force: true });
}
