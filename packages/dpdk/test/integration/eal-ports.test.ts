/**
 * EAL lifecycle and ports on real hugepages with vdev ports: clear errors that leave the
 * process usable, port controls and stats, a virtio-user <-> vhost-user pair in one process,
 * and a teardown that leaves no hugepage files. This file is one process, one EAL.
 */
import { existsSync, rmSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';

import {
  DevargsError,
  EalOptionError,
  EalStateError,
  Mempool,
  Port,
  PortError,
  buildPacket,
  devargs,
  initEal,
  leftoverFiles,
  type Eal,
} from '../../src/index';
import { dataplaneReady, scrubPrefix, testPrefix, waitFor } from '../support/env';

const notReady = dataplaneReady();
const prefix = testPrefix('eal');
const sock = `/tmp/fltest-vhost-${process.pid}.sock`;
let eal: Eal | undefined;

afterAll(() => {
  eal?.cleanup();
  scrubPrefix(prefix);
  rmSync(sock, { force: true });
});

describe.skipIf(notReady)('EAL and ports (root, hugepages)', () => {
  it('rejects bad options naming the option, before touching DPDK', () => {
    expect(() => initEal({ filePrefix: prefix, lcores: [0, 99] })).toThrow(EalOptionError);
    expect(() => initEal({ filePrefix: prefix, lcores: [0, 99] })).toThrow(
      /"lcores".*core 99 does not exist/,
    );
    expect(() => initEal({ filePrefix: 'bad prefix!' })).toThrow(/"filePrefix"/);
    expect(() => initEal({ filePrefix: prefix, hugeDir: '/tmp' })).toThrow(
      /"hugeDir".*not a hugetlbfs mount/,
    );
    expect(() => initEal({ filePrefix: prefix, vdevs: ['net_ring0,broken'] })).toThrow(
      /"vdevs\[0\]".*not key=value/,
    );
  });

  it('initialises with vdevs and worker lcores', () => {
    eal = initEal({ filePrefix: prefix, lcores: [0, 1], vdevs: [devargs.ring({ id: 'eal0' })] });
    expect(eal.running).toBe(true);
    expect(eal.lcores()).toEqual({ main: 0, workers: [1] });
    expect(eal.args).toContain('--no-pci');
  });

  it("measures a cache line's round trip to a worker lcore; refuses the main lcore and bad counts", () => {
    const rt = eal?.lcoreRoundTrip(1, 5_000);
    expect(rt?.lcore).toBe(1);
    // two cores handing a line back and forth: tens of cycles at the very least, and far under a
    // millisecond unless the worker's core is shared
    expect(rt?.cycles).toBeGreaterThan(20);
    expect(rt?.ns).toBeGreaterThan(5);
    expect(rt?.ns).toBeLessThan(1e6);
    expect(() => eal?.lcoreRoundTrip(0)).toThrow(/lcore 0 is not a worker lcore/);
    expect(() => eal?.lcoreRoundTrip(1, 2)).toThrow(/round trips must be 5\.\.10000000, got 2/);
    // the worker is free again: a second measurement runs
    expect(eal?.lcoreRoundTrip(1, 5_000).cycles).toBeGreaterThan(20);
  });

  it('refuses a second init in the same process', () => {
    expect(() => initEal({ filePrefix: `${prefix}x` })).toThrow(EalStateError);
  });

  it('opens ports from devargs and from --vdev, with working controls and stats', () => {
    const pool = Mempool.create({ size: 4095 });
    expect(pool.info()).toMatchObject({ size: 4095, available: 4095, inUse: 0, cacheSize: 256 });
    expect(pool.view()).toBeInstanceOf(ArrayBuffer);
    const a = Port.attach('net_ringeal0', pool, { rxQueues: 1, txQueues: 1 });
    expect(a.info().driver).toBe('net_ring');
    const b = Port.open(devargs.ring({ id: 'eal1' }), pool, {
      rxQueues: 2,
      txQueues: 2,
      promiscuous: true,
    });
    expect(b.name).toBe('net_ringeal1');
    expect(() => b.setMac('02:aa:bb:cc:dd:01')).toThrow(
      /net_ringeal1.*mac_addr_set.*not supported/,
    );
    const nul = Port.open(devargs.null({ id: 'mac' }), pool, { mac: '02:aa:bb:cc:dd:01' });
    expect(nul.mac()).toBe('02:aa:bb:cc:dd:01');
    nul.setMtu(9000);
    expect(nul.mtu()).toBe(9000);
    nul.close();
    expect(b.promiscuous()).toBe(true);
    b.setPromiscuous(false);
    expect(b.promiscuous()).toBe(false);
    expect(b.mtu()).toBe(1500);
    expect(() => b.setMtu(9000)).toThrow(/set_mtu.*not supported/);
    expect(b.link().up).toBe(true);
    const pkts = Array.from({ length: 10 }, (_, i) =>
      buildPacket({ src: '10.0.0.1', dst: '10.0.0.2', sport: i }),
    );
    expect(b.send(1, pool, pkts)).toBe(10);
    const got = b.receive(1, 64);
    expect(got).toHaveLength(10);
    expect(got.map((g) => g.readUInt16BE(34))).toEqual(pkts.map((_, i) => i));
    expect(b.stats()).toMatchObject({ rxPackets: 10, txPackets: 10 });
    expect(Object.keys(b.xstats())).toContain('rx_good_packets');
    b.resetStats();
    expect(b.stats().rxPackets).toBe(0);
    expect(pool.info().inUse).toBe(0);
    a.close();
    b.close();
  });

  it('rejects bad devargs clearly and stays usable', () => {
    const pool = Mempool.create({ size: 1024 });
    expect(() => Port.open('net_nosuchdriver0,x=1', pool)).toThrow(PortError);
    expect(() => Port.open('net_nosuchdriver0,x=1', pool)).toThrow(
      /rte_dev_probe.*net_nosuchdriver0/,
    );
    expect(() => Port.open('net_ring0,broken', pool)).toThrow(DevargsError);
    expect(() => devargs.virtioUser({ id: 0, path: 'relative.sock' })).toThrow(/must be absolute/);
    expect(() => devargs.virtioUser({ id: 0, path: `/tmp/${'x'.repeat(120)}.sock` })).toThrow(
      /107 bytes/,
    );
    // asking for more queues than the driver has: the port is detached again
    expect(() => Port.open(devargs.ring({ id: 'q' }), pool, { rxQueues: 64 })).toThrow(
      /at most 16 rx/,
    );
    const again = Port.open(devargs.ring({ id: 'q' }), pool);
    expect(again.link().up).toBe(true);
    again.close();
    // the same name twice is an error, then works after close
    const p = Port.open(devargs.null({ id: 'n' }), pool);
    expect(() => Port.open(devargs.null({ id: 'n' }), pool)).toThrow(/already attached/);
    p.close();
    Port.open(devargs.null({ id: 'n' }), pool).close();
  });

  it('passes packets over vhost-user: net_vhost (server) <-> net_virtio_user (client) in one process', async () => {
    rmSync(sock, { force: true });
    const pool = Mempool.create({ size: 8191 });
    const vhost = Port.open(devargs.vhost({ id: 'v0', iface: sock }), pool);
    const virtio = Port.open(devargs.virtioUser({ id: 'u0', path: sock, queueSize: 1024 }), pool);
    expect(await waitFor(() => vhost.link().up && virtio.link().up, 5000)).toBe(true);
    const pkts = Array.from({ length: 100 }, (_, i) =>
      buildPacket({ src: '10.0.0.1', dst: '10.0.0.2', sport: i, size: 64 + i }),
    );
    let sent = 0;
    await waitFor(() => {
      sent += virtio.send(0, pool, pkts.slice(sent));
      return sent === pkts.length;
    }, 5000);
    const got: Buffer[] = [];
    await waitFor(() => {
      got.push(...vhost.receive(0, 256));
      return got.length >= pkts.length;
    }, 5000);
    expect(got.length).toBe(100);
    expect(got.map((g) => g.length)).toEqual(pkts.map((p) => p.length));
    expect(Buffer.compare(got[42]!, pkts[42]!)).toBe(0);
    virtio.close();
    vhost.close();
  });

  it('cleans up: no hugepage files, no runtime dir; the EAL cannot be initialised again', () => {
    const removed = eal!.cleanup();
    // --in-memory: no hugepage file ever existed; only EAL's empty runtime dir was removed
    expect(removed.filter((f) => f.startsWith('/dev/hugepages'))).toEqual([]);
    expect(leftoverFiles(prefix)).toEqual([]);
    expect(existsSync(`/var/run/dpdk/${prefix}`)).toBe(false);
    expect(() => initEal({ filePrefix: prefix })).toThrow(/cannot initialise it twice/);
    expect(() => Mempool.create({ size: 1024 })).toThrow(EalStateError);
  });
});
