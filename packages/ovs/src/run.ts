import { execFile } from 'node:child_process';
import { OvsCommandError } from './errors';

/** Runs a command with a time limit; throws OvsCommandError with its stderr when it fails. */
export function run(
  command: string,
  args: readonly string[],
  options: { timeoutMs?: number; env?: NodeJS.ProcessEnv; what?: string } = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      command,
      args,
      {
        timeout: options.timeoutMs ?? 15_000,
        env: options.env ?? process.env,
        maxBuffer: 64 * 1024 * 1024,
      },
      (err, stdout, stderr) => {
        if (err) {
          const code = typeof err.code === 'number' ? err.code : null;
          reject(
            new OvsCommandError(
              options.what ?? `${command} failed`,
              [command, ...args],
              code,
              stderr || err.message,
            ),
          );
        } else resolve(stdout);
      },
    );
  });
}
