import { describe, expect, it } from 'vitest';
import { VHOST_REDO_SETTLE_MS, VhostHandshakeWatch, type VhostHandshakeIo } from './vhost-watch';

/** DPDK's side, scripted: which paths it reported broken, and the resets asked of it. */
function fakeIo(): VhostHandshakeIo & { broken: Set<string>; kicks: string[] } {
  const broken = new Set<string>();
  const kicks: string[] = [];
  return {
    broken,
    kicks,
    takeBroken: (path) => broken.delete(path),
    kick: (path) => {
      kicks.push(path);
      return 1;
    },
  };
}

describe('VhostHandshakeWatch', () => {
  it('watches only server=1 virtio-user ports with a path', () => {
    const io = fakeIo();
    const w = VhostHandshakeWatch.forDevargs('net_virtio_user3,path=/run/p/net1.sock,server=1', io);
    expect(w?.socketPath).toBe('/run/p/net1.sock');
    expect(VhostHandshakeWatch.forDevargs('net_virtio_user3,path=/run/x.sock', io)).toBeUndefined();
    expect(VhostHandshakeWatch.forDevargs('net_vhost0,iface=/run/x.sock,client=1', io)).toBe(
      undefined,
    );
    expect(VhostHandshakeWatch.forDevargs('net_ring0', io)).toBeUndefined();
  });

  it('resets the connection once, after the link has read up for the settle time', () => {
    const io = fakeIo();
    let now = 1000;
    const w = new VhostHandshakeWatch('/s.sock', io, () => now);
    expect(w.observe(true)).toBe(0); // nothing reported
    io.broken.add('/s.sock');
    expect(w.observe(false)).toBe(0); // reported while down: wait for the reconnection
    now += 1000;
    expect(w.observe(true)).toBe(0); // up now: the handshake may still be running
    now += VHOST_REDO_SETTLE_MS - 1;
    expect(w.observe(true)).toBe(0);
    now += 1;
    expect(w.observe(true)).toBe(1);
    expect(io.kicks).toEqual(['/s.sock']);
    expect(w.redone).toBe(1);
    now += 10_000;
    expect(w.observe(true)).toBe(0); // once per report
    expect(io.kicks).toHaveLength(1);
  });

  it('starts the settle time again when the link drops before it is over', () => {
    const io = fakeIo();
    let now = 0;
    const w = new VhostHandshakeWatch('/s.sock', io, () => now);
    io.broken.add('/s.sock');
    w.observe(true);
    now += VHOST_REDO_SETTLE_MS - 10;
    w.observe(false);
    now += 20;
    expect(w.observe(true)).toBe(0);
    now += VHOST_REDO_SETTLE_MS - 1;
    expect(w.observe(true)).toBe(0);
    now += 1;
    expect(w.observe(true)).toBe(1);
  });

  it('does not count a reset that found no connection', () => {
    const io = { ...fakeIo(), kick: () => 0 };
    let now = 0;
    const w = new VhostHandshakeWatch(
      '/s.sock',
      { takeBroken: () => now === 0, kick: io.kick },
      () => now,
    );
    w.observe(true);
    now = VHOST_REDO_SETTLE_MS;
    expect(w.observe(true)).toBe(0);
    expect(w.redone).toBe(0);
  });
});
