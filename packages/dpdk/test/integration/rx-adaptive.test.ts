/**
 * Adaptive rx (issue 23): a pipeline worker whose input is a virtio-user port (server=1) with rx
 * interrupts sleeps in epoll when idle and wakes on the peer's kick. The peer is a net_vhost
 * port in the same process; JavaScript sends into it, the worker forwards to a ring port.
 * Checks: the idle worker sleeps in epoll and its thread's CPU time over 2 s stays near zero;
 * a worker that has slept wakes on the first packet (well before its 2 s epoll timeout); at a
 * modest rate, with sleeps in between, every packet arrives (exact counts, no loss).
 */
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';

import { Pipeline, Port, devargs } from '../../src/index';
import { dataplaneReady, sleep, waitFor } from '../support/env';
import { BACKOFF, drain, eachFileRig, sendAll, settle, tagOf, tagged } from '../support/rig';

const rigOf = eachFileRig('rxadapt', 3);
const sock = `/tmp/fltest-rxa-${process.pid}.sock`;
afterAll(() => rmSync(sock, { force: true }));

/** CPU seconds (utime + stime) of this process's threads named like DPDK's worker lcores. */
function workerCpuSeconds(): number {
  let total = 0;
  for (const tid of readdirSync('/proc/self/task')) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    } catch {
      continue;
    }
    const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    if (!/^(lcore-worker|rte-worker)/.test(name)) continue;
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    total += (Number(f[11]) + Number(f[12])) / 100;
  }
  return total;
}

describe.skipIf(dataplaneReady())('adaptive rx on virtio-user (root, hugepages)', () => {
  it('sleeps in epoll when idle (near-zero CPU), wakes on the first packet, loses nothing', async () => {
    rmSync(sock, { force: true });
    const [out] = rigOf().ports as [Port];
    const pool = rigOf().pool;
    const vhost = Port.open(devargs.vhost({ id: 'rxa', iface: sock, client: true }), pool);
    const virtio = Port.open(
      devargs.virtioUser({ id: 'rxa', path: sock, server: true, queueSize: 1024 }),
      pool,
      { rxInterrupts: true },
    );
    const p = Pipeline.create({
      inputs: [virtio],
      rxMode: 'adaptive',
      // A timed-out wait would take 2 s: a wake well before that is the peer's kick.
      backoff: { spinPolls: 64, sleepMinUs: 10, sleepMaxUs: 500, interruptWaitMs: 2000 },
      stages: [{ kind: 'l2fwd', forward: [{ from: virtio, to: out }] }],
    });
    try {
      expect(await waitFor(() => virtio.link().up && vhost.link().up, 5000)).toBe(true);
      p.start();
      await sleep(300);
      // Idle: the worker thread's CPU over 2 s (a polling worker would use ~2 s).
      const cpu0 = workerCpuSeconds();
      await sleep(2000);
      expect(workerCpuSeconds() - cpu0).toBeLessThan(0.05);
      // ... because it waits in epoll on the queue's interrupt.
      expect(p.rxWaits()).toMatchObject({ interruptWorkers: 1 });
      expect(p.rxWaits().waits).toBeGreaterThanOrEqual(1);

      // The first packet after the sleep wakes it at once.
      const t0 = Date.now();
      expect(vhost.send(0, pool, [tagged(0, { src: '10.0.0.1', dst: '10.0.0.2' })])).toBe(1);
      const first: Buffer[] = [];
      expect(await waitFor(() => (first.push(...drain(out)), first.length === 1), 1500, 1)).toBe(
        true,
      );
      expect(Date.now() - t0).toBeLessThan(200);
      expect(p.rxWaits().kicked).toBeGreaterThanOrEqual(1);

      // A modest rate with gaps the worker sleeps through: 2,000 packets in bursts of 20 every
      // 5 ms (about 4 kpps); every one arrives, in order.
      const got: Buffer[] = [...first];
      for (let i = 1; i <= 2000; i += 20) {
        const burst = Array.from({ length: 20 }, (_, k) =>
          tagged(i + k, { src: '10.0.0.1', dst: '10.0.0.2' }),
        );
        expect(vhost.send(0, pool, burst)).toBe(20);
        await sleep(5);
        got.push(...drain(out));
      }
      await waitFor(() => (got.push(...drain(out)), got.length >= 2001), 3000);
      expect(got).toHaveLength(2001);
      expect(got.map((f) => tagOf(f, 8))).toEqual(Array.from({ length: 2001 }, (_, i) => i));
      expect(p.counters()).toMatchObject({ rx: 2001, tx: 2001, drops: {} });
    } finally {
      p.close();
      // The vhost client first, and the virtio-user server once it has seen the link go down:
      // closed the other way, the client's reconnect thread and the server's link-state
      // callback race the close in DPDK 22.11 (a test fork died so in CI, see pod-dataplane.ts).
      vhost.close();
      await waitFor(() => !virtio.link().up, 1000);
      virtio.close();
    }
  });

  it('shareCore: a worker that has caught up gives up the CPU; without it, never', async () => {
    const [, a, b] = rigOf().ports as [Port, Port, Port];
    const pool = rigOf().pool;
    for (const shareCore of [true, false]) {
      const p = Pipeline.create({
        inputs: [a],
        backoff: { ...BACKOFF, shareCore },
        stages: [{ kind: 'l2fwd', forward: [{ from: a, to: b }] }],
      });
      try {
        p.start();
        // bursts of 5, shorter than a burst (32): each poll that takes one has caught up
        for (let i = 0; i < 100; i += 5) {
          await sendAll(
            a,
            pool,
            Array.from({ length: 5 }, (_, k) =>
              tagged(i + k, { src: '10.0.0.1', dst: '10.0.0.2' }),
            ),
          );
          await sleep(2);
        }
        await settle(p, 100);
        expect(drain(b)).toHaveLength(100);
        const { yields } = p.rxWaits();
        if (shareCore) expect(yields).toBeGreaterThanOrEqual(20);
        else expect(yields).toBe(0);
      } finally {
        p.close();
      }
    }
  });

  it('the JS batch API: rxArm + rxWait sleep until the peer kicks, and time out without one', async () => {
    rmSync(sock, { force: true });
    const pool = rigOf().pool;
    const vhost = Port.open(devargs.vhost({ id: 'rxj', iface: sock, client: true }), pool);
    const virtio = Port.open(
      devargs.virtioUser({ id: 'rxj', path: sock, server: true, queueSize: 1024 }),
      pool,
      { rxInterrupts: true },
    );
    try {
      expect(await waitFor(() => virtio.link().up && vhost.link().up, 5000)).toBe(true);
      // Nothing comes: the wait times out (false) after about its timeout.
      virtio.rxArm(0);
      expect(virtio.receive(0)).toHaveLength(0);
      const t0 = Date.now();
      expect(await virtio.rxWait(0, 300)).toBe(false);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
      // A frame sent while it waits (2 s timeout) ends the wait at once (true).
      virtio.rxArm(0);
      expect(virtio.receive(0)).toHaveLength(0);
      const t1 = Date.now();
      const woke = virtio.rxWait(0, 2000);
      setTimeout(() => vhost.send(0, pool, [tagged(7, { src: '10.0.0.1', dst: '10.0.0.2' })]), 50);
      expect(await woke).toBe(true);
      expect(Date.now() - t1).toBeLessThan(1000);
      const got = virtio.receive(0);
      expect(got.map((f) => tagOf(f, 8))).toEqual([7]);
    } finally {
      // The vhost client first, and the virtio-user server once it has seen the link go down:
      // closed the other way, the client's reconnect thread and the server's link-state
      // callback race the close in DPDK 22.11 (a test fork died so in CI, see pod-dataplane.ts).
      vhost.close();
      await waitFor(() => !virtio.link().up, 1000);
      virtio.close();
    }
  });
});
