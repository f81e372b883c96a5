import { readFileSync, rmSync, symlinkSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { podMarker } from './pod-process';
import { isAlive, procStartTime, startProcess, stopProcess } from './processes';
import type { ProcessRecord } from './state';

let dir: string;
const started: ProcessRecord[] = [];
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'flnode-processes-'))));
afterEach(async () => {
  for (const rec of started.splice(0)) await stopProcess(rec, 2000);
  rmSync(dir, { recursive: true, force: true });
});

/** A `sleep` started as the node starts its processes (no netns). */
function sleeper(): ProcessRecord {
  const rec = startProcess({ argv: ['/bin/sleep', '30'], log: join(dir, 'sleep.log') });
  started.push(rec);
  return rec;
}

describe('isAlive: the process recorded, never another on its pid', () => {
  it('records the start time of the process (/proc/<pid>/stat field 22) and a path of its command', () => {
    const rec = sleeper();
    const stat = readFileSync(`/proc/${rec.pid}/stat`, 'utf8');
    expect(rec.startTime).toBe(Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]));
    expect(rec.startTime).toBe(procStartTime(rec.pid));
    expect(rec.marker).toBe('/bin/sleep');
    expect(isAlive(rec)).toBe(true);
  });

  it('is false for the same pid and command line started at another time (a reused pid)', () => {
    const rec = sleeper();
    expect(isAlive({ ...rec, startTime: rec.startTime! - 1 })).toBe(false);
    // a record from before start times were kept: the command line alone
    const { startTime: _, ...old } = rec;
    expect(isAlive(old)).toBe(true);
  });

  it('takes the marker as a whole entry of the command line, not part of one', () => {
    const rec = sleeper();
    expect(isAlive({ ...rec, marker: '30' })).toBe(true);
    expect(isAlive({ ...rec, marker: 'sleep' })).toBe(true); // a bare name: the path's last part
    for (const marker of ['3', '0', '/bin/sl', 'bin/sleep', 'eep', ''])
      expect(isAlive({ ...rec, marker })).toBe(false);
  });

  it("a daemon named by a bare name is found when its executable's name starts with it (Debian's ovs-vswitchd-dpdk)", () => {
    const exe = join(dir, 'ovs-vswitchd-dpdk');
    symlinkSync('/bin/sleep', exe);
    const rec = startProcess({ argv: [exe, '30'], log: join(dir, 'daemon.log') });
    started.push(rec);
    // as ovs-switch.ts checks the pid in ovs-vswitchd.pid
    expect(isAlive({ pid: rec.pid, marker: 'ovs-vswitchd', log: '' })).toBe(true);
    expect(isAlive({ pid: rec.pid, marker: 'ovsdb-server', log: '' })).toBe(false);
  });

  it("a pod's marker is its script, or its command's path (not a first argument such as -l)", () => {
    expect(podMarker(['/usr/bin/foo', '-l'])).toBe('/usr/bin/foo');
    expect(podMarker([process.execPath, '/repo/services/firewall/dist/main.js', '-l'])).toBe(
      '/repo/services/firewall/dist/main.js',
    );
  });
});
