import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from './paths';

/** The OVS container's start script (the chart's ovs-dpdk DaemonSet runs it). */
export const OVS_SCRIPT = join(repoRoot, 'docker', 'ovs-dpdk', 'start.sh');

/** start.sh running in a network namespace (a node), in a process group of its own. */
export interface OvsScript {
  process: ChildProcess;
  /** What it printed so far (stdout and stderr). */
  log(): string;
  /** SIGTERM to its process group; resolves when it exited (or after 10 s). */
  stop(): Promise<void>;
}

/** Runs start.sh in `netns` with exactly `env`, as the DaemonSet's container would. */
export function startOvsScript(netns: string, env: Record<string, string>): OvsScript {
  const p = spawn(
    'ip',
    [
      'netns',
      'exec',
      netns,
      'env',
      ...Object.entries(env).map(([k, v]) => `${k}=${v}`),
      'bash',
      OVS_SCRIPT,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], detached: true },
  );
  let out = '';
  p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  p.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  return {
    process: p,
    log: () => out,
    async stop() {
      if (p.exitCode !== null || p.signalCode !== null) return;
      const exited = new Promise((r) => p.once('exit', r));
      try {
        process.kill(-p.pid!, 'SIGTERM');
      } catch {
        /* gone */
      }
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    },
  };
}
