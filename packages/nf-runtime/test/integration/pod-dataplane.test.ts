/**
 * openPodDataplane on real DPDK: a pod with a virtio-user port from its pod dir (the switch
 * side is a net_vhost client in a helper process that echoes frames) and net_ring ports from
 * the config. Checks the ports by name, a pipeline over them with its counters in the view,
 * frames injected from JavaScript, the reconnect after the switch side restarts, and a stop
 * that leaves no hugepage file, runtime dir or socket. One process, one EAL.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Pipeline, type Port, buildPacket, leftoverFiles } from '@flowline/dpdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  type LinkEvent,
  type PodDataplane,
  discoverPodPorts,
  loadConfig,
  openPodDataplane,
  planEal,
} from '../../src/index';
import { dataplaneNotReady } from '../support/dataplane';

const notReady = dataplaneNotReady();

const tsx = join(__dirname, '..', '..', '..', '..', 'node_modules', 'tsx', 'dist', 'cli.mjs');
const peerScript = join(__dirname, '..', 'fixtures', 'vhost-peer.ts');
const dir = mkdtempSync('/tmp/flpd-');
// Where the NF looks for it: beside net1.json in the pod dir (contract 2, docs/architecture.md).
const sock = join(dir, 'pod', 'net1.sock');
const MAC = '02:00:00:00:00:11';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let dp: PodDataplane | undefined;
let pipeline: Pipeline;
const peers: ChildProcess[] = [];
const peerPrefixes: string[] = [];
const peerOut: string[] = [];
const events: LinkEvent[] = [];

function startPeer(): ChildProcess {
  const prefix = `fltest-peer-${process.pid}-${peers.length}`;
  peerPrefixes.push(prefix);
  const child = spawn(process.execPath, [tsx, peerScript, sock, prefix], {
    stdio: ['ignore', 'pipe', 'inherit'],
    detached: true, // its own process group: tsx runs the script in a child of its own
  });
  const i = peers.push(child) - 1;
  peerOut[i] = '';
  child.stdout!.on('data', (d: Buffer) => (peerOut[i] += d.toString()));
  return child;
}

/** SIGKILL for the peer's whole group (tsx and the node running the script). */
function killPeer(p: ChildProcess): void {
  try {
    process.kill(-p.pid!, 'SIGKILL');
  } catch {
    // already gone
  }
}

async function waitFor(fn: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

/** Sends `count` tagged frames into ringIn and collects what comes out of ringOut. */
async function roundTrip(ringIn: Port, ringOut: Port, count: number, tag: number) {
  const frames = Array.from({ length: count }, (_, i) =>
    buildPacket({ src: '10.9.0.1', dst: '10.9.0.2', sport: tag, dport: i, size: 96 }),
  );
  ringIn.send(0, dp!.pool, frames);
  const got: Buffer[] = [];
  const end = Date.now() + 5000;
  while (got.length < count && Date.now() < end) {
    got.push(...ringOut.receive(0, 64).filter((f) => f.readUInt16BE(34) === tag));
    await sleep(5);
  }
  return got;
}

beforeAll(() => {
  if (notReady) return;
  mkdirSync(join(dir, 'pod'));
  writeFileSync(join(dir, 'pod', 'net1.json'), JSON.stringify({ socketPath: sock, mac: MAC }));
});

afterAll(async () => {
  for (const p of peers) killPeer(p);
  await dp?.close();
  for (const prefix of peerPrefixes)
    for (const f of leftoverFiles(prefix)) rmSync(f, { recursive: true, force: true });
  rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(notReady)('openPodDataplane (root, hugepages)', () => {
  it('opens the pod dir virtio-user port (server=1) and the config ports, by name', async () => {
    startPeer(); // it connects once the socket exists; open waits for it
    const config = loadConfig({
      kind: 'pdtest',
      nfSchema: z.object({}),
      env: {},
      argv: [
        ...['--name', 'pdtest', '--pod-dir', join(dir, 'pod'), '--metrics-port', 'off'],
        ...['--lcores', '0,1', '--memory-mb', '128'],
        ...[
          '--port',
          'name=ring-in,devargs=net_ringpdin',
          '--port',
          'name=ring-out,devargs=net_ringpdout',
        ],
      ],
    });
    const ports = discoverPodPorts(config.runtime, {});
    dp = openPodDataplane({ ports, eal: planEal(config.runtime, ports) }, { linkPollMs: 50 });
    dp.onLinkChange((e) => events.push(e));
    expect([...dp.ports.keys()]).toEqual(['net1', 'ring-in', 'ring-out']);
    expect(dp.eal.options.filePrefix).toBe(`pdtest-${process.pid}`);
    expect(dp.eal.args).toEqual(expect.arrayContaining(['--no-pci', '--single-file-segments']));
    const view = dp.view.ports();
    expect(view.find((p) => p.name === 'net1')).toMatchObject({
      driver: 'net_virtio_user',
      mac: MAC,
      linkUp: true,
      devargs: expect.stringContaining('server=1'),
    });
    expect(view.find((p) => p.name === 'ring-in')).toMatchObject({ driver: 'net_ring' });
    expect(dp.view.workerLcores()).toEqual([1]);
    await waitFor(() => peerOut[0]!.includes('up'), 5000, 'peer up');
  });

  it('runs a pipeline over the ports; the view reports its counters', async () => {
    const [net1, ringIn, ringOut] = ['net1', 'ring-in', 'ring-out'].map((n) => dp!.port(n)) as [
      Port,
      Port,
      Port,
    ];
    pipeline = Pipeline.create({
      inputs: [ringIn, net1],
      stages: [
        {
          kind: 'l2fwd',
          forward: [
            { from: ringIn, to: net1 },
            { from: net1, to: ringOut },
          ],
        },
      ],
      backoff: { spinPolls: 64, sleepMinUs: 10, sleepMaxUs: 200 },
    });
    dp!.attachPipeline(pipeline);
    pipeline.start();
    const got = await roundTrip(ringIn, ringOut, 50, 1);
    expect(got).toHaveLength(50);
    const c = dp!.view.counters();
    expect(c.ports.find((p) => p.name === 'net1')).toMatchObject({
      txPackets: 50n,
      rxPackets: 50n,
    });
    expect(c.stages.find((s) => s.name === 'pipeline')).toMatchObject({
      packetsIn: 100n,
      packetsOut: 100n,
    });
  });

  it('sends frames built in JavaScript through the pipeline inject ring', async () => {
    const frames = Array.from({ length: 10 }, (_, i) =>
      buildPacket({ src: '10.9.0.3', dst: '10.9.0.4', sport: 7, dport: i, size: 80 }),
    );
    expect(dp!.frames().inject(pipeline, dp!.port('net1'), frames)).toBe(10);
    const ringOut = dp!.port('ring-out');
    const got: Buffer[] = [];
    await waitFor(
      () => (got.push(...ringOut.receive(0, 64)), got.length >= 10),
      5000,
      'injected frames echoed back',
    );
    expect(got.map((f) => f.readUInt16BE(36)).sort((a, b) => a - b)).toEqual([...Array(10).keys()]);
  });

  it('comes back by itself when the switch side restarts', async () => {
    killPeer(peers[0]!);
    await waitFor(() => events.some((e) => e.port === 'net1' && !e.up), 5000, 'link down');
    startPeer();
    await waitFor(() => events.some((e) => e.port === 'net1' && e.up), 10_000, 'link up again');
    await waitFor(() => peerOut[1]!.includes('up'), 5000, 'peer up');
    const got = await roundTrip(dp!.port('ring-in'), dp!.port('ring-out'), 20, 2);
    expect(got).toHaveLength(20);
  });

  it('stops traffic, drains and closes, leaving no hugepage file, runtime dir or socket', async () => {
    const prefix = dp!.eal.options.filePrefix;
    await dp!.stopTraffic();
    expect(pipeline.isRunning).toBe(false);
    await dp!.drain(500);
    await dp!.close();
    expect(leftoverFiles(prefix)).toEqual([]);
    expect(readdirSync('/dev/hugepages').filter((f) => f.startsWith(prefix))).toEqual([]);
    expect(existsSync(sock)).toBe(false);
    expect(dp!.view.counters()).toEqual({ ports: [], stages: [] });
  });
});
