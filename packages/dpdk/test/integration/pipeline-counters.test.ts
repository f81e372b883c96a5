/**
 * What the benchmark reads from a pipeline: per-route hits of an LPM stage that counts them
 * (longest prefix wins, IPv4 /8 to /32 with tbl8 routes, and IPv6), busy cycles per part of the
 * burst and per stage (rte_rdtsc in the worker), and the burn stage whose known cost per packet
 * must show up in those cycles.
 */
import { describe, expect, it } from 'vitest';

import { Pipeline, buildPacket, type Port } from '../../src/index';
import { dataplaneReady } from '../support/env';
import { routingTable } from '../support/tables';
import { BACKOFF, drain, eachFileRig, sendAll, settle } from '../support/rig';

const rigOf = eachFileRig('pctr', 2);

describe.skipIf(dataplaneReady())('pipeline counters for benchmarks (root, hugepages)', () => {
  it('counts packets per route: the longest prefix gets them, in route order', async () => {
    const [a, b] = rigOf().ports as [Port, Port];
    const routes = [
      '10.0.0.0/8',
      '10.1.0.0/16',
      '10.1.2.0/24',
      '10.1.2.128/25', // tbl8
      '10.1.2.200/32', // tbl8
      '2001:db8::/32',
      '2001:db8:1::/48',
    ];
    const table = routingTable({
      nextHops: [{ port: b.id, mac: '02:00:00:00:00:01' }],
      routes: routes.map((prefix) => ({ prefix, nextHop: 0 })),
    });
    const p = Pipeline.create({
      inputs: [a],
      backoff: BACKOFF,
      stages: [{ kind: 'lpm', name: 'rt', table, noRoute: 'drop', countHits: true }],
    });
    try {
      p.start();
      // destination -> packets; expected hits per route follow
      const sends: [string, number][] = [
        ['10.9.9.9', 3], // /8
        ['10.1.9.9', 5], // /16
        ['10.1.2.3', 7], // /24
        ['10.1.2.129', 11], // /25
        ['10.1.2.200', 13], // /32
        ['2001:db8:2::1', 2], // /32
        ['2001:db8:1::5', 4], // /48
        ['11.0.0.1', 6], // no route
      ];
      const pkts = sends.flatMap(([dst, k]) =>
        Array.from({ length: k }, (_, i) =>
          buildPacket({ src: dst.includes(':') ? '2001:db8:f::1' : '192.0.2.1', dst, sport: i }),
        ),
      );
      await sendAll(a, rigOf().pool, pkts);
      await settle(p, pkts.length);
      expect(Array.from(p.routeHits('rt'))).toEqual([3, 5, 7, 11, 13, 2, 4]);
      expect(drain(b)).toHaveLength(45);
      const c = p.cycles();
      expect(c.hz).toBeGreaterThan(1e8);
      expect(c.stages.map((s) => s.name)).toEqual(['rt']);
      expect(c.stages[0]!.cycles).toBeGreaterThan(0);
      expect(c.sampledPackets).toBeGreaterThan(0);
      expect(c.busy).toBeGreaterThanOrEqual(c.rx + c.parse + c.tx + c.stages[0]!.cycles);
    } finally {
      p.close();
    }
  });

  it('a table without countHits reports no route hits', () => {
    const [a, b] = rigOf().ports as [Port, Port];
    const p = Pipeline.create({
      inputs: [a],
      stages: [
        {
          kind: 'lpm',
          table: routingTable({ nextHops: [{ port: b.id, mac: '02:00:00:00:00:01' }], routes: [] }),
        },
      ],
    });
    try {
      expect(p.routeHits(0)).toHaveLength(0);
      expect(() =>
        Pipeline.create({ inputs: [a], stages: [{ kind: 'burn', cycles: -1 }] }),
      ).toThrow(/stages\[0\]\.cycles/);
    } finally {
      p.close();
    }
  });

  it('the burn stage costs what it says, and the busy cycles show it', async () => {
    const [a, b] = rigOf().ports as [Port, Port];
    const BURN = 20_000;
    const p = Pipeline.create({
      inputs: [a],
      backoff: BACKOFF,
      stages: [
        { kind: 'burn', name: 'burn', cycles: BURN },
        { kind: 'l2fwd', forward: [{ from: a, to: b }] },
      ],
    });
    try {
      p.start();
      const pkts = Array.from({ length: 200 }, (_, i) =>
        buildPacket({ src: '192.0.2.1', dst: '198.51.100.1', sport: i }),
      );
      await sendAll(a, rigOf().pool, pkts);
      await settle(p, pkts.length);
      expect(drain(b)).toHaveLength(200);
      const c = p.cycles();
      // parts are timed in one burst of 16: per packet of those bursts
      const burn = c.stages.find((s) => s.name === 'burn')!.cycles / c.sampledPackets;
      // At least what it burns; no upper bound: a descheduled vCPU (or the sanitizer build) adds
      // any number of cycles, and how fast it runs is the benchmark's business, not a test's.
      expect(burn).toBeGreaterThanOrEqual(BURN);
      expect(c.busy / 200).toBeGreaterThanOrEqual(BURN);
    } finally {
      p.close();
    }
  });
});
