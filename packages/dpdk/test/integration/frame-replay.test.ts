/**
 * FrameReplay over a real vhost-user link in one process: the replay sends on a virtio-user
 * port from worker lcore 1, the test receives on the net_vhost end (which copies, so the
 * replay's mbufs stay as written) and sends some back. This file is one process, one EAL.
 */
import { rmSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';

import { flowFrame } from '@flowline/packet';

import {
  FrameReplay,
  FrameReplayError,
  Mempool,
  Port,
  devargs,
  initEal,
  type Eal,
} from '../../src/index';
import { dataplaneReady, scrubPrefix, sleep, testPrefix, waitFor } from '../support/env';

const notReady = dataplaneReady();
const prefix = testPrefix('replay');
const sock = `/tmp/fltest-replay-${process.pid}.sock`;
let eal: Eal | undefined;

afterAll(() => {
  eal?.cleanup();
  scrubPrefix(prefix);
  rmSync(sock, { force: true });
});

/** 60-byte UDP frames (64 on the wire), one per source port. */
const frames = [1000, 1001, 1002].map((srcPort) =>
  flowFrame({
    srcMac: '02:00:00:00:00:01',
    dstMac: '02:00:00:00:00:02',
    src: '10.254.0.1',
    dst: '10.253.3.255',
    protocol: 'udp',
    srcPort,
    dstPort: 1001,
    payload: new Uint8Array(18),
  }),
);

describe.skipIf(notReady)('FrameReplay (root, hugepages)', () => {
  let vhost: Port, virtio: Port, replayPool: Mempool, rxPool: Mempool;

  it('opens a vhost-user link with the rx pools apart from the replay pool', async () => {
    eal = initEal({ filePrefix: prefix, lcores: [0, 1] });
    rmSync(sock, { force: true });
    rxPool = Mempool.create({ size: 8191 });
    // small, so every mbuf goes round many times in the test
    replayPool = Mempool.create({ size: 1535 });
    vhost = Port.open(devargs.vhost({ id: 'rv0', iface: sock }), rxPool);
    virtio = Port.open(devargs.virtioUser({ id: 'ru0', path: sock, queueSize: 256 }), rxPool);
    expect(await waitFor(() => vhost.link().up && virtio.link().up, 5000)).toBe(true);
  });

  it('refuses bad specs, naming the field', () => {
    const base = { lcore: 1, ports: [virtio], pool: replayPool, frames };
    const fails = (spec: object, path: string | RegExp): void => {
      let err: unknown;
      try {
        FrameReplay.create({ ...base, ...spec });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(FrameReplayError);
      if (typeof path === 'string') expect((err as FrameReplayError).path).toBe(path);
      else expect((err as Error).message).toMatch(path);
    };
    fails({ lcore: 0 }, 'lcore');
    fails({ ports: [] }, 'ports');
    fails({ ports: [virtio, virtio] }, 'ports[1]');
    fails({ frames: [] }, 'frames');
    fails({ frames: [frames[0], Buffer.alloc(59)] }, 'frames[1]');
    fails({ frames: [Buffer.alloc(13)] }, 'frames[0]');
    fails({ burst: 0 }, 'burst');
    // the ports' rx rings hold mbufs of this pool: the replay could not write them
    fails({ pool: rxPool }, /mbufs out: the replay needs a pool of its own/);
  });

  it('sends the frames unchanged, on the selected port only, and drains what comes back', async () => {
    const replay = FrameReplay.create({ lcore: 1, ports: [virtio], pool: replayPool, frames });
    replay.start();
    await sleep(20);
    // nothing selected: nothing offered
    expect(replay.counters()[0]).toEqual({ tried: 0, sent: 0, received: 0 });
    replay.select(virtio);
    const want = new Set(frames.map((f) => f.toString('hex')));
    const seen = new Map<string, number>();
    let got = 0;
    let foreign = 0;
    // several times the pool's size: every mbuf is sent again and again
    await waitFor(() => {
      for (const f of vhost.receive(0, 256)) {
        const hex = f.toString('hex');
        if (want.has(hex)) seen.set(hex, (seen.get(hex) ?? 0) + 1);
        else foreign++;
        got++;
      }
      return got >= 20_000;
    }, 10_000);
    expect(got).toBeGreaterThanOrEqual(20_000);
    expect(foreign).toBe(0);
    expect(seen.size).toBe(3);

    // back the other way: the replay receives and frees them
    const echoed = vhost.send(0, rxPool, frames);
    expect(echoed).toBe(3);
    expect(await waitFor(() => (replay.counters()[0]?.received ?? 0) >= 3, 2000)).toBe(true);

    replay.select(null);
    await sleep(20);
    const a = replay.counters()[0];
    await sleep(50);
    const b = replay.counters()[0];
    expect(b).toEqual(a);
    expect(b?.sent).toBeGreaterThanOrEqual(got);
    expect(b?.tried).toBeGreaterThanOrEqual(b?.sent ?? Infinity);
    while (vhost.receive(0, 256).length > 0);

    expect(() => replay.select(vhost)).toThrow(/is not one of the replay's/);
    replay.stop();
    expect(replay.running).toBe(false);
    expect(replay.counters()[0]?.sent).toBe(b?.sent);
    replay.close();
    expect(() => replay.counters()).toThrow(/closed/);
  });

  it('closes the ports before the pools', () => {
    virtio.close();
    vhost.close();
    expect(eal?.cleanup()).toBeDefined();
  });
});
