import { mkdir, open, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { CniCode, CniError } from './errors';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * A per-pod lock: an exclusively created file holding the owner's pid. A lock whose owner died
 * is taken over. Waiting longer than `timeoutMs` fails with code 11 (try again later).
 */
export async function withLock<T>(lockDir: string, key: string, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  await mkdir(lockDir, { recursive: true }).catch((err: Error) => {
    throw new CniError(CniCode.IoFailure, `cannot create the lock folder ${lockDir} under socketDir: ${err.message}; fix socketDir`);
  });
  const path = join(lockDir, `${key}.lock`);
  const deadline = Date.now() + timeoutMs;
  let delay = 2;
  for (;;) {
    try {
      const fh = await open(path, 'wx');
      await fh.writeFile(String(process.pid));
      await fh.close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const owner = Number((await readFile(path, 'utf8').catch(() => '')).trim());
    if (owner > 0 && !alive(owner)) {
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
