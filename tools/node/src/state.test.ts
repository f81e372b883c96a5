// The node's state file: written crash-safely, and a garbled one falls back to the previous
// copy, which is put back in place and said in the log.
import { createLogger } from '@flowline/telemetry';
import {
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { nodeStatus } from './control';
import { type NodeState, emptyState, readState, removeState, writeState } from './state';

interface Logged {
  level: string;
  component: string;
  msg: string;
  [field: string]: unknown;
}

let dir: string;
let file: string;
let logs: Logged[];
const log = () => createLogger('node', { write: (line) => logs.push(JSON.parse(line) as Logged) });

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'flnode-state-'));
  file = join(dir, 'state.json');
  logs = [];
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** Two steps of a node: the agent, then a pod whose process it started. */
function twoSteps(): { first: NodeState; second: NodeState } {
  const first = emptyState();
  first.agent = { pid: 4242, marker: 'main.js', log: '/tmp/agent.log' };
  writeState(file, first);
  const second: NodeState = structuredClone(first);
  second.devicePlugin = { pid: 4343, marker: 'cli.js', log: '/tmp/dp.log' };
  writeState(file, second);
  return { first, second };
}

const garblings: [string, (text: string) => string][] = [
  ['truncated', (text) => text.slice(0, Math.floor(text.length / 2))],
  ['emptied', () => ''],
  ['garbled', (text) => `\u0000\u0000${text.slice(7)}`],
  ['of another version', (text) => text.replace('"version": 1', '"version": 7')],
];

describe('node state file', () => {
  it('is replaced by a new file on every write, never written in place, and leaves no temp file', () => {
    writeState(file, emptyState());
    const ino = statSync(file).ino;
    writeState(file, emptyState());
    expect(statSync(file).ino).not.toBe(ino);
    expect(readdirSync(dir).sort()).toEqual(['state.json', 'state.json.prev']);
    expect(statSync(file).mode & 0o777).toBe(0o644);
  });

  it.each(garblings)(
    '%s: the previous copy is used, put back, and the file and parse error are logged',
    (_how, garble) => {
      const { first } = twoSteps();
      writeFileSync(file, garble(readFileSync(file, 'utf8')));
      expect(readState(file, log())).toEqual(first);
      expect(logs).toHaveLength(1);
      const said = logs[0]!;
      expect(said).toMatchObject({
        level: 'warn',
        component: 'node',
        msg: 'node state file unreadable; moved aside',
        file,
        using: `${file}.prev`,
      });
      expect(String(said.error)).not.toBe('');
      expect(readFileSync(String(said.movedTo), 'utf8')).not.toBe(readFileSync(file, 'utf8'));
      // put back: the next reader (down, status, the agent) finds the same, without a problem
      logs = [];
      expect(readState(file, log())).toEqual(first);
      expect(logs).toEqual([]);
    },
  );

  it('with no usable copy: undefined (start empty) and says so', () => {
    writeState(file, emptyState());
    writeFileSync(file, '{"version": 1, "pods": {');
    expect(readState(file, log())).toBeUndefined();
    expect(logs).toHaveLength(1);
    expect(logs[0]).toMatchObject({ file, using: 'nothing (no usable copy)' });
    expect(String(logs[0]!.error)).toMatch(/JSON/);
  });

  it('flowline status over a garbled state still reports the node the previous copy names', () => {
    const stateDir = join(dir, 'node');
    const stateFile = join(stateDir, 'state.json');
    const state = emptyState();
    state.pods['default/a'] = {
      key: 'default/a',
      namespace: 'default',
      name: 'a',
      netns: 'flpod-default-a',
      containerId: 'c',
      attachments: [],
      movedNetdevs: [],
      devices: {},
      allocatedEnv: {},
      grpcAddress: 'unix:///x',
      filePrefix: 'flpod_default_a',
      restarts: 0,
      phase: 'Running',
      manifest: '{}',
    };
    writeState(stateFile, state);
    writeState(stateFile, { ...state, ready: true });
    writeFileSync(stateFile, 'garbage');
    const status = nodeStatus(stateDir, log());
    expect(status.pods.map((p) => p.key)).toEqual(['default/a']);
    expect(logs.map((l) => l.file)).toEqual([stateFile]);
  });

  it('removeState removes the file and its previous copy', async () => {
    twoSteps();
    await removeState(file);
    expect(existsSync(file)).toBe(false);
    expect(existsSync(`${file}.prev`)).toBe(false);
  });
});
