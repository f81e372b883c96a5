/**
 * The native generator and sink on real DPDK ports (root, hugepages): net_ring loopback ports
 * and a net_vhost <-> net_virtio_user pair over a vhost-user socket in one process. Exact per-flow
 * counts, frames checked byte by byte against an independent checksum implementation, loss,
 * duplicates and reordering from crafted sequences, latency present and ordered. One EAL per
 * file (this file is one process), one poller.
 */
import { existsSync, rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Mempool,
  Port,
  TrafficGenError,
  TrafficGenerator,
  buildPacket,
  devargs,
  frameSizeOf,
  initEal,
  type Eal,
  type GenFlowSpec,
  type TrafficResults,
  leftoverFiles,
} from '@flowline/dpdk';
import { internetChecksum, pseudoHeaderSum } from '@flowline/packet';

const root = process.getuid?.() === 0 && existsSync('/dev/hugepages');
const prefix = `fltest-tg-${process.pid}`;
const sock = `/tmp/fltest-tg-${process.pid}.sock`;
let eal: Eal | undefined;
let pool: Mempool;

function scrub(): void {
  for (const f of leftoverFiles(prefix, { match: 'family' }))
    rmSync(f, { recursive: true, force: true });
  rmSync(sock, { force: true });
}

async function until(fn: () => boolean, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (fn()) return true;
    await new Promise((r) => setTimeout(r, 10));
  }
  return fn();
}

/** Runs a generator until every count-limited flow is sent and received (or timeout), then stops it. */
async function runToCompletion(g: TrafficGenerator, expectRx: number[]): Promise<TrafficResults> {
  g.start();
  try {
    await until(() => {
      const r = g.results({ latency: false });
      return r.txDone && expectRx.every((n, i) => (r.flows[i]?.rxPackets ?? 0) >= n);
    }, 20_000);
  } finally {
    g.stop();
  }
  return g.results();
}

function bytesOf(f: GenFlowSpec, family: 4 | 6, n: number): number {
  let sum = 0;
  for (let s = 0; s < n; s++) sum += frameSizeOf(f.size, family, f.protocol, s);
  return sum;
}

beforeAll(() => {
  if (!root) return;
  scrub();
  eal = initEal({ filePrefix: prefix, lcores: [0, 1] });
  pool = Mempool.create({ size: 8191 });
});

afterAll(() => {
  eal?.cleanup();
  scrub();
});

describe.skipIf(!root)('traffic generator and sink on DPDK vdev ports (root, hugepages)', () => {
  it('sends exactly count packets per flow and the sink counts each flow exactly, with latency', async () => {
    const ring = Port.open(devargs.ring({ id: 'tg0' }), pool);
    try {
      const N = 1000;
      const flows: (GenFlowSpec & { family: 4 | 6 })[] = (
        [
          { family: 4, protocol: 'udp', size: 64 },
          { family: 4, protocol: 'tcp', size: 200 },
          { family: 6, protocol: 'udp', size: 'imix' },
          { family: 6, protocol: 'tcp', size: 1518 },
        ] as const
      ).map((f, i) => ({
        ...f,
        port: ring,
        srcIp: f.family === 4 ? '10.0.0.1' : 'fd00::1',
        dstIp: f.family === 4 ? '10.0.1.1' : 'fd00::2',
        srcPort: 1000 + i,
        dstPort: 2000 + i,
        ratePps: 20_000,
        count: N,
      }));
      const g = TrafficGenerator.create({ pool, flows, rx: [{ port: ring }] });
      const r = await runToCompletion(g, [N, N, N, N]);
      g.close();
      expect(r.flows).toHaveLength(4);
      for (const [i, f] of r.flows.entries()) {
        const bytes = bytesOf(flows[i]!, flows[i]!.family, N);
        expect(f).toMatchObject({
          flow: i,
          txPackets: N,
          txDone: true,
          rxPackets: N,
          expected: N,
          lost: 0,
          duplicates: 0,
          reordered: 0,
          txBytes: bytes,
          rxBytes: bytes,
        });
        const l = f.latency!;
        expect(l.samples).toBe(N);
        expect(l.minNs).toBeGreaterThan(0);
        expect(l.minNs).toBeLessThanOrEqual(l.p50Ns);
        expect(l.p50Ns).toBeLessThanOrEqual(l.p99Ns);
        expect(l.p99Ns).toBeLessThanOrEqual(l.maxNs);
        expect(l.meanNs).toBeLessThanOrEqual(l.maxNs);
        // a loopback ring on one host: far below a second
        expect(l.maxNs).toBeLessThan(1e9);
      }
      expect(r.rxUntagged).toBe(0);
      expect(r.rxForeign).toBe(0);
      expect(r.txDone).toBe(true);
      expect(r.running).toBe(false);
    } finally {
      ring.close();
    }
  });

  it("a count-limited flow's sending time ends with its last packet, however late it is read", async () => {
    const ring = Port.open(devargs.ring({ id: 'tgspan' }), pool);
    const N = 1000;
    const g = TrafficGenerator.create({
      pool,
      flows: [
        {
          port: ring,
          srcIp: '10.0.0.1',
          dstIp: '10.0.1.1',
          srcPort: 1000,
          dstPort: 2000,
          protocol: 'udp',
          size: 64,
          ratePps: 20_000, // 999 gaps of 50 us: about 50 ms of sending
          count: N,
        },
      ],
      rx: [{ port: ring }],
    });
    try {
      g.start();
      const done = (): boolean => {
        const f = g.results({ latency: false }).flows[0];
        return f !== undefined && f.txDone && f.rxPackets >= N;
      };
      expect(await until(done, 20_000)).toBe(true);
      const first = g.results({ latency: false });
      await new Promise((r) => setTimeout(r, 300)); // still running, nothing more to send
      const later = g.results({ latency: false });
      const [a, b] = [first.flows[0]!, later.flows[0]!];
      expect(later.running).toBe(true);
      expect(later.elapsedSeconds - first.elapsedSeconds).toBeGreaterThan(0.25);
      // the span stopped at the last packet: the same in both reads, and about 50 ms
      expect(b.txSeconds).toBe(a.txSeconds);
      expect(b.rxSeconds).toBe(a.rxSeconds);
      expect(a.txSeconds).toBeGreaterThan(0.045);
      expect(a.txSeconds).toBeLessThan(first.elapsedSeconds);
      expect(a.rxSeconds).toBeGreaterThanOrEqual(a.txSeconds);
      // so the rate is the paced one (a slow host only lowers it), not N over the time since start
      expect(N / b.txSeconds).toBeLessThan(20_000 * 1.05);
      expect(N / b.txSeconds).toBeGreaterThan(N / later.elapsedSeconds);
      g.stop();
      const stopped = g.results({ latency: false });
      await new Promise((r) => setTimeout(r, 50));
      expect(g.results({ latency: false }).elapsedSeconds).toBe(stopped.elapsedSeconds);
    } finally {
      g.close();
      ring.close();
    }
  });

  it('a count-limited unpaced run sends exactly N and the sink receives exactly N', async () => {
    const ring = Port.open(devargs.ring({ id: 'tg1' }), pool);
    try {
      const N = 50_000;
      const g = TrafficGenerator.create({
        pool,
        flows: [
          {
            port: ring,
            protocol: 'udp',
            srcIp: '10.1.0.1',
            dstIp: '10.1.0.2',
            srcPort: 1,
            dstPort: 2,
            count: N,
          },
        ],
        rx: [{ port: ring }],
      });
      const r = await runToCompletion(g, [N]);
      g.close();
      expect(r.flows[0]).toMatchObject({ txPackets: N, rxPackets: N, lost: 0, duplicates: 0 });
      expect(ring.stats()).toMatchObject({ txPackets: N, rxPackets: N });
    } finally {
      ring.close();
    }
  });

  it('builds valid frames: headers, checksums, tags in sequence, the IMIX pattern', async () => {
    const ring = Port.open(devargs.ring({ id: 'tg2' }), pool);
    try {
      const specs: GenFlowSpec[] = [
        {
          port: ring,
          protocol: 'udp',
          srcIp: '192.0.2.1',
          dstIp: '198.51.100.7',
          srcPort: 5000,
          dstPort: 53,
          size: 'imix',
          count: 24,
          srcMac: '02:00:00:00:00:aa',
          dstMac: '02:00:00:00:00:bb',
          ttl: 9,
        },
        {
          port: ring,
          protocol: 'tcp',
          srcIp: '2001:db8::1',
          dstIp: '2001:db8::2',
          srcPort: 40000,
          dstPort: 443,
          size: 128,
          count: 24,
          tcpFlags: 0x02,
        },
      ];
      // tx only: the frames stay in the ring for JavaScript to read
      const g = TrafficGenerator.create({ pool, flows: specs, run: 7 });
      g.start();
      expect(await until(() => g.txDone(), 10_000)).toBe(true);
      g.stop();
      g.close();
      const frames: Buffer[] = [];
      await until(() => {
        frames.push(...ring.receive(0, 256));
        return frames.length >= 48;
      }, 5000);
      expect(frames).toHaveLength(48);
      const seen = new Map<number, number[]>();
      for (const f of frames) {
        const v6 = f.readUInt16BE(12) === 0x86dd;
        const l3 = 14;
        const l4 = l3 + (v6 ? 40 : 20);
        const proto = v6 ? f[l3 + 6]! : f[l3 + 9]!;
        const src = v6 ? f.subarray(l3 + 8, l3 + 24) : f.subarray(l3 + 12, l3 + 16);
        const dst = v6 ? f.subarray(l3 + 24, l3 + 40) : f.subarray(l3 + 16, l3 + 20);
        if (!v6) {
          expect(internetChecksum(f.subarray(l3, l3 + 20))).toBe(0);
          expect(f.readUInt16BE(l3 + 2)).toBe(f.length - 14);
          expect(f[l3 + 8]).toBe(9);
        } else {
          expect(f.readUInt16BE(l3 + 4)).toBe(f.length - l4);
        }
        const l4len = f.length - l4;
        expect(
          internetChecksum(f.subarray(l4), pseudoHeaderSum(src, dst, proto, l4len)),
          `L4 checksum of a ${v6 ? 'v6' : 'v4'} frame`,
        ).toBe(0);
        const tagAt = l4 + (proto === 17 ? 8 : (f[l4 + 12]! >> 4) * 4);
        expect(f[tagAt]).toBe(0xf1);
        expect(f[tagAt + 1]).toBe(7);
        const flow = f.readUInt16LE(tagAt + 2);
        const seq = f.readUInt32LE(tagAt + 4);
        seen.set(flow, [...(seen.get(flow) ?? []), seq]);
        if (flow === 0) {
          expect(f.subarray(0, 12).toString('hex')).toBe('0200000000bb0200000000aa');
          expect(f.length + 4).toBe(frameSizeOf('imix', 4, 'udp', seq));
          expect(f.readUInt16BE(l4 + 2)).toBe(53);
        } else {
          expect(proto).toBe(6);
          expect(f[l4 + 13]).toBe(0x02);
          expect(f.length).toBe(124);
          expect(f.readUInt16BE(l4)).toBe(40000);
        }
      }
      const order = Array.from({ length: 24 }, (_, i) => i);
      expect(seen.get(0)).toEqual(order);
      expect(seen.get(1)).toEqual(order);
      // one IMIX period is seven 64s, four 594s and one 1518
      const sizes = frames.filter((f) => f.readUInt16BE(12) === 0x0800).map((f) => f.length + 4);
      expect(sizes.filter((s) => s === 64)).toHaveLength(14);
      expect(sizes.filter((s) => s === 594)).toHaveLength(8);
      expect(sizes.filter((s) => s === 1518)).toHaveLength(2);
    } finally {
      ring.close();
    }
  });

  it('the sink counts loss, duplicates and reordering from the sequence numbers it sees', async () => {
    const ring = Port.open(devargs.ring({ id: 'tg3' }), pool);
    try {
      const run = 42;
      const tagged = (flow: number, seq: number, r = run) => {
        const tag = Buffer.alloc(16);
        tag[0] = 0xf1;
        tag[1] = r;
        tag.writeUInt16LE(flow, 2);
        tag.writeUInt32LE(seq, 4);
        return buildPacket({ src: '10.9.0.1', dst: '10.9.0.2', payload: tag, size: 60 });
      };
      const g = TrafficGenerator.create({ flows: [], rx: [{ port: ring }], run });
      g.start();
      // flow 3: 0 1 3 2 2 6 5 -> 4 is missing, 2 duplicated, 2 and 5 reordered
      const seqs = [0, 1, 3, 2, 2, 6, 5];
      const pkts = [
        ...seqs.map((s) => tagged(3, s)),
        tagged(0, 0),
        tagged(0, 1),
        tagged(1, 0, run + 1), // another run: foreign
        buildPacket({ src: '10.9.0.1', dst: '10.9.0.2', proto: 'icmp' }), // untagged
      ];
      expect(ring.send(0, pool, pkts)).toBe(pkts.length);
      await until(() => {
        const r = g.results({ latency: false });
        return (r.flows[3]?.rxPackets ?? 0) === 7 && r.rxForeign + r.rxUntagged === 2;
      }, 5000);
      g.stop();
      const r = g.results();
      g.close();
      expect(r.flows).toHaveLength(4);
      expect(r.flows[3]).toMatchObject({
        txPackets: 0,
        rxPackets: 7,
        expected: 7,
        lost: 1,
        duplicates: 1,
        reordered: 2,
        late: 0,
      });
      expect(r.flows[3]!.latency!.samples).toBe(6);
      expect(r.flows[0]).toMatchObject({ rxPackets: 2, expected: 2, lost: 0, reordered: 0 });
      expect(r.flows[1]).toMatchObject({ rxPackets: 0 });
      expect(r.rxForeign).toBe(1);
      expect(r.rxUntagged).toBe(1);
    } finally {
      ring.close();
    }
  });

  // DPDK 22.11's virtio-user in server mode blocks in accept() while probing, so in one process
  // the vhost side listens and virtio-user connects to it.
  it('over virtio-user <-> vhost-user: zero loss at a modest rate, latency ordered', async () => {
    rmSync(sock, { force: true });
    const vhost = Port.open(devargs.vhost({ id: 'tg', iface: sock }), pool);
    const virtio = Port.open(devargs.virtioUser({ id: 'tg', path: sock, queueSize: 1024 }), pool);
    try {
      expect(await until(() => virtio.link().up && vhost.link().up, 10_000)).toBe(true);
      const N = 20_000;
      const flows: GenFlowSpec[] = (
        [
          { protocol: 'udp', srcIp: '10.2.0.1', dstIp: '10.2.0.2', size: 64 },
          { protocol: 'tcp', srcIp: 'fd00:2::1', dstIp: 'fd00:2::2', size: 'imix' },
        ] as const
      ).map((f, i) => ({
        ...f,
        port: virtio,
        srcPort: 100 + i,
        dstPort: 200 + i,
        ratePps: 50_000,
        count: N,
      }));
      const g = TrafficGenerator.create({ pool, flows, rx: [{ port: vhost }] });
      const r = await runToCompletion(g, [N, N]);
      g.close();
      for (const f of r.flows) {
        expect(f).toMatchObject({ txPackets: N, rxPackets: N, lost: 0, duplicates: 0 });
        expect(f.rxBytes).toBe(f.txBytes);
        const l = f.latency!;
        expect(l.samples).toBe(N);
        expect(l.p50Ns).toBeLessThanOrEqual(l.p99Ns);
        expect(l.p99Ns).toBeLessThanOrEqual(l.maxNs);
      }
      expect(r.sleeps).toBeGreaterThan(0); // paced at 100 kpps in all, the poller slept between
    } finally {
      virtio.close();
      vhost.close();
    }
  });

  it('counts chained arrivals whole (a vhost port on a pool of 128-byte mbufs), not as untagged', async () => {
    rmSync(sock, { force: true });
    // vhost-user's dequeue chains a 600-byte frame over five mbufs of this pool
    const small = Mempool.create({ size: 4095, dataRoom: 256 });
    const vhost = Port.open(devargs.vhost({ id: 'tgseg', iface: sock }), small);
    const virtio = Port.open(devargs.virtioUser({ id: 'tgseg', path: sock }), pool);
    try {
      expect(await until(() => virtio.link().up && vhost.link().up, 10_000)).toBe(true);
      const N = 2000;
      const g = TrafficGenerator.create({
        pool,
        flows: [
          {
            port: virtio,
            srcIp: '10.3.0.1',
            dstIp: '10.3.0.2',
            srcPort: 300,
            dstPort: 400,
            protocol: 'udp',
            size: 600,
            ratePps: 50_000,
            count: N,
          },
        ],
        rx: [{ port: vhost }],
      });
      const r = await runToCompletion(g, [N]);
      g.close();
      expect(r.rxUntagged).toBe(0);
      expect(r.flows[0]).toMatchObject({ txPackets: N, rxPackets: N, lost: 0 });
      expect(r.flows[0]!.rxBytes).toBe(r.flows[0]!.txBytes);
    } finally {
      virtio.close();
      vhost.close();
    }
  });

  it('backs off when its port takes nothing (a vhost port without a peer)', async () => {
    const lonely = `${sock}.lonely`;
    rmSync(lonely, { force: true });
    const vhost = Port.open(devargs.vhost({ id: 'alone', iface: lonely }), pool);
    try {
      const g = TrafficGenerator.create({
        pool,
        flows: [
          {
            port: vhost,
            protocol: 'udp',
            srcIp: '10.3.0.1',
            dstIp: '10.3.0.2',
            srcPort: 1,
            dstPort: 2,
          },
        ],
        rx: [{ port: vhost }],
      });
      g.start();
      const slept = await until(() => g.results({ latency: false }).sleeps >= 10, 10_000);
      g.stop();
      const r = g.results();
      g.close();
      // unpaced and blocked: it sleeps between attempts instead of spinning, and sends nothing
      expect(slept).toBe(true);
      expect(r.txBackpressure).toBeGreaterThan(0);
      expect(r.flows[0]).toMatchObject({ txPackets: 0, rxPackets: 0 });
    } finally {
      vhost.close();
      rmSync(lonely, { force: true });
    }
  });

  it('refuses a bad flow naming its field, and a busy lcore', () => {
    const ring = Port.open(devargs.ring({ id: 'tg4' }), pool);
    try {
      const base: GenFlowSpec = {
        port: ring,
        protocol: 'udp',
        srcIp: '10.0.0.1',
        dstIp: '10.0.0.2',
        srcPort: 1,
        dstPort: 2,
      };
      const bad = (f: Partial<GenFlowSpec>) => () =>
        TrafficGenerator.create({ pool, flows: [base, { ...base, ...f }] });
      expect(bad({ ratePps: -1 })).toThrow(TrafficGenError);
      expect(bad({ ratePps: -1 })).toThrow(/^flows\[1\]\.ratePps:/);
      expect(bad({ dstIp: 'fd00::1' })).toThrow(/flows\[1\]\.dstIp: IPv6 while srcIp is IPv4/);
      expect(bad({ size: 70, protocol: 'tcp' })).toThrow(/flows\[1\]\.size: .*74\.\.1518/);
      expect(bad({ srcMac: 'nope' })).toThrow(/flows\[1\]\.srcMac/);
      expect(() => TrafficGenerator.create({ pool, flows: [base], lcore: 0 })).toThrow(/^lcore:/);
      const a = TrafficGenerator.create({ pool, flows: [base], rx: [{ port: ring }] });
      const b = TrafficGenerator.create({ pool, flows: [base] });
      a.start();
      try {
        expect(() => b.start()).toThrow(/lcore 1 is busy/);
      } finally {
        a.close();
        b.close();
      }
    } finally {
      ring.close();
    }
  });
});
