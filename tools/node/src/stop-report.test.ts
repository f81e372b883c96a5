// The stop report the agent leaves for `flowline down`: written and taken once, a garbled or
// wrongly shaped one is ignored and said in the log, and a process is recorded only when it was
// running and was stopped.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '@flowline/telemetry';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isAlive } from './processes';
import {
  type StopReport,
  emptyStopReport,
  isEmptyStopReport,
  mergeStopReport,
  stopAndRecord,
  stopReportFile,
  takeStopReport,
  writeStopReport,
} from './stop-report';

let dir: string;
let logs: Record<string, unknown>[];
const log = () =>
  createLogger('node', {
    write: (line) => logs.push(JSON.parse(line) as Record<string, unknown>),
  });

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'flnode-stop-'));
  logs = [];
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const sample = (): StopReport => ({
  processes: [
    { name: 'pod default/fw', pid: 4242 },
    { name: 'ovs-vswitchd', pid: 77 },
  ],
  ports: [{ pod: 'default/fw', interface: 'net1' }],
  namespaces: ['flpod-default-fw'],
  hugepageFiles: 3,
});

describe('stop report', () => {
  it('is taken once: the agent writes it, down reads and removes it', () => {
    writeStopReport(dir, sample());
    expect(takeStopReport(dir, log())).toEqual(sample());
    expect(existsSync(stopReportFile(dir))).toBe(false);
    expect(takeStopReport(dir, log())).toBeUndefined();
  });

  it('a garbled or wrongly shaped report is ignored with a warning naming the file', () => {
    for (const bad of ['{"processes": [', JSON.stringify({ ...sample(), hugepageFiles: 'x' })]) {
      writeFileSync(stopReportFile(dir), bad);
      expect(takeStopReport(dir, log())).toBeUndefined();
      expect(existsSync(stopReportFile(dir))).toBe(false);
    }
    const warned = logs.filter((l) => l.level === 'warn');
    expect(warned).toHaveLength(2);
    expect(warned[0]).toMatchObject({ file: stopReportFile(dir) });
    expect(String(warned[1]!.error)).toMatch(/not a stop report/);
  });

  it('merges the sweep into the agent report; empty only when nothing was done', () => {
    expect(isEmptyStopReport(emptyStopReport())).toBe(true);
    const merged = mergeStopReport(sample(), {
      processes: [{ name: 'node agent', pid: 1 }],
      ports: [],
      namespaces: ['flowline-node-ovs'],
      hugepageFiles: 2,
    });
    expect(merged.processes.map((p) => p.name)).toEqual([
      'pod default/fw',
      'ovs-vswitchd',
      'node agent',
    ]);
    expect(merged.namespaces).toEqual(['flpod-default-fw', 'flowline-node-ovs']);
    expect(merged.hugepageFiles).toBe(5);
    expect(isEmptyStopReport({ ...emptyStopReport(), hugepageFiles: 1 })).toBe(false);
  });

  it('records a process only when it was running, and stops it', async () => {
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    const rec = { pid: child.pid!, marker: 'sleep', log: '' };
    expect(isAlive(rec)).toBe(true);
    const report = emptyStopReport();
    await stopAndRecord(report, 'sleeper', rec, 2000);
    expect(report.processes).toEqual([{ name: 'sleeper', pid: child.pid }]);
    // Its parent (this test) reaps it; a zombie counts as gone.
    expect(isAlive(rec)).toBe(false);
    await stopAndRecord(report, 'sleeper again', rec, 2000);
    await stopAndRecord(report, 'never started', undefined);
    expect(report.processes).toHaveLength(1);
  });
});
