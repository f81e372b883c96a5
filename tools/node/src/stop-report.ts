// What a teardown stopped and removed, so `flowline down` can say it: the processes that were
// running, the switch ports of pod interfaces, the network namespaces and the hugepage files.
// The agent tears down in its own process on SIGTERM and writes its report to the state dir
// (through @flowline/state-file, contract 7 of docs/architecture.md); `nodeDown` reads it and adds what its own sweep
// found, so the report is whole whether the agent, the sweep or both did the stopping.
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { readStateFileSync, writeStateFileSync } from '@flowline/state-file';
import type { Logger } from '@flowline/telemetry';
import { isAlive, stopProcess } from './processes';
import type { ProcessRecord } from './state';

export interface StoppedProcess {
  /** What it was: `chain-controller`, `ovs-vswitchd`, `pod default/fw`, ... */
  name: string;
  pid: number;
}

export interface RemovedPort {
  /** The pod and interface the port served (`default/fw`, `net1`). */
  pod: string;
  interface: string;
}

export interface StopReport {
  /** Processes that were running and were stopped. */
  processes: StoppedProcess[];
  /** Pod interfaces whose switch port and socket were removed (CNI DEL). */
  ports: RemovedPort[];
  /** Network namespaces that existed and were deleted. */
  namespaces: string[];
  /** Hugepage files removed (a DPDK process that was killed leaves them). */
  hugepageFiles: number;
}

export const emptyStopReport = (): StopReport => ({
  processes: [],
  ports: [],
  namespaces: [],
  hugepageFiles: 0,
});

export const isEmptyStopReport = (r: StopReport): boolean =>
  r.processes.length === 0 &&
  r.ports.length === 0 &&
  r.namespaces.length === 0 &&
  r.hugepageFiles === 0;

/** Adds `more` into `into` (the agent's report, then the sweep's). */
export function mergeStopReport(into: StopReport, more: StopReport): StopReport {
  into.processes.push(...more.processes);
  into.ports.push(...more.ports);
  into.namespaces.push(...more.namespaces);
  into.hugepageFiles += more.hugepageFiles;
  return into;
}

/** Where the agent leaves its report for `nodeDown` (the state dir is the operator's, root only). */
export const stopReportFile = (stateDir: string): string => join(stateDir, 'stopped.json');

export function writeStopReport(stateDir: string, report: StopReport): void {
  writeStateFileSync(stopReportFile(stateDir), `${JSON.stringify(report, null, 2)}\n`, {
    mode: 0o600,
    keepPrevious: false,
  });
}

function isStopReport(v: unknown): v is StopReport {
  const r = v as Partial<StopReport> | null;
  return (
    typeof r === 'object' &&
    r !== null &&
    Array.isArray(r.processes) &&
    r.processes.every((p) => typeof p?.name === 'string' && Number.isInteger(p?.pid)) &&
    Array.isArray(r.ports) &&
    r.ports.every((p) => typeof p?.pod === 'string' && typeof p?.interface === 'string') &&
    Array.isArray(r.namespaces) &&
    r.namespaces.every((n) => typeof n === 'string') &&
    Number.isInteger(r.hugepageFiles)
  );
}

/** Reads and removes the agent's report; undefined when there is none (or it is unusable). */
export function takeStopReport(stateDir: string, log: Logger): StopReport | undefined {
  const file = stopReportFile(stateDir);
  if (!existsSync(file)) return undefined;
  try {
    const read = readStateFileSync(file, (text) => {
      const value: unknown = JSON.parse(text);
      if (!isStopReport(value)) throw new Error('not a stop report');
      return value;
    });
    for (const p of read.problems)
      log.warn('the node agent left an unusable stop report; ignored', { ...p });
    return read.value;
  } finally {
    rmSync(file, { force: true });
    rmSync(`${file}.prev`, { force: true });
  }
}

export const netnsExists = (name: string): boolean => existsSync(join('/run/netns', name));

/** Stops a recorded process and notes it when it was running. */
export async function stopAndRecord(
  report: StopReport,
  name: string,
  rec: ProcessRecord | undefined,
  graceMs?: number,
): Promise<void> {
  if (!rec || !isAlive(rec)) return;
  await stopProcess(rec, graceMs);
  report.processes.push({ name, pid: rec.pid });
}
