import { spawn } from 'node:child_process';
import { join } from 'node:path';

/** The native executable, as a runtime finds it in its CNI bin dir. */
export const PLUGIN = join(__dirname, '..', '..', 'dist', 'flowline');
/** The bundled plugin (one invocation in-process, or `daemon`), beside it. */
export const IN_PROCESS = join(__dirname, '..', '..', 'dist', 'flowline-cni');

export interface PluginEnv {
  CNI_COMMAND?: string;
  CNI_CONTAINERID?: string;
  CNI_NETNS?: string;
  CNI_IFNAME?: string;
  CNI_ARGS?: string;
  CNI_PATH?: string;
  /** Where the executable finds the daemon (nothing listening there: it runs in-process). */
  FLOWLINE_CNI_SOCKET?: string;
  /** "1": fail rather than run in-process when no daemon answers. */
  FLOWLINE_CNI_NO_FALLBACK?: string;
}

export interface PluginRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** stdout parsed, when it is JSON. */
  json: Record<string, unknown> | undefined;
}

/**
 * Runs the plugin exactly as a container runtime does: a fresh environment with only the CNI_*
 * variables (plus PATH), the config on stdin, the result or error JSON on stdout, exit code.
 */
export function runPlugin(env: PluginEnv, stdin: unknown, plugin = PLUGIN): Promise<PluginRun> {
  return runProcess(
    plugin,
    [],
    { ...env },
    typeof stdin === 'string' ? stdin : JSON.stringify(stdin),
  );
}

/** Runs an executable with only PATH and `env` set; stdout is parsed when it is JSON. */
export function runProcess(
  file: string,
  args: string[],
  env: Record<string, string | undefined>,
  stdin = '',
): Promise<PluginRun> {
  return new Promise((resolve, reject) => {
    const childEnv: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
    for (const [k, v] of Object.entries(env)) if (v !== undefined) childEnv[k] = v;
    const child = spawn(file, args, {
      env: childEnv,
      stdio: ['pipe', 'pipe', 'pipe'],
      timeout: 120_000,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      let json: Record<string, unknown> | undefined;
      try {
        json = stdout.trim() ? (JSON.parse(stdout) as Record<string, unknown>) : undefined;
      } catch {
        json = undefined;
      }
      resolve({ code, stdout, stderr, json });
    });
    child.stdin.end(stdin);
  });
}
