/**
 * Bounds the addon enforces where JavaScript hands it sizes and port ids (issue 15): ACL tables
 * at their largest (65,536 rules with no family = 131,072 native rules) with exact per-rule hits
 * of the current and of the retired table, built off the event loop; Port.send refusing frames
 * an mbuf cannot hold; l2fwd outputs, LPM next hops and inject ports refused at build time
 * unless the pipeline's worker can send on them.
 */
import { describe, expect, it } from 'vitest';

import {
  PacketBatch,
  Pipeline,
  PipelineError,
  type AclRule,
  PortError,
  buildPacket,
  devargs,
  Port,
} from '../../src/index';
import { native } from '../../src/native';
import { dataplaneReady, sleep } from '../support/env';
import { acl, routingTable } from '../support/tables';
import { BACKOFF, aclForward, drain, eachFileRig, sendAll, settle } from '../support/rig';

const rigOf = eachFileRig('bounds', 3);

describe.skipIf(dataplaneReady())('addon bounds (root, hugepages, net_ring ports)', () => {
  it('a 65,536-rule table with no family (131,072 native rules): exact hits of the last rules, now and when retired; built off the event loop', async () => {
    const [a, b] = rigOf().ports as [Port, Port];
    const p = aclForward(a, b, { defaultAction: 'deny' });
    try {
      p.start();
      // rule i permits UDP to port i, IPv4 and IPv6 (no family: two native rules each); the
      // match is made as parsed values, since the API's fields read port range 0-0 as any port
      const rules: AclRule[] = Array.from({ length: 65_536 }, (_, i) => ({
        id: `r${i}`,
        action: 'permit',
        match: { families: [4, 6], protocol: 17, dstPorts: [i, i] },
      }));
      let ticks = 0;
      const timer = setInterval(() => ticks++, 5);
      const t0 = Date.now();
      await p.updateAcl('fw', rules);
      const buildMs = Date.now() - t0;
      clearInterval(timer);
      // the event loop kept turning while the table was built (about one tick per 5 ms)
      expect(ticks).toBeGreaterThan(buildMs / 5 / 4);
      const last = (family: 4 | 6, dport: number): Buffer =>
        buildPacket(
          family === 4
            ? { src: '10.0.0.1', dst: '10.0.0.2', dport }
            : { src: '2001:db8::1', dst: '2001:db8::2', dport },
        );
      // rule 65535 is native rules 131070 (IPv4) and 131071 (IPv6); rule 40000 is 80000/80001
      const pkts = [
        ...Array.from({ length: 3 }, () => last(4, 65_535)),
        ...Array.from({ length: 4 }, () => last(6, 65_535)),
        ...Array.from({ length: 2 }, () => last(6, 40_000)),
        buildPacket({ src: '10.0.0.1', dst: '10.0.0.2', proto: 'tcp', dport: 80 }), // default
      ];
      await sendAll(a, rigOf().pool, pkts);
      await settle(p, pkts.length);
      expect(drain(b)).toHaveLength(9);
      const hits = p.aclHits('fw');
      expect(hits).toHaveLength(65_537);
      expect(hits[65_535]).toEqual({ id: 'r65535', hits: 7 });
      expect(hits[40_000]).toEqual({ id: 'r40000', hits: 2 });
      expect(hits[65_536]).toEqual({ id: 'default', hits: 1 });
      expect(hits.reduce((s, h) => s + h.hits, 0)).toBe(pkts.length);
      // the retired table's counters are all there, none cut off at 65,537 native rules
      const { retired } = await p.updateAcl('fw', [{ id: 'all', action: 'permit' }]);
      expect(retired).toHaveLength(65_537);
      expect(retired[65_535]).toEqual({ id: 'r65535', hits: 7 });
      expect(retired[40_000]).toEqual({ id: 'r40000', hits: 2 });
      expect(retired.reduce((s, h) => s + h.hits, 0)).toBe(pkts.length);
      expect(p.aclHits('fw')).toEqual([
        { id: 'all', hits: 0 },
        { id: 'default', hits: 0 },
      ]);
    } finally {
      p.close();
    }
  }, 120_000);

  it('refuses a table of more native rules than it holds, naming the rules, and keeps the old one', async () => {
    const [a, b] = rigOf().ports as [Port, Port];
    const p = aclForward(a, b, { rules: acl([{ id: 'udp', action: 'permit', protocol: 'udp' }]) });
    try {
      const tooMany = acl(Array.from({ length: 131_073 }, () => ({ action: 'deny' as const })));
      await expect(p.updateAcl('fw', tooMany)).rejects.toThrow(PipelineError);
      await expect(p.updateAcl('fw', tooMany)).rejects.toThrow(
        /stages\[fw\]\.rules: 131073 rules compile to 262146 native rules.*at most 262144/,
      );
      // an initial table too large to build on the event loop is refused by Pipeline.create
      expect(() =>
        Pipeline.create({
          inputs: [a],
          stages: [
            { kind: 'acl', rules: Array.from({ length: 2049 }, () => ({ action: 'deny' })) },
          ],
        }),
      ).toThrow(/stages\[0\]\.rules: 4098 native rules are too many to build in Pipeline\.create/);
      expect(p.aclHits('fw').map((h) => h.id)).toEqual(['udp', 'default']);
    } finally {
      p.close();
    }
  });

  it('Port.send refuses frames an mbuf cannot hold with a PortError naming the length and the room; the pool loses nothing', () => {
    const { pool, ports } = rigOf();
    const [a] = ports as [Port];
    const room = pool.info().dataRoom - 128;
    const before = pool.info().available;
    for (const len of [65_536, 70_000, room + 1]) {
      const frame = Buffer.alloc(len, 0xab);
      let err: unknown;
      try {
        a.send(0, pool, [buildPacket({ src: '10.0.0.1', dst: '10.0.0.2' }), frame]);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(PortError);
      expect((err as PortError).message).toContain(`packet 1 is ${len} bytes`);
      expect((err as PortError).message).toContain(`holds at most ${room}`);
      expect((err as PortError).errno).toBe(90); // EMSGSIZE
    }
    expect(pool.info().available).toBe(before);
    // the largest frame that fits goes out whole
    expect(a.send(0, pool, [Buffer.alloc(room, 0xcd)])).toBe(1);
    const got = a.receive(0);
    expect(got.map((f) => f.length)).toEqual([room]);
    expect(got[0]!.every((x) => x === 0xcd)).toBe(true);
  });

  it('Port.send checks every frame before it sends any: a frame too long after 256 good ones is refused by its index, and none goes out', () => {
    const { pool, ports } = rigOf();
    const [a] = ports as [Port];
    const room = pool.info().dataRoom - 128;
    const before = pool.info().available;
    const small = Array.from({ length: 300 }, (_, i) =>
      buildPacket({ src: '10.0.0.1', dst: '10.0.0.2', sport: i }),
    );
    for (const at of [256, 299]) {
      const frames = [...small.slice(0, at), Buffer.alloc(70_000, 0xab)];
      expect(() => a.send(0, pool, frames)).toThrow(PortError);
      expect(() => a.send(0, pool, frames)).toThrow(
        new RegExp(`packet ${at} is 70000 bytes but an mbuf of this pool holds at most ${room}`),
      );
    }
    expect(drain(a)).toEqual([]); // not the 256 before it
    expect(pool.info().available).toBe(before);
    // more than a burst of good frames goes out whole, in order
    expect(a.send(0, pool, small)).toBe(300);
    expect(drain(a).map((f) => f.readUInt16BE(34))).toEqual(small.map((_, i) => i));
  });

  it('refuses back-off settings out of range, naming the field; takes the extremes', () => {
    const [a, b] = rigOf().ports as [Port, Port];
    const create = (backoff: Record<string, unknown>, rxMode?: 'adaptive') =>
      Pipeline.create({
        inputs: [a],
        backoff,
        ...(rxMode ? { rxMode } : {}),
        stages: [{ kind: 'l2fwd', forward: [{ from: a, to: b }] }],
      });
    for (const [backoff, field] of [
      [{ spinPolls: -1 }, 'spinPolls'],
      [{ spinPolls: 1.5 }, 'spinPolls'],
      [{ spinPolls: 2 ** 32 }, 'spinPolls'],
      [{ sleepMaxUs: 1_000_001 }, 'sleepMaxUs'],
      [{ sleepMaxUs: 2 ** 32 - 1 }, 'sleepMaxUs'], // a worker asleep 71 minutes: stop waits
      [{ sleepMinUs: 600 }, 'sleepMinUs'], // above the default sleepMaxUs (500)
      [{ sleepMinUs: 20, sleepMaxUs: 10 }, 'sleepMinUs'],
      [{ interruptWaitMs: 0 }, 'interruptWaitMs'],
      [{ interruptWaitMs: 3_000_000_000 }, 'interruptWaitMs'], // a negative int to epoll_wait
      [{ shareCore: 'yes' }, 'shareCore'],
    ] as const) {
      expect(() => create(backoff)).toThrow(PipelineError);
      expect(() => create(backoff, 'adaptive')).toThrow(new RegExp(`^backoff\\.${field}: `));
    }
    // the extremes go
    for (const backoff of [
      { spinPolls: 2 ** 32 - 1, sleepMinUs: 0, sleepMaxUs: 1_000_000, interruptWaitMs: 60_000 },
      { spinPolls: 0, sleepMinUs: 1_000_000, sleepMaxUs: 1_000_000, interruptWaitMs: 1 },
    ])
      create(backoff, 'adaptive').close();
  });

  it('the native side bounds the back-off it is given however JavaScript checked it: a stop waits for a sleep of at most 1 s', async () => {
    const [a, b] = rigOf().ports as [Port, Port];
    const n = native();
    // a 10 s sleep, the first thing the idle worker does (what the addon takes, past the checks)
    const handle = n.pipelineCreate({
      burst: 32,
      backoff: { spinPolls: 0, sleepMinUs: 10_000_000, sleepMaxUs: 10_000_000 },
      puntRingSize: 1024,
      injectRingSize: 1024,
      workers: [{ lcore: 1, txQueue: 0, inputs: [{ port: a.id, queue: 0 }] }],
    });
    try {
      n.pipelineAddStage(handle, 'l2fwd', { map: [{ in: a.id, out: b.id }], rewrite: [] });
      n.pipelineStart(handle);
      await sleep(50);
      const t0 = Date.now();
      n.pipelineStop(handle);
      expect(Date.now() - t0).toBeLessThan(2500);
    } finally {
      n.pipelineFree(handle);
    }
  });

  it('refuses l2fwd outputs, LPM next hops and inject ports the worker cannot send on, naming the field; nothing is left half-made', async () => {
    const { pool, ports } = rigOf();
    const [a, b, c] = ports as [Port, Port, Port];
    // l2fwd to a port id that is not attached (an id in 32..63 passed the old < 64 check)
    expect(() =>
      Pipeline.create({
        inputs: [a],
        stages: [
          {
            kind: 'l2fwd',
            forward: [
              { from: a, to: b },
              { from: b, to: 40 },
            ],
          },
        ],
      }),
    ).toThrow(/stages\[0\]\.forward\[1\]\.to: port 40 is not an attached port/);
    expect(() =>
      Pipeline.create({ inputs: [a], stages: [{ kind: 'l2fwd', forward: [{ from: a, to: 64 }] }] }),
    ).toThrow(/stages\[0\]\.forward\[0\]\.to: port 64 is not a port id 0\.\.63/);
    // an rx queue the port does not have (rte_eth_rx_burst would hand the driver a NULL queue),
    // an rx queue or a tx queue two workers share, and ring sizes rte_ring cannot take
    const burn = [{ kind: 'burn' as const, cycles: 0 }];
    expect(() =>
      Pipeline.create({
        layout: [{ lcore: 1, txQueue: 0, inputs: [{ port: a, queue: 1 }] }],
        stages: burn,
      }),
    ).toThrow(/layout: worker 0 input 0: port \d+ has 1 rx queues, not queue 1/);
    expect(() =>
      Pipeline.create({
        layout: [
          { lcore: 1, txQueue: 0, inputs: [{ port: a, queue: 0 }] },
          { lcore: 2, txQueue: 1, inputs: [{ port: a, queue: 0 }] },
        ],
        stages: burn,
      }),
    ).toThrow(/rx queue 0 of port \d+ is polled twice \(worker 0 and 1\)/);
    expect(() =>
      Pipeline.create({
        layout: [
          { lcore: 1, txQueue: 0, inputs: [{ port: a, queue: 0 }] },
          { lcore: 2, txQueue: 0, inputs: [{ port: b, queue: 0 }] },
        ],
        stages: burn,
      }),
    ).toThrow(/workers 0 and 1 both send on tx queue 0/);
    expect(() =>
      Pipeline.create({
        layout: [{ lcore: 1, txQueue: 65_536, inputs: [{ port: a, queue: 0 }] }],
        stages: burn,
      }),
    ).toThrow(/layout\[0\]\.txQueue: 65536 is not a queue number/);
    for (const puntRingSize of [1, 3e9])
      expect(() => Pipeline.create({ inputs: [a], puntRingSize, stages: burn })).toThrow(
        `puntRingSize: ${puntRingSize} is not a ring size in 2..16777216`,
      );
    // a port without the worker's tx queue (worker 0 sends on tx queue 1, the ports have one)
    const layout = [{ lcore: 1, txQueue: 1, inputs: [{ port: a, queue: 0 }] }];
    expect(() =>
      Pipeline.create({ layout, stages: [{ kind: 'l2fwd', forward: [{ from: a, to: b }] }] }),
    ).toThrow(/stages\[0\]\.forward\[0\]\.to: port \d+ has 1 tx queues; worker 0 .* tx queue 1/);
    // an LPM next hop with its own source MAC on a port that does not exist
    const p = Pipeline.create({
      inputs: [a],
      backoff: BACKOFF,
      stages: [
        {
          kind: 'lpm',
          name: 'rt',
          noRoute: 'drop',
          table: routingTable({ nextHops: [{ port: b.id, mac: '02:00:00:00:00:0b' }], routes: [] }),
        },
      ],
    });
    try {
      p.start();
      const bad = routingTable({
        nextHops: [
          { port: c.id, mac: '02:00:00:00:00:0c' },
          { port: 33, mac: '02:00:00:00:00:21', srcMac: '02:00:00:00:00:22' },
        ],
        routes: [
          { prefix: '10.0.0.0/8', nextHop: 0 },
          { prefix: '10.9.0.0/16', nextHop: 1 },
        ],
      });
      expect(() => p.updateRoutes('rt', bad)).toThrow(PipelineError);
      expect(() => p.updateRoutes('rt', bad)).toThrow(
        /stages\[rt\]\.table\.nextHops\[1\]\.port: port 33 is not an attached port/,
      );
      // the old table stays: 10.9.1.1 has no route (dropped), nothing went to port 33
      await sendAll(a, pool, [buildPacket({ src: '10.1.1.1', dst: '10.9.1.1' })]);
      await settle(p, 1);
      expect(p.counters().stages[0]!.drops).toEqual({ no_route: 1 });
      // inject to a port the pipeline cannot send on
      const batch = new PacketBatch(pool, 4);
      try {
        expect(() => p.inject(batch, 47)).toThrow(/^port: port 47 is not an attached port/);
      } finally {
        batch.free();
      }
    } finally {
      p.close();
    }
    // a port opened later is a valid next hop
    const d = Port.open(devargs.ring({ id: 'blate' }), pool);
    try {
      const q = Pipeline.create({
        inputs: [a],
        stages: [
          {
            kind: 'lpm',
            table: routingTable({
              nextHops: [{ port: d.id, mac: '02:00:00:00:00:0d' }],
              routes: [],
            }),
          },
        ],
      });
      q.close();
    } finally {
      d.close();
    }
  });
});
