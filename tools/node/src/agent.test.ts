import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '@flowline/telemetry';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { NodeAgent } from './agent';
import { nodePaths, parseNodeConfig } from './config';
import type { PodRecord } from './state';

const POD = `
apiVersion: v1
kind: Pod
metadata:
  name: fw
spec:
  containers:
    - name: nf
      command: [flowline-firewall]
`;

let dir: string;
let now: number;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'flnode-agent-'));
  now = 1_000_000;
  vi.spyOn(Date, 'now').mockImplementation(() => now);
});
afterEach(() => {
  vi.restoreAllMocks();
  rmSync(dir, { recursive: true, force: true });
});

/** An agent over a temp state dir whose runPod fails (no node is brought up). */
function failingAgent() {
  const paths = nodePaths(dir);
  mkdirSync(paths.manifests, { recursive: true });
  const agent = new NodeAgent(
    parseNodeConfig({ stateDir: dir }),
    paths,
    createLogger('node', { write: () => undefined }),
    { backoffMs: 1000, backoffMaxMs: 10_000 },
  );
  const runPod = vi
    .spyOn(agent.runtime, 'runPod')
    .mockRejectedValue(new Error('no free device for flowline.io/sriov_vf'));
  const manifest = join(paths.manifests, 'fw.yaml');
  writeFileSync(manifest, POD);
  return { agent, runPod, manifest };
}

/** When (ms after the first) runPod was tried, syncing every 100 ms up to `until`. */
async function tries(agent: NodeAgent, runPod: { mock: { calls: unknown[] } }, until: number) {
  const start = now;
  const at: number[] = [];
  for (; now - start <= until; now += 100) {
    const before = runPod.mock.calls.length;
    await agent.sync();
    if (runPod.mock.calls.length > before) at.push(now - start);
  }
  return at;
}

describe('NodeAgent: a pod that does not start', () => {
  it('is tried again after a doubling back-off, up to the maximum (a failed start leaves no pod record)', async () => {
    const { agent, runPod } = failingAgent();
    expect(await tries(agent, runPod, 36_000)).toEqual([
      0, 1000, 3000, 7000, 15_000, 25_000, 35_000,
    ]);
    expect(agent.runtime.state.problems).toEqual({
      'pod:default/fw': 'no free device for flowline.io/sriov_vf',
    });
  });

  it('starts over from the first delay after a start succeeds or its manifest is removed or edited', async () => {
    const { agent, runPod, manifest } = failingAgent();
    expect(await tries(agent, runPod, 3000)).toEqual([0, 1000, 3000]);
    // removed and put back: tried at once, then after 1 s again
    now += 100;
    rmSync(manifest);
    await agent.sync();
    writeFileSync(manifest, POD);
    expect(await tries(agent, runPod, 1000)).toEqual([0, 1000]);
    // edited (perhaps to fix what stopped it) while its next try is 2 s away: tried at once, and
    // counted anew
    now += 100;
    writeFileSync(manifest, POD.replace('flowline-firewall', 'flowline-router'));
    expect(await tries(agent, runPod, 1000)).toEqual([0, 1000]);
    // it starts once (and its process goes away with its record); the next failure waits 1 s
    now += 2000;
    runPod.mockResolvedValueOnce({} as PodRecord);
    expect(await tries(agent, runPod, 1100)).toEqual([0, 100, 1100]);
  });
});
