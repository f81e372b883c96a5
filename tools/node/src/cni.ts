// Runs a CNI plugin exactly as a container runtime does: the command and pod identity in the
// environment, the network config on stdin, the result or the spec's error JSON on stdout.
import { spawn } from 'node:child_process';
import { CniExecError } from './errors';

export interface CniInvocation {
  command: 'ADD' | 'DEL' | 'CHECK' | 'STATUS' | 'GC' | 'VERSION';
  plugin: string;
  cniPath: string;
  netconf: Record<string, unknown>;
  containerId?: string;
  netns?: string;
  ifname?: string;
  /** CNI_ARGS pairs, e.g. K8S_POD_NAMESPACE and K8S_POD_NAME as kubelet's runtimes pass them. */
  args?: Record<string, string>;
  /** More environment for the plugin (a runtime's own, e.g. FLOWLINE_CNI_SOCKET). */
  env?: Record<string, string>;
  timeoutMs?: number;
}

export async function execCni(inv: CniInvocation): Promise<Record<string, unknown>> {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    ...inv.env,
    CNI_COMMAND: inv.command,
    CNI_PATH: inv.cniPath,
  };
  if (inv.containerId) env.CNI_CONTAINERID = inv.containerId;
  if (inv.netns) env.CNI_NETNS = inv.netns;
  if (inv.ifname) env.CNI_IFNAME = inv.ifname;
  if (inv.args)
    env.CNI_ARGS = Object.entries(inv.args)
      .map(([k, v]) => `${k}=${v}`)
      .join(';');
  const child = spawn(inv.plugin, [], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.end(JSON.stringify(inv.netconf));
  const timer = setTimeout(() => child.kill('SIGKILL'), inv.timeoutMs ?? 30_000);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (c) => resolve(c));
  }).finally(() => clearTimeout(timer));
  if (code === 0) {
    if (stdout.trim() === '') return {};
    try {
      return JSON.parse(stdout) as Record<string, unknown>;
    } catch {
      throw new CniExecError(
        inv.command,
        999,
        `plugin printed a result that is not JSON: ${stdout.slice(0, 200)}`,
      );
    }
  }
  let error: { code?: unknown; msg?: unknown; details?: unknown } = {};
  try {
    error = JSON.parse(stdout) as typeof error;
  } catch {
    // not the spec's error JSON: report what we have
  }
  throw new CniExecError(
    inv.command,
    typeof error.code === 'number' ? error.code : (code ?? -1),
    typeof error.msg === 'string'
      ? error.msg
      : `exit ${code}: ${stderr.trim().slice(0, 300) || stdout.slice(0, 300)}`,
    typeof error.details === 'string' ? error.details : undefined,
  );
}
