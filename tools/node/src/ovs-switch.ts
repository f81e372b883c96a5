// The node's switch: a private OVS-DPDK (its own run dir and netns, bridge br-flowline), started
// as the chart's OVS DaemonSet runs it on a node, restarted when ovs-vswitchd dies, and stopped
// also when the agent that started it is gone (from the pid files in its run dir).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startOvsDpdk, type OvsDpdk } from '@flowline/ovs';
import type { Logger } from '@flowline/telemetry';
import { NodeStepError } from './errors';
import { deleteNetns, tryIp } from './netns';
import type { NodeContext } from './node-context';
import { isAlive, stopProcess } from './processes';
import type { NodeState, ProcessRecord } from './state';
import { type StopReport, netnsExists } from './stop-report';

export const OVS_NETNS = 'flowline-node-ovs';
/** The switch's EAL --file-prefix (its hugepage files start with it). */
export const OVS_FILE_PREFIX = 'flowline-node-ovs';

/** Starts OVS-DPDK with the node's bridge; recorded in the state before it starts. */
export async function startSwitch(ctx: NodeContext): Promise<OvsDpdk> {
  const p = ctx.paths;
  // A netns of an earlier, crashed run would make startOvsDpdk adopt it; start clean.
  tryIp(['netns', 'del', OVS_NETNS]);
  ctx.state.ovs = {
    runDir: p.ovsRunDir,
    netns: OVS_NETNS,
    filePrefix: OVS_FILE_PREFIX,
    dbSocket: join(p.ovsRunDir, 'db.sock'),
    bridge: ctx.config.bridge,
  };
  ctx.save();
  let ovs: OvsDpdk;
  try {
    ovs = await startOvsDpdk({
      runDir: p.ovsRunDir,
      netns: OVS_NETNS,
      bridge: ctx.config.bridge,
      socketMemMb: ctx.config.ovs.socketMemMb,
      pmdCpuMask: ctx.config.ovs.pmdCpuMask,
      pmdMaxSleepUs: ctx.config.ovs.pmdMaxSleepUs,
      filePrefix: OVS_FILE_PREFIX,
      maxLifetimeSec: 0,
      logger: ctx.log.child({ part: 'ovs' }),
    });
  } catch (err) {
    throw new NodeStepError(
      'start OVS-DPDK',
      (err as Error).message,
      'read the ovs-vswitchd log in ' + p.ovsRunDir,
      { cause: err },
    );
  }
  ctx.log.info('switch up', {
    bridge: ctx.config.bridge,
    dbSocket: ovs.dbSocket,
  });
  return ovs;
}

/**
 * Restarts ovs-vswitchd when it died, as kubelet restarts the switch's pod: vhost-user
 * clients reconnect by themselves, and the chain controller pushes its flows again.
 */
export async function superviseSwitch(
  ovs: OvsDpdk | undefined,
  recorded: NodeState['ovs'],
  log: Logger,
): Promise<boolean> {
  if (!ovs || !recorded) return false;
  let pid = 0;
  try {
    pid = Number(readFileSync(join(recorded.runDir, 'ovs-vswitchd.pid'), 'utf8').trim());
  } catch {
    // no pid file: it died before writing it, or was stopped
  }
  if (pid > 0 && isAlive({ pid, marker: 'ovs-vswitchd', log: '' })) return false;
  log.warn('ovs-vswitchd is gone; restarting it', { pid });
  await ovs.restartVswitchd();
  return true;
}

/**
 * Stops the switch: through `ovs` when this process started it, else from the pid files the
 * state names; deletes its netns (`netns`: OVS_NETNS, another name only in tests). Notes the
 * daemons and the netns that were there.
 */
export async function stopSwitch(
  ovs: OvsDpdk | undefined,
  recorded: NodeState['ovs'],
  log: Logger,
  report: StopReport,
  netns = OVS_NETNS,
): Promise<void> {
  const ovsRunning = recorded ? ovsDaemons(recorded.runDir) : [];
  const ovsNetns = netnsExists(netns);
  if (ovs) await ovs.stop().catch((err: unknown) => log.warn('OVS stop failed', { err }));
  else if (recorded) await stopOvsFromRunDir(recorded.runDir, recorded.netns);
  for (const d of ovsRunning)
    if (!isAlive(d)) report.processes.push({ name: d.marker, pid: d.pid });
  if (ovsNetns && !netnsExists(netns)) report.namespaces.push(netns);
  deleteNetns(netns, report);
}

/** The OVS daemons the run dir's pid files name that still run. */
export function ovsDaemons(runDir: string): ProcessRecord[] {
  const running: ProcessRecord[] = [];
  for (const daemon of ['ovs-vswitchd', 'ovsdb-server']) {
    let pid: number;
    try {
      pid = Number(readFileSync(join(runDir, `${daemon}.pid`), 'utf8').trim());
    } catch {
      continue;
    }
    const rec = { pid, marker: daemon, log: '' };
    if (Number.isInteger(pid) && pid > 0 && isAlive(rec)) running.push(rec);
  }
  return running;
}

/** Stops OVS daemons from their pid files (the agent that started them is gone). */
export async function stopOvsFromRunDir(runDir: string, netns: string): Promise<void> {
  for (const rec of ovsDaemons(runDir)) await stopProcess(rec, 5000);
  tryIp(['netns', 'del', netns]);
}
