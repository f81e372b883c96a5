// The CNI plugin on the node: its executable where a runtime looks for it (`<state>/cni-bin`,
// named after the network config's `type`) and its resident daemon, as the chart's CNI
// DaemonSet runs it on a node.
import { existsSync, mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT, resolveCommand } from './commands';
import { NodeStepError } from './errors';
import type { NodeContext } from './node-context';
import { isAlive, startProcess } from './processes';
import type { NodeState } from './state';
import { type StopReport, stopAndRecord } from './stop-report';

export const CNI_PATH_SYSTEM = '/usr/lib/cni';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Where the node's CNI executables are. */
export const cniBinDir = (stateDir: string): string => join(stateDir, 'cni-bin');

/** CNI_PATH: the node's plugins, then the system's (the reference plugins). */
export const cniPath = (stateDir: string): string => `${cniBinDir(stateDir)}:${CNI_PATH_SYSTEM}`;

/** The daemon's socket, which the plugin's executable hands each invocation to. */
export const cniDaemonSocket = (stateDir: string): string => join(stateDir, 'cni', 'cni.sock');

/** Links the built plugin (`cni-plugin/dist/flowline` under `root`) into the node's CNI bin. */
export function installCniBin(stateDir: string, root = REPO_ROOT): void {
  const dir = cniBinDir(stateDir);
  mkdirSync(dir, { recursive: true });
  // The executable's name is the network config's `type`, as CNI requires.
  const plugin = join(root, 'cni-plugin', 'dist', 'flowline');
  if (!existsSync(plugin))
    throw new NodeStepError(
      'install CNI plugin',
      'cni-plugin/dist/flowline is not built',
      'run npm run build',
    );
  rmSync(join(dir, 'flowline'), { force: true });
  symlinkSync(plugin, join(dir, 'flowline'));
}

/**
 * The CNI plugin's resident daemon, as the chart's CNI DaemonSet runs it on a node: each CNI
 * exec then costs the native executable's hand-over instead of a Node.js start. Resolves once
 * its socket is there.
 */
export async function startCniDaemon(ctx: NodeContext): Promise<void> {
  const socket = cniDaemonSocket(ctx.paths.stateDir);
  const argv = resolveCommand([
    'flowline-cni',
    'daemon',
    '--socket',
    socket,
    '--metrics-port',
    '0',
  ]);
  ctx.state.cniDaemon = {
    ...startProcess({ argv, log: join(ctx.paths.logs, 'cni-daemon.log') }),
    socket,
  };
  ctx.save();
  const deadline = Date.now() + 10_000;
  while (!existsSync(socket)) {
    if (!isAlive(ctx.state.cniDaemon) || Date.now() > deadline)
      throw new NodeStepError(
        'start CNI daemon',
        isAlive(ctx.state.cniDaemon) ? `no socket ${socket} within 10 s` : 'it exited',
        `read ${ctx.state.cniDaemon.log}`,
      );
    await sleep(50);
  }
}

/** Stops the daemon the state names, if it runs. */
export function stopCniDaemon(state: NodeState, report: StopReport): Promise<void> {
  return stopAndRecord(report, 'cni-daemon', state.cniDaemon);
}
