import { randomUUID } from 'node:crypto';
import { mkdir, open, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { CniCode, CniError } from './errors';

/**
 * This process's incarnation, written beside its pid: a resident daemon restarted in a
 * container often gets its old pid back, and must not wait on locks its dead self left.
 */
const INCARNATION = randomUUID();

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether a lock file's content ("<pid> <incarnation>", or a bare pid) names a live owner. */
export function lockOwnerAlive(content: string): boolean {
  const [pidText, incarnation] = content.trim().split(/\s+/);
  const pid = Number(pidText);
  if (!(pid > 0)) return false;
  if (pid === process.pid) return incarnation === undefined || incarnation === INCARNATION;
  return alive(pid);
}

/**
 * A per-pod lock: an exclusively created file holding the owner's pid and incarnation. A lock
 * whose owner died is taken over. Waiting longer than `timeoutMs` fails with code 11 (try
 * again later).
 */
export async function withLock<T>(
  lockDir: string,
  key: string,
  timeoutMs: number,
  fn: () => Promise<T>,
): Promise<T> {
  await mkdir(lockDir, { recursive: true }).catch((err: Error) => {
    throw new CniError(
      CniCode.IoFailure,
      `cannot create the lock folder ${lockDir} under socketDir: ${err.message}; fix socketDir`,
    );
  });
  const path = join(lockDir, `${key}.lock`);
  const deadline = Date.now() + timeoutMs;
  let delay = 2;
  for (;;) {
    try {
      const fh = await open(path, 'wx');
      await fh.writeFile(`${process.pid} ${INCARNATION}`);
      await fh.close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const content = await readFile(path, 'utf8').catch(() => '');
    const owner = Number(content.trim().split(/\s+/)[0]);
    if (owner > 0 && !lockOwnerAlive(content)) {
      await unlink(path).catch(() => undefined);
      continue;
    }
    if (Date.now() > deadline)
      throw new CniError(
        CniCode.TryAgainLater,
        `another CNI operation on ${key} (pid ${owner || 'unknown'}) holds ${path}; try again later`,
      );
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(50, delay * 2);
  }
  try {
    return await fn();
  } finally {
    await unlink(path).catch(() => undefined);
  }
}
