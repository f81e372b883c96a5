import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nodePaths, readState } from '@flowline/node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runBenchChain } from './bench-chain';
import { runDemo } from './demo';

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

// `flowline demo` and `flowline bench chain` take down the node they brought up; a node agent
// already running in their state dir (the operator's node, or another run's) is not theirs.
describe('demo and bench chain over a state dir whose node agent already runs', () => {
  let stateDir: string;
  let agent: ChildProcess;

  beforeEach(() => {
    stateDir = mkdtempSync(join(tmpdir(), 'fl-cli-owned-'));
    // The running node: a process recorded as its agent (what `down` would stop).
    agent = spawn('/bin/sleep', ['120'], { detached: true, stdio: 'ignore' });
    const paths = nodePaths(stateDir);
    mkdirSync(paths.stateDir, { recursive: true });
    writeFileSync(
      paths.stateFile,
      JSON.stringify({
        version: 1,
        startedAt: new Date().toISOString(),
        agent: { pid: agent.pid, marker: '/bin/sleep' },
        pods: {},
        ready: true,
      }),
    );
  });
  afterEach(() => {
    agent.kill('SIGKILL');
    rmSync(stateDir, { recursive: true, force: true });
  });

  it('demo fails naming the running agent and leaves it and its state alone', async () => {
    await expect(
      runDemo({ stateDir, seconds: 1, json: true, write: () => undefined }),
    ).rejects.toThrow(`a node agent already runs (pid ${agent.pid})`);
    expect(alive(agent.pid!)).toBe(true);
    expect(readState(nodePaths(stateDir).stateFile)?.agent?.pid).toBe(agent.pid);
  });

  it('bench chain likewise', async () => {
    await expect(
      runBenchChain({
        stateDir,
        trialSeconds: 1,
        shortSeconds: [],
        minPps: 1000,
        maxPps: 2000,
        resolution: 0.1,
        maxTrials: 1,
        idleSeconds: 0,
        flows: 1,
        json: true,
        write: () => undefined,
      }),
    ).rejects.toThrow(`a node agent already runs (pid ${agent.pid})`);
    expect(alive(agent.pid!)).toBe(true);
    expect(readState(nodePaths(stateDir).stateFile)?.agent?.pid).toBe(agent.pid);
  });
});
