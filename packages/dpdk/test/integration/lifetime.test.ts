/**
 * Lifetimes the JavaScript API enforces where DPDK would not: a queue that was never set up
 * (rte_eth_rx_burst and tx_burst do not check it), a port used after close (DPDK hands its id to
 * the next port attached), a port closed while a pipeline, generator or replay polls or sends on
 * it, a mempool freed while a port, batch or poller still holds its mbufs,
 * a batch view of an mbuf the batch no longer owns or of another pool, and a probe that attached
 * a device without an ethdev port of its name.
 */
import { describe, expect, it } from 'vitest';

import {
  DpdkError,
  FrameReplay,
  Mempool,
  PacketBatch,
  PipelineError,
  Port,
  PortError,
  TrafficGenError,
  TrafficGenerator,
  buildPacket,
  devargs,
} from '../../src/index';
import { dataplaneReady } from '../support/env';
import { aclForward, drain, eachFileEal, lpmPipeline, sendAll, settle } from '../support/rig';
import { routingTable } from '../support/tables';

eachFileEal('lifetime');

describe.skipIf(dataplaneReady())('JS API lifetimes (root, hugepages, net_ring ports)', () => {
  it('refuses queues the port does not have, on every queue-taking call', () => {
    const pool = Mempool.create({ size: 1023 });
    const port = Port.open(devargs.ring({ id: 'ltq' }), pool, { rxQueues: 2, txQueues: 1 });
    const batch = new PacketBatch(pool, 8);
    const frame = buildPacket({ src: '10.0.0.1', dst: '10.0.0.2' });
    try {
      expect(() => port.rxBurst(2, batch)).toThrow(PortError);
      expect(() => port.rxBurst(2, batch)).toThrow(
        /rx queue 2 does not exist: the port has 2 rx queues$/,
      );
      expect(() => port.rxBurst(-1, batch)).toThrow(/rx queue -1 does not exist/);
      expect(() => port.rxBurst(0.5, batch)).toThrow(/rx queue 0.5 does not exist/);
      expect(() => port.txBurst(1, batch)).toThrow(
        /tx queue 1 does not exist: the port has 1 tx queue$/,
      );
      // 65,536 would wrap to queue 0 in the addon's 16-bit argument
      expect(() => port.txBurst(65_536, batch)).toThrow(/tx queue 65536 does not exist/);
      expect(() => port.send(1, pool, [frame])).toThrow(/tx queue 1 does not exist/);
      expect(() => port.receive(3)).toThrow(/rx queue 3 does not exist/);
      expect(() => port.rxArm(2)).toThrow(/rx queue 2 does not exist/);
      expect(() => port.rxWait(7, 1)).toThrow(/rx queue 7 does not exist/);
      // the queues it has work: tx queue 0 loops back to the ring's rx queue 0
      expect(port.send(0, pool, [frame])).toBe(1);
      expect(port.rxBurst(0, batch)).toBe(1);
      expect(port.txBurst(0, batch)).toBe(1);
      expect(port.receive(0)).toHaveLength(1);
    } finally {
      batch.free();
      port.close();
    }
  });

  it('a closed port refuses every call, even once DPDK gave its id to another port', () => {
    const pool = Mempool.create({ size: 1023 });
    const first = Port.open(devargs.ring({ id: 'ltc1' }), pool);
    const id = first.id;
    first.close();
    const second = Port.open(devargs.ring({ id: 'ltc2' }), pool);
    try {
      expect(second.id).toBe(id); // the precondition that makes a stale handle dangerous
      for (const call of [
        () => first.mac(),
        () => first.stats(),
        () => first.info(),
        () => first.link(),
        () => first.start(),
        () => first.setPromiscuous(true),
        () => first.resetStats(),
        () => first.receive(0),
        () => first.send(0, pool, [buildPacket({ src: '10.0.0.1', dst: '10.0.0.2' })]),
      ])
        expect(call).toThrow(/net_ringltc1: the port was closed/);
      // the stale handle would have read and sent on the new port
      expect(second.info().name).toBe('net_ringltc2');
      expect(second.stats().txPackets).toBe(0);
    } finally {
      second.close();
    }
  });

  it('a port is not closed while a pipeline, generator or replay polls or sends on it', async () => {
    const pool = Mempool.create({ size: 4095 });
    const open = (id: string): Port => Port.open(devargs.ring({ id }), pool);
    const [input, output, hop, hop2, injected] = ['ui', 'uo', 'uh', 'uh2', 'uj'].map(open) as [
      Port,
      Port,
      Port,
      Port,
      Port,
    ];
    const fw = aclForward(input, output, { defaultAction: 'permit' });
    const rt = lpmPipeline(hop2, {
      table: routingTable({
        nextHops: [{ port: hop.id, mac: '02:00:00:00:00:0b' }],
        routes: [{ prefix: '0.0.0.0/0', nextHop: 0 }],
      }),
    });
    const refused = (port: Port, by: RegExp): void => {
      expect(() => port.close()).toThrow(PortError);
      expect(() => port.close()).toThrow(by);
      expect(port.isClosed).toBe(false);
    };
    try {
      // an input and an output of a pipeline (created, not started: it could start any time)
      refused(input, /^port net_ringui: still used by a pipeline on lcore 1: close them first$/);
      refused(output, /net_ringuo: still used by a pipeline on lcore 1/);
      // an LPM next hop, until a new table no longer sends there (given as a port id)
      refused(hop, /net_ringuh: still used by a pipeline on lcore 1/);
      fw.start();
      await sendAll(input, pool, [buildPacket({ src: '10.0.0.1', dst: '10.0.0.2' })]);
      await settle(fw, 1);
      expect(drain(output)).toHaveLength(1); // still open, still forwarding
      refused(input, /still used by a pipeline/);
      fw.close();
      input.close();
      output.close();
      // a closed port is refused as a pipeline's, by its field, not taken for its id's next owner
      const next = open('un');
      expect(next.id).toBe(input.id);
      expect(() => lpmPipeline(input, {})).toThrow(PipelineError);
      expect(() => lpmPipeline(input, {})).toThrow(/^inputs\[0\]: port net_ringui was closed$/);
      next.close(); // no pipeline was left registered with it
      rt.updateRoutes(
        'rt',
        routingTable({
          nextHops: [{ port: hop2.id, mac: '02:00:00:00:00:0c' }],
          routes: [{ prefix: '0.0.0.0/0', nextHop: 0 }],
        }),
      );
      hop.close();
      // a port a pipeline injected to (its inject ring may hold packets for it)
      const batch = new PacketBatch(pool, 4);
      try {
        expect(rt.inject(batch, injected)).toBe(0);
      } finally {
        batch.free();
      }
      refused(injected, /net_ringuj: still used by a pipeline/);
      rt.close();
      injected.close();
      // a generator's flow port and rx port; a replay's port
      const gen = TrafficGenerator.create({
        pool,
        flows: [
          {
            port: hop2,
            protocol: 'udp',
            srcIp: '10.0.0.1',
            dstIp: '10.0.0.2',
            srcPort: 1,
            dstPort: 2,
          },
        ],
      });
      refused(hop2, /net_ringuh2: still used by TrafficGenerator on lcore 1: close them first/);
      gen.close();
      const rx = open('ur');
      const sink = TrafficGenerator.create({ flows: [], rx: [{ port: rx.id }] });
      refused(rx, /net_ringur: still used by TrafficGenerator on lcore 1/);
      sink.close();
      rx.close();
      expect(() => TrafficGenerator.create({ flows: [], rx: [{ port: rx }] })).toThrow(
        TrafficGenError,
      );
      const replayPool = Mempool.create({ size: 1023 });
      const replay = FrameReplay.create({
        ports: [hop2],
        pool: replayPool,
        frames: [buildPacket({ src: '10.0.0.1', dst: '10.0.0.2' })],
      });
      refused(hop2, /net_ringuh2: still used by FrameReplay on lcore 1/);
      replay.close();
      hop2.close();
      replayPool.free();
    } finally {
      for (const x of [fw, rt]) x.close();
    }
  });

  it('a mempool is not freed while a port, a batch or its mbufs still use it', () => {
    const pool = Mempool.create({ size: 1023 });
    const port = Port.open(devargs.ring({ id: 'ltp' }), pool);
    const batch = new PacketBatch(pool, 8);
    expect(() => pool.free()).toThrow(DpdkError);
    expect(() => pool.free()).toThrow(/still used by port net_ringltp, a packet batch/);
    // the batch takes a packet, then the port goes: the mbuf in the batch still holds the pool
    expect(port.send(0, pool, [buildPacket({ src: '10.0.0.1', dst: '10.0.0.2' })])).toBe(1);
    expect(port.rxBurst(0, batch)).toBe(1);
    port.close();
    expect(() => pool.free()).toThrow(/still used by a packet batch/);
    batch.free(); // frees the packet it held
    pool.free();
    expect(pool.isFreed).toBe(true);
    // a freed pool is refused by a port before anything is configured, and the open rolls back
    expect(() => Port.open(devargs.ring({ id: 'ltp' }), pool)).toThrow(/mempool .* was freed/);
    const live = Mempool.create({ size: 1023 });
    const again = Port.open(devargs.ring({ id: 'ltp' }), live);
    again.close();
  });

  it('mbufs out of a pool keep it from being freed even with no user registered', () => {
    const pool = Mempool.create({ size: 1023 });
    const other = Mempool.create({ size: 1023 });
    const port = Port.open(devargs.ring({ id: 'lto' }), other);
    try {
      // send copies into mbufs of `pool`; they wait in the ring port, whose rx uses `other`
      expect(port.send(0, pool, [buildPacket({ src: '10.0.0.1', dst: '10.0.0.2' })])).toBe(1);
      expect(() => pool.free()).toThrow(/still has 1 mbufs out/);
      expect(port.receive(0)).toHaveLength(1);
      pool.free();
    } finally {
      port.close();
    }
  });

  it('batch views: none past the packets it holds, none of another pool', () => {
    const pool = Mempool.create({ size: 1023 });
    const other = Mempool.create({ size: 1023 });
    const port = Port.open(devargs.ring({ id: 'ltv' }), pool);
    const batch = new PacketBatch(pool, 8);
    const foreign = new PacketBatch(other, 8);
    try {
      // nothing received yet: no view (the meta array starts at offset 0, the pool's first byte)
      expect(() => batch.packet(0)).toThrow(/packet 0 is not viewable/);
      const frame = buildPacket({ src: '10.0.0.1', dst: '10.0.0.2' });
      expect(port.send(0, pool, [frame, frame])).toBe(2);
      expect(port.rxBurst(0, batch)).toBe(2);
      expect(Buffer.from(batch.packet(1))).toEqual(frame);
      expect(() => batch.packet(2)).toThrow(/packet 2 is not viewable/);
      expect(() => batch.packet(8)).toThrow(/packet 8 is not viewable/);
      expect(() => batch.packet(-1)).toThrow(/packet -1 is not viewable/);
      expect(port.txBurst(0, batch)).toBe(2);
      // sent: the mbufs belong to the ring now and will be reused, so no view of them
      expect(() => batch.packet(0)).toThrow(/packet 0 is not viewable/);
      expect(() => batch.packet(1)).toThrow(/packet 1 is not viewable/);
      expect(port.rxBurst(0, batch)).toBe(2);
      batch.release();
      expect(() => batch.packet(0)).toThrow(/packet 0 is not viewable/);
      // a batch over another pool would index that pool's memory with this pool's offsets
      expect(port.send(0, pool, [frame])).toBe(1);
      expect(() => port.rxBurst(0, foreign)).toThrow(
        /the batch views mempool fl_pool_\d+_\d+ but the rx queues receive into fl_pool_/,
      );
      expect(port.receive(0)).toHaveLength(1);
    } finally {
      foreign.free();
      batch.free();
      port.close();
    }
  });

  it("a punted packet of another pool than the batch's is held but not viewable", async () => {
    const pool = Mempool.create({ size: 2047 });
    const other = Mempool.create({ size: 1023 });
    const port = Port.open(devargs.ring({ id: 'ltpunt' }), pool);
    const p = lpmPipeline(port, {
      table: routingTable({ nextHops: [{ port: port.id, mac: '02:00:00:00:00:0b' }], routes: [] }),
      noRoute: 'punt',
    });
    const own = new PacketBatch(pool, 8);
    const foreign = new PacketBatch(other, 1);
    try {
      p.start();
      const frame = buildPacket({ src: '192.0.2.1', dst: '11.0.0.1' });
      await sendAll(port, pool, [frame, frame]);
      await settle(p, 2);
      expect(p.punted(foreign)).toBe(1);
      expect(p.punted(own)).toBe(1);
      // the offsets are into `pool`; the foreign batch's view is `other`'s memory
      expect(() => foreign.packet(0)).toThrow(/packet 0 is not viewable/);
      expect(Buffer.from(own.packet(0))).toEqual(frame);
    } finally {
      p.close();
      foreign.free();
      own.free();
      port.close();
    }
  });

  it('a probe that attached no ethdev port of its name is removed again', () => {
    const pool = Mempool.create({ size: 1023 });
    // crypto_null is a vdev the bus attaches, but it makes a cryptodev, not an ethdev port
    expect(() => Port.open('crypto_null_lt0', pool)).toThrow(
      /was probed but no ethdev port is named "crypto_null_lt0" \(device removed again\)/,
    );
    // removed: the same name is probed afresh, so the driver reads (and refuses) the arguments;
    // a device left attached would make DPDK skip the probe and never look at them
    expect(() => Port.open('crypto_null_lt0,max_nb_queue_pairs=x', pool)).toThrow(
      /rte_dev_probe\("crypto_null_lt0,max_nb_queue_pairs=x"\) failed.*Failed to parse initialisation arguments/,
    );
    expect(() => pool.free()).not.toThrow();
  });
});
