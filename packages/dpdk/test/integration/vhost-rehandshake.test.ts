import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeVhostBackend, VHOST_USER, type VhostMessage } from '../support/fake-vhost-backend';
import { dataplaneReady, scrubPrefix, testPrefix } from '../support/env';

/**
 * A switch that drops a server=1 virtio-user port's connection between the port's probe and
 * its configuration (OVS did, when its shared mempool's first tries filled its heap: the
 * walk-through's CI failure). DPDK 22.11 cannot send the "disable" of the re-initialisation
 * that follows, keeps the queues marked enabled, and so never enables them on the next
 * connection: the switch would never poll the port while its link reads up.
 *
 * Real OVS drops it only when its allocation happens to race a handshake (in 2 of 50 node
 * starts here), which no test can time. So the NF side is real DPDK, and the backend is a
 * scripted vhost-user client (fake-vhost-backend.ts, the real protocol) that records each
 * connection. The NF runs in a child process in a netns of its own, as a pod (a reset that
 * looked for the connection in the NF's /proc/net/unix found none there). Without the watch
 * (its reset taken out), the last connection got no enable in 10 of 15 runs here
 * (2026-12-06); in 3 DPDK's own disconnect handling happened to recover, 2 hit the panic below.
 */
const skip = dataplaneReady();
const CHILD = path.join(__dirname, '../support/vhost-rehandshake-child.ts');
/** The end of the probe's handshake: the second vring's enable. */
const endOfProbe = (m: VhostMessage): boolean =>
  m.request === VHOST_USER.SET_VRING_ENABLE && m.index === 1 && m.num === 1;
/**
 * DPDK 22.11's EAL interrupt thread panics in some runs of this scenario (its disconnect
 * alarms, queued once per look at the dead socket, leave a closed descriptor registered:
 * "PANIC in eal_intr_thread_main(): Error adding fd ... Bad file descriptor"; 4 of about 30
 * runs, with the watch or without).
 * The NF process dies and the node restarts the pod, whose new handshake is whole. That run
 * says nothing about the watch, so the scenario is run again, at most this many times.
 */
const ATTEMPTS = 3;
const DPDK_PANIC =
  /PANIC in eal_intr_thread_main\(\):\s*Error adding fd \d+ epoll_ctl, Bad file descriptor/;

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

interface Attempt {
  backend: FakeVhostBackend;
  code: number | null;
  out: string;
  err: string;
}

async function attempt(n: number): Promise<Attempt> {
  const dir = mkdtempSync(path.join(tmpdir(), 'fl-rehandshake-'));
  const prefix = testPrefix(`rh${n}`);
  const sock = path.join(dir, 'net1.sock');
  const go = path.join(dir, 'go');
  const backend = new FakeVhostBackend(sock, { dropFirstAt: endOfProbe });
  cleanups.push(() => {
    backend.stop();
    rmSync(dir, { recursive: true, force: true });
    scrubPrefix(prefix);
  });
  // The NF in a netns of its own and the backend outside it, as a pod and OVS are: the
  // connection's server-side socket then lives in the backend's netns, not the NF's.
  const netns = `fltest-rh-${process.pid}-${n}`;
  execFileSync('ip', ['netns', 'add', netns]);
  cleanups.push(() => spawnSync('ip', ['netns', 'del', netns]));
  const child = spawn(
    'ip',
    ['netns', 'exec', netns, process.execPath, '--import', 'tsx', CHILD, sock, prefix, go, '3'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  cleanups.unshift(() => child.kill('SIGKILL'));
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', r));
  backend.start();
  // The probe is over and the backend has dropped that connection: let the child configure.
  const gate = setInterval(() => {
    if (out.includes('probed\n') && backend.connections[0]?.ended) writeFileSync(go, '');
  }, 5);
  const code = await exited;
  clearInterval(gate);
  backend.stop();
  return { backend, code, out, err };
}

describe.skipIf(skip)('a vhost-user connection dropped in the middle of the handshake', () => {
  it('is reset by the handshake watch, and the next connection enables both vrings', async () => {
    let a = await attempt(0);
    const panics: string[] = [];
    for (let n = 1; n < ATTEMPTS && a.code !== 0 && DPDK_PANIC.test(a.err); n++) {
      panics.push(`attempt ${n}: DPDK interrupt-thread panic`);
      a = await attempt(n);
    }
    if (panics.length) process.stdout.write(`${panics.join('\n')}\n`);
    expect(a.code, a.err).toBe(0);
    const line = a.out.split('\n').find((l) => l.startsWith('{'));
    expect(line, `${a.out}\n${a.err}`).toBeDefined();
    const { backend } = a;
    expect(backend.connections[0]!.droppedByBackend).toBe(true);
    expect(backend.enabledVrings(backend.connections[0]!)).toEqual([0, 1]);
    // The port saw DPDK's failed stop, waited for the link, and reset the connection once.
    expect(JSON.parse(line!)).toEqual({ redone: 1, up: true });
    expect(backend.connections.length).toBeGreaterThanOrEqual(3);
    // The connection after the reset got the disable this time, then the enable.
    const last = backend.connections.at(-1)!;
    expect(last.droppedByBackend).toBe(false);
    const enables = last.messages.filter((m) => m.request === VHOST_USER.SET_VRING_ENABLE);
    expect(enables.map((m) => `${m.index}:${m.num}`)).toEqual(['0:0', '1:0', '0:1', '1:1']);
    expect(backend.enabledVrings(last)).toEqual([0, 1]);
  }, 60_000);
});
