/**
 * Resolves once `check` holds, polling it; fails naming `what` after `timeoutMs`. For tests to
 * wait on the event they need (a log line, a file, a process state) instead of a fixed sleep that
 * passes by luck or fails by slowness.
 */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
