// What the CLI does to a local node: start the agent in the background and wait until it is
// ready; stop it and make sure nothing is left (also when the agent crashed); read its status;
// hand it pod manifests.
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { writeStateFileSync } from '@flowline/state-file';
import { type Logger, createLogger } from '@flowline/telemetry';
import { REPO_ROOT } from './commands';
import { type NodeConfig, type NodePaths, nodePaths, parseNodeConfig } from './config';
import { NodeAlreadyUpError, NodeStepError } from './errors';
import { parsePods, podKey } from './manifest';
import { resolveManifestFiles } from './pod-files';
import { isAlive, startProcess, stopProcess, waitForExit } from './processes';
import { NodeRuntime } from './runtime';
import { type NodeState, readState } from './state';
import { type StopReport, emptyStopReport, mergeStopReport, takeStopReport } from './stop-report';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface UpOptions {
  stateDir: string;
  configFile?: string;
  timeoutMs?: number;
  /** Where a state file found unreadable is reported (default: JSON lines on stderr). */
  log?: Logger;
}

const defaultLog = (): Logger => createLogger('node');

/** Starts the node agent detached and waits until its state says ready (or it died). */
export async function nodeUp(opts: UpOptions): Promise<NodeState> {
  const paths = nodePaths(opts.stateDir);
  const log = opts.log ?? defaultLog();
  const existing = readState(paths.stateFile, log);
  if (existing?.agent && isAlive(existing.agent)) throw new NodeAlreadyUpError(existing.agent.pid);
  if (existing) await nodeDown({ stateDir: opts.stateDir, log });
  mkdirSync(paths.logs, { recursive: true });
  const agentLog = join(paths.logs, 'agent.log');
  const agentScript = join(REPO_ROOT, 'tools', 'node', 'dist', 'main.js');
  const rec = startProcess({
    argv: [
      process.execPath,
      agentScript,
      'agent',
      '--state-dir',
      opts.stateDir,
      ...(opts.configFile ? ['--config', opts.configFile] : []),
    ],
    log: agentLog,
    marker: agentScript,
  });
  const deadline = Date.now() + (opts.timeoutMs ?? 90_000);
  for (;;) {
    const state = readState(paths.stateFile, log);
    if (state?.ready && state.agent?.pid === rec.pid) return state;
    if (!isAlive(rec))
      throw new NodeStepError('up', 'the node agent exited while starting', `read ${agentLog}`);
    if (Date.now() > deadline) {
      await stopProcess(rec);
      throw new NodeStepError('up', 'the node was not ready in time', `read ${agentLog}`);
    }
    await sleep(200);
  }
}

/**
 * Stops the agent (which tears down in order) and then sweeps whatever its state file still
 * names, so a second `down`, or a `down` after the agent was SIGKILLed, leaves nothing behind.
 * `stopped` is everything that was running or present and no longer is: what the agent stopped
 * (its own report), the agent itself, and what the sweep found; empty when nothing was up.
 */
export async function nodeDown(opts: {
  stateDir: string;
  config?: NodeConfig;
  log?: Logger;
}): Promise<{ swept: boolean; stopped: StopReport }> {
  const paths = nodePaths(opts.stateDir);
  const logger = opts.log ?? defaultLog();
  const stopped = emptyStopReport();
  // A report left by an earlier agent is not about this stop.
  takeStopReport(paths.stateDir, logger);
  const state = readState(paths.stateFile, logger);
  if (state?.agent && isAlive(state.agent)) {
    await stopProcess(state.agent, 60_000);
    await waitForExit(state.agent, 5000);
    stopped.processes.push({ name: 'node agent', pid: state.agent.pid });
    const byAgent = takeStopReport(paths.stateDir, logger);
    if (byAgent) mergeStopReport(stopped, byAgent);
  }
  const left = readState(paths.stateFile, logger);
  const runtime = new NodeRuntime(
    opts.config ?? sweepConfig(opts.stateDir, left ?? state),
    paths,
    logger,
  );
  // Always run the sweep: it is idempotent and catches leftovers of a crashed agent.
  if (left) runtime.state = left;
  mergeStopReport(stopped, await runtime.teardown());
  rmSync(paths.manifests, { recursive: true, force: true });
  return { swept: left !== undefined, stopped };
}

/**
 * The config `down` sweeps with when it has none: the defaults, with the hugepages dir the node
 * was brought up with (recorded in its state), so its pods' files are found where they are.
 */
export function sweepConfig(stateDir: string, state: NodeState | undefined): NodeConfig {
  return parseNodeConfig({
    stateDir,
    // not a path (a hand-edited state): the default, as `down` must still run
    ...(state?.hugepagesDir?.startsWith('/') ? { hugepagesDir: state.hugepagesDir } : {}),
  });
}

export interface PodStatus {
  key: string;
  phase: string;
  pid?: number;
  alive: boolean;
  restarts: number;
  grpcAddress: string;
  interfaces: string[];
  devices: Record<string, string[]>;
  message?: string;
}

export interface NodeStatus {
  up: boolean;
  ready: boolean;
  stateDir: string;
  agentPid?: number;
  controller?: { address: string; alive: boolean };
  devicePlugin?: { alive: boolean };
  cniDaemon?: { socket: string; alive: boolean };
  ovs?: { dbSocket: string; bridge: string };
  pods: PodStatus[];
  problems: Record<string, string>;
}

export function nodeStatus(stateDir: string, log: Logger = defaultLog()): NodeStatus {
  const paths = nodePaths(stateDir);
  const state = readState(paths.stateFile, log);
  if (!state) return { up: false, ready: false, stateDir, pods: [], problems: {} };
  return {
    up: isAlive(state.agent),
    ready: state.ready && isAlive(state.agent),
    stateDir,
    ...(state.agent ? { agentPid: state.agent.pid } : {}),
    ...(state.controller
      ? { controller: { address: state.controller.grpcAddress, alive: isAlive(state.controller) } }
      : {}),
    ...(state.devicePlugin ? { devicePlugin: { alive: isAlive(state.devicePlugin) } } : {}),
    ...(state.cniDaemon
      ? { cniDaemon: { socket: state.cniDaemon.socket, alive: isAlive(state.cniDaemon) } }
      : {}),
    ...(state.ovs ? { ovs: { dbSocket: state.ovs.dbSocket, bridge: state.ovs.bridge } } : {}),
    pods: Object.values(state.pods).map((p) => ({
      key: p.key,
      phase: p.phase,
      ...(p.process ? { pid: p.process.pid } : {}),
      alive: isAlive(p.process),
      restarts: p.restarts,
      grpcAddress: p.grpcAddress,
      interfaces: p.attachments.map((a) => a.ifname),
      devices: p.devices,
      ...(p.message ? { message: p.message } : {}),
    })),
    problems: state.problems ?? {},
  };
}

/**
 * Puts manifests in the agent's folder (validated first, so a bad file is refused here with the
 * field named) and waits until each pod runs, or reports why it does not.
 */
export async function applyManifests(
  stateDir: string,
  files: string[],
  opts: { timeoutMs?: number } = {},
): Promise<PodStatus[]> {
  const paths: NodePaths = nodePaths(stateDir);
  const log = defaultLog();
  // The files first: what is wrong with them is worth knowing before a node runs.
  const keys: string[] = [];
  const resolved: string[] = [];
  for (const f of files) {
    let text: string;
    try {
      text = readFileSync(f, 'utf8');
    } catch (err) {
      throw new NodeStepError('apply', `cannot read ${f}: ${(err as Error).message}`);
    }
    for (const p of parsePods(text, f)) keys.push(podKey(p));
    resolved.push(resolveManifestFiles(text, f));
  }
  const state = readState(paths.stateFile, log);
  if (!state || !isAlive(state.agent))
    throw new NodeStepError(
      'apply',
      `no node runs (state dir ${stateDir})`,
      'run flowline up first, e.g. npm run flowline -- up --config examples/node.yaml',
    );
  mkdirSync(paths.manifests, { recursive: true });
  const handedOver = Date.now();
  // Whole or not at all: the agent scans the folder while this writes.
  files.forEach((f, i) =>
    writeStateFileSync(join(paths.manifests, basename(f)), resolved[i]!, { keepPrevious: false }),
  );
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  for (;;) {
    const status = nodeStatus(stateDir, log);
    const pods = keys.map((k) => status.pods.find((p) => p.key === k));
    // Only problems the agent saw after these manifests were handed over count.
    const at = readState(paths.stateFile, log)?.problemsAt ?? {};
    const failed = keys.find(
      (k) => status.problems[`pod:${k}`] && (at[`pod:${k}`] ?? 0) >= handedOver,
    );
    if (failed)
      throw new NodeStepError(
        'apply',
        `pod ${failed} did not start: ${status.problems[`pod:${failed}`]}`,
      );
    if (pods.every((p) => p?.phase === 'Running' && p.alive)) return pods as PodStatus[];
    if (Date.now() > deadline)
      throw new NodeStepError(
        'apply',
        `pods not running in time: ${keys.filter((_, i) => pods[i]?.phase !== 'Running').join(', ')}`,
        `read the logs in ${paths.logs}`,
      );
    await sleep(200);
  }
}

/** Removes manifests (by file name as applied, or every one holding the pod). */
export function deleteManifests(stateDir: string, names: string[]): string[] {
  const paths = nodePaths(stateDir);
  const removed: string[] = [];
  if (!existsSync(paths.manifests)) return removed;
  for (const f of readdirSync(paths.manifests)) {
    if (names.includes(f) || names.includes(basename(f, '.yaml'))) {
      rmSync(join(paths.manifests, f), { force: true });
      removed.push(f);
    }
  }
  return removed;
}
