// The switch's supervision and stop without a real OVS: stand-in daemons are processes whose
// command line names ovs-vswitchd / ovsdb-server (`exec -a`), with pid files in a run dir.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { OvsDpdk } from '@flowline/ovs';
import { createLogger } from '@flowline/telemetry';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ovsDaemons, stopOvsFromRunDir, stopSwitch, superviseSwitch } from './ovs-switch';
import { isAlive } from './processes';
import { emptyStopReport } from './stop-report';

let runDir: string;
const children: ChildProcess[] = [];
const log = createLogger('node', { write: () => undefined });

beforeEach(() => (runDir = mkdtempSync(join(tmpdir(), 'flnode-ovs-'))));
afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
  rmSync(runDir, { recursive: true, force: true });
});

/** A process whose command line is `<daemon> 600`, with its pid file in the run dir. */
async function fakeDaemon(daemon: string): Promise<number> {
  const child = spawn('bash', ['-c', `exec -a ${daemon} sleep 600`], {
    stdio: 'ignore',
  });
  children.push(child);
  const pid = child.pid!;
  // Until bash has exec'd the daemon's name: before that its own command line already holds
  // the name, and a stop that reads it mid-exec finds no process and leaves the daemon running.
  const execd = (): boolean => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith(`${daemon}\0`);
    } catch {
      return false;
    }
  };
  for (let i = 0; i < 500 && !execd(); i++) await new Promise((r) => setTimeout(r, 10));
  writeFileSync(join(runDir, `${daemon}.pid`), `${pid}\n`);
  return pid;
}

/** Never the node's OVS_NETNS: a node running on this machine has that one. */
const NETNS = 'flowline-test-no-such-netns';
const recorded = () => ({
  runDir,
  netns: NETNS,
  filePrefix: 'x',
  dbSocket: join(runDir, 'db.sock'),
  bridge: 'br-flowline',
});

describe('the OVS daemons of a run dir', () => {
  it('are those whose pid file names a live process that still runs that daemon', async () => {
    const vswitchd = await fakeDaemon('ovs-vswitchd');
    // ovsdb-server's pid file names a process that runs something else (a reused pid).
    writeFileSync(join(runDir, 'ovsdb-server.pid'), `${process.pid}\n`);
    expect(ovsDaemons(runDir)).toEqual([{ pid: vswitchd, marker: 'ovs-vswitchd', log: '' }]);
    writeFileSync(join(runDir, 'ovs-vswitchd.pid'), 'garbage');
    expect(ovsDaemons(runDir)).toEqual([]);
  });

  it('stopOvsFromRunDir stops them', async () => {
    const vswitchd = await fakeDaemon('ovs-vswitchd');
    const db = await fakeDaemon('ovsdb-server');
    await stopOvsFromRunDir(runDir, NETNS);
    expect(isAlive({ pid: vswitchd, marker: 'ovs-vswitchd', log: '' })).toBe(false);
    expect(isAlive({ pid: db, marker: 'ovsdb-server', log: '' })).toBe(false);
  });
});

describe('superviseSwitch', () => {
  const ovs = () => {
    const calls: string[] = [];
    return {
      calls,
      ovs: {
        restartVswitchd: async () => void calls.push('restart'),
      } as OvsDpdk,
    };
  };

  it('leaves a running ovs-vswitchd alone and restarts one that is gone', async () => {
    const { calls, ovs: o } = ovs();
    await fakeDaemon('ovs-vswitchd');
    expect(await superviseSwitch(o, recorded(), log)).toBe(false);
    rmSync(join(runDir, 'ovs-vswitchd.pid'));
    expect(await superviseSwitch(o, recorded(), log)).toBe(true);
    expect(calls).toEqual(['restart']);
  });

  it('does nothing for a switch this process did not start', async () => {
    expect(await superviseSwitch(undefined, recorded(), log)).toBe(false);
    expect(await superviseSwitch(ovs().ovs, undefined, log)).toBe(false);
  });
});

describe('stopSwitch', () => {
  it('stops it through OVS when this process started it, and notes the daemons that stopped', async () => {
    const vswitchd = await fakeDaemon('ovs-vswitchd');
    const stopped: string[] = [];
    const ovs = {
      stop: async () => {
        stopped.push('stop');
        children[0]!.kill('SIGKILL');
        await new Promise((r) => children[0]!.once('exit', r));
      },
    } as unknown as OvsDpdk;
    const report = emptyStopReport();
    await stopSwitch(ovs, recorded(), log, report, NETNS);
    expect(stopped).toEqual(['stop']);
    expect(report.processes).toEqual([{ name: 'ovs-vswitchd', pid: vswitchd }]);
    expect(report.namespaces).toEqual([]);
  });

  it('stops it from the pid files when another process started it', async () => {
    const db = await fakeDaemon('ovsdb-server');
    const report = emptyStopReport();
    await stopSwitch(undefined, recorded(), log, report, NETNS);
    expect(report.processes).toEqual([{ name: 'ovsdb-server', pid: db }]);
    const again = emptyStopReport();
    await stopSwitch(undefined, recorded(), log, again, NETNS);
    expect(again.processes).toEqual([]);
  });
});
