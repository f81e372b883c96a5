import { spawn } from 'node:child_process';
import { constants, existsSync } from 'node:fs';
import { mkdir, open, stat, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { CniCode, CniError } from './errors';

/** `flowline lock`'s exit code when the lock was not free in time (shim/flowline.c). */
const HELPER_TIMED_OUT = 75;

let helper: string | undefined;

/**
 * The native executable, whose `lock` mode takes flock(2) for us (Node has no flock): beside
 * the running bundle (dist/, the image's /opt/flowline-cni, the host's install folder), or the
 * package's dist/ when this runs from source (tests).
 */
export function lockHelperPath(): string {
  if (helper) return helper;
  const candidates = [join(__dirname, 'flowline'), join(__dirname, '..', 'dist', 'flowline')];
  const found = candidates.find((c) => existsSync(c));
  if (!found)
    throw new CniError(
      CniCode.IoFailure,
      `the pod-lock helper is missing: no executable flowline at ${candidates.join(' or ')}; reinstall the plugin`,
    );
  helper = found;
  return found;
}

/** Runs `flowline lock` on `fd`: true when it holds the lock, false when `timeoutMs` passed. */
function flockFd(fd: number, timeoutMs: number): Promise<boolean> {
  const bin = lockHelperPath();
  return new Promise((resolve, reject) => {
    const child = spawn(bin, ['lock', String(Math.max(0, Math.ceil(timeoutMs)))], {
      stdio: ['ignore', 'ignore', 'pipe', fd],
      // A backstop only: the helper's own timer ends its wait.
      timeout: timeoutMs + 5000,
      killSignal: 'SIGKILL',
    });
    let stderr = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (d: string) => (stderr += d));
    child.on('error', (err) =>
      reject(
        new CniError(
          CniCode.IoFailure,
          `cannot run the pod-lock helper ${bin}: ${err.message}; reinstall the plugin`,
        ),
      ),
    );
    child.on('close', (code, signal) => {
      if (code === 0) resolve(true);
      else if (code === HELPER_TIMED_OUT) resolve(false);
      else
        reject(
          new CniError(
            CniCode.IoFailure,
            `the pod-lock helper ${bin} failed (${signal ? `signal ${signal}` : `exit ${code}`})`,
            stderr.trim() || undefined,
          ),
        );
    });
  });
}

/** The holder's pid as it wrote it (its own pid namespace's number): for messages only. */
async function holderOf(fh: FileHandle): Promise<string> {
  const buf = Buffer.alloc(64);
  const { bytesRead } = await fh.read(buf, 0, buf.length, 0).catch(() => ({ bytesRead: 0 }));
  const pid = buf.subarray(0, bytesRead).toString('utf8').trim();
  return /^\d+$/.test(pid) ? `pid ${pid} in its pid namespace` : 'unknown';
}

/**
 * A per-pod lock: flock(2) LOCK_EX on `<lockDir>/<key>.lock`. The lock belongs to this process's
 * open file description, so the kernel releases it when the holder closes it or dies (SIGKILL
 * included); nothing about it depends on pids, which the daemon (in a container) and the
 * in-process plugin (on the host) number in different pid namespaces. Waiting is the kernel's
 * queue, not polling. The holder unlinks the file before it lets go, and a waiter that then
 * finds another file at the path (or none) locks again, so lock files do not pile up and two
 * holders never hold two different files of one key. Waiting longer than `timeoutMs` fails
 * with code 11 (try again later).
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
  let fh: FileHandle;
  for (;;) {
    fh = await open(
      path,
      // libuv adds O_CLOEXEC: a plugin spawned meanwhile (IPAM) does not inherit the lock.
      constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW,
      0o600,
    ).catch((err: Error) => {
      throw new CniError(CniCode.IoFailure, `cannot open the pod lock ${path}: ${err.message}`);
    });
    let locked: boolean;
    try {
      locked = await flockFd(fh.fd, deadline - Date.now());
    } catch (err) {
      await fh.close();
      throw err;
    }
    if (!locked) {
      const holder = await holderOf(fh);
      await fh.close();
      throw new CniError(
        CniCode.TryAgainLater,
        `another CNI operation on ${key} (${holder}) holds ${path}; try again later`,
      );
    }
    // The holder we waited for may have unlinked this file: the lock is the file at the path.
    const [mine, current] = await Promise.all([fh.stat(), stat(path).catch(() => undefined)]);
    if (current && current.ino === mine.ino && current.dev === mine.dev) break;
    await fh.close();
  }
  try {
    await fh.truncate(0);
    await fh.write(`${process.pid}\n`, 0);
    return await fn();
  } finally {
    await unlink(path).catch(() => undefined);
    await fh.close();
  }
}
