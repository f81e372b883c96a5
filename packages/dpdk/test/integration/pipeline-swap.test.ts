/**
 * Table swaps under continuous traffic: a sender thread keeps sending known flows while the
 * ACL and the LPM tables are replaced again and again by versions that are built differently
 * (filler rules and routes, split prefixes, reordered next hops) but decide every flow the same
 * way. At the end every packet is accounted for, exactly: none lost, none misclassified, none
 * misrouted, and the per-rule hits of all retired tables plus the live one add up.
 */
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';

import {
  MAX_ACL_PRIORITY,
  Mempool,
  Pipeline,
  Port,
  buildPacket,
  currentEal,
  devargs,
  type PacketSpec,
} from '../../src/index';
import { addonFile } from '../../src/native';
import { dataplaneReady, sleep } from '../support/env';
import { acl, routingTable, type TestRule } from '../support/tables';
import { eachFileEal, settle } from '../support/rig';

eachFileEal('pswap');

type Fate = 'B' | 'C' | 'deny' | 'default' | 'no_route';
const FLOWS: [PacketSpec, Fate][] = [
  [{ src: '10.1.1.1', dst: '192.0.2.1', dport: 7 }, 'deny'],
  [{ src: '10.1.1.1', dst: '192.0.2.200', dport: 80 }, 'B'],
  [{ src: '10.200.1.1', dst: '198.51.100.1', proto: 'tcp', dport: 443 }, 'C'],
  [{ src: '11.0.0.1', dst: '192.0.2.1', dport: 80 }, 'default'],
  [{ src: '2001:db8:1::1', dst: '2001:db8:aaaa::1', dport: 80 }, 'B'],
  [{ src: '2001:db8:1::1', dst: '2001:db8:bbbb::1', dport: 7 }, 'deny'],
  [{ src: '2001:db9::1', dst: '2001:db8:bbbb::1', proto: 'tcp' }, 'default'],
  [{ src: '10.1.1.1', dst: '203.0.113.9', dport: 80 }, 'no_route'],
  [{ src: '2001:db8:ffff::1', dst: '2001:db8:bbbb::2', dport: 80 }, 'C'],
];

const ACL_A = acl([
  { id: 'deny:7', action: 'deny', protocol: 'udp', dstPorts: { first: 7, last: 7 } },
  { id: 'permit:10/8', action: 'permit', srcPrefix: '10.0.0.0/8' },
  { id: 'permit:v6', action: 'permit', srcPrefix: '2001:db8::/32' },
]);
const ACL_B = acl([
  ...Array.from({ length: 300 }, (_, i): TestRule => ({
    id: `filler:${i}`,
    action: i % 2 ? 'deny' : 'permit',
    protocol: 'tcp',
    srcPrefix: `172.${16 + (i >> 8)}.${i & 255}.0/24`,
    dstPorts: { first: i, last: i + 100 },
  })),
  { id: 'permit:10-lo', action: 'permit', srcPrefix: '10.0.0.0/9' },
  { id: 'permit:10-hi', action: 'permit', srcPrefix: '10.128.0.0/9' },
  // listed late, but its priority puts it above the permits
  {
    id: 'deny:7b',
    action: 'deny',
    protocol: 'udp',
    dstPorts: { first: 7, last: 7 },
    priority: MAX_ACL_PRIORITY,
  },
  { id: 'permit:v6-lo', action: 'permit', srcPrefix: '2001:db8::/33' },
  { id: 'permit:v6-hi', action: 'permit', srcPrefix: '2001:db8:8000::/33' },
]);

function lpmA(b: Port, c: Port) {
  return routingTable({
    nextHops: [
      { port: b.id, mac: '02:0b:00:00:00:01' },
      { port: c.id, mac: '02:0c:00:00:00:01' },
    ],
    routes: [
      { prefix: '192.0.2.0/24', nextHop: 0 },
      { prefix: '198.51.100.0/24', nextHop: 1 },
      { prefix: '2001:db8:aaaa::/48', nextHop: 0 },
      { prefix: '2001:db8:bbbb::/48', nextHop: 1 },
    ],
  });
}

/** The same decisions as lpmA, from split prefixes, swapped next-hop indices and fillers. */
function lpmB(b: Port, c: Port) {
  return routingTable({
    nextHops: [
      { port: c.id, mac: '02:0c:00:00:00:01' },
      { port: b.id, mac: '02:0b:00:00:00:01' },
    ],
    routes: [
      ...Array.from({ length: 2000 }, (_, i) => ({
        prefix: `100.${64 + (i >> 8)}.${i & 255}.0/24`,
        nextHop: i % 2,
      })),
      ...Array.from({ length: 500 }, (_, i) => ({
        prefix: `2001:db8:f:${i.toString(16)}::/64`,
        nextHop: i % 2,
      })),
      { prefix: '192.0.2.0/25', nextHop: 1 },
      { prefix: '192.0.2.128/25', nextHop: 1 },
      { prefix: '198.51.100.0/24', nextHop: 0 },
      { prefix: '2001:db8:aaaa::/48', nextHop: 1 },
      { prefix: '2001:db8:bbbb::/48', nextHop: 0 },
    ],
  });
}

const category = (id: string): string => id.split(':')[0]!;

describe.skipIf(dataplaneReady())('table swaps under continuous traffic (root, hugepages)', () => {
  it('replaces ACL and LPM tables 40 times while a sender sends; loses and misclassifies nothing', async () => {
    const pool = Mempool.create({ size: 16383 });
    const a = Port.open(devargs.ring({ id: 'sw0' }), pool);
    // null ports take every packet they are given, so nothing is lost at the output and their
    // tx counters say exactly where each packet went
    const b = Port.open(devargs.null({ id: 'swb' }), pool);
    const c = Port.open(devargs.null({ id: 'swc' }), pool);
    const p = Pipeline.create({
      inputs: [a],
      backoff: { spinPolls: 1024, sleepMinUs: 5, sleepMaxUs: 50 },
      stages: [
        { kind: 'acl', name: 'fw', rules: ACL_A, defaultAction: 'deny' },
        { kind: 'lpm', name: 'rt', table: lpmA(b, c), noRoute: 'drop' },
      ],
    });
    const stop = new SharedArrayBuffer(4);
    const hits = new Map<string, number>();
    const addHits = (list: { id: string; hits: number }[]): void => {
      for (const h of list) hits.set(category(h.id), (hits.get(category(h.id)) ?? 0) + h.hits);
    };
    let sender: Worker | undefined;
    try {
      p.start();
      // its worker lcore is taken: no round-trip measurement may start on it
      expect(() => currentEal()?.lcoreRoundTrip(1)).toThrow(/lcore 1 is busy/);
      sender = new Worker(path.join(__dirname, '../support/sender-thread.mjs'), {
        workerData: {
          addon: addonFile(), // the same copy of the addon as this thread's
          port: a.id,
          pool: pool.handle,
          burst: 32,
          stop,
          frames: FLOWS.map(([spec]) => buildPacket(spec)),
        },
      });
      const report = new Promise<{ sent: number; perFrame: number[] }>((resolve, reject) => {
        sender!.once('message', resolve);
        sender!.once('error', reject);
      });
      const rxAt = (): number => p.counters().rx;
      const start = Date.now();
      while (rxAt() < 20_000 && Date.now() - start < 10_000) await sleep(2);
      let during = 0;
      const swaps = 40;
      for (let i = 0; i < swaps; i++) {
        const before = rxAt();
        if (i % 2 === 0) addHits((await p.updateAcl('fw', i % 4 === 0 ? ACL_B : ACL_A)).retired);
        else p.updateRoutes('rt', i % 4 === 1 ? lpmB(b, c) : lpmA(b, c));
        if (rxAt() > before) during++;
        await sleep(1);
      }
      Atomics.store(new Int32Array(stop), 0, 1);
      const { sent, perFrame } = await report;
      await settle(p, sent, 20_000);
      addHits(p.aclHits('fw'));

      const want: Record<Fate, number> = { B: 0, C: 0, deny: 0, default: 0, no_route: 0 };
      FLOWS.forEach(([, fate], i) => (want[fate] += perFrame[i]!));
      const ctr = p.counters();
      expect(sent).toBeGreaterThan(100_000);
      // the swaps happened while packets were being classified
      expect(during).toBeGreaterThanOrEqual(swaps / 2);
      expect(ctr.rx).toBe(sent);
      expect(ctr.drops).toEqual({});
      expect(ctr.stages[0]).toMatchObject({
        in: sent,
        out: sent - want.deny - want.default,
        drops: { acl_deny: want.deny + want.default },
        punts: {},
      });
      expect(ctr.stages[1]).toMatchObject({
        in: want.B + want.C + want.no_route,
        out: want.B + want.C,
        drops: { no_route: want.no_route },
        punts: {},
      });
      expect(ctr.tx).toBe(want.B + want.C);
      expect(b.stats().txPackets).toBe(want.B);
      expect(c.stats().txPackets).toBe(want.C);
      expect(Object.fromEntries(hits)).toEqual({
        deny: want.deny,
        permit: want.B + want.C + want.no_route,
        default: want.default,
        filler: 0,
      });
      expect(pool.info().inUse).toBe(0);
    } finally {
      Atomics.store(new Int32Array(stop), 0, 1);
      await sender?.terminate();
      p.close();
    }
  }, 120_000);
});
