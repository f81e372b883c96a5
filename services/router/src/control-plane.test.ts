import {
  arpFrame,
  ethernetHeader,
  flowFrame,
  fragmentIpv4,
  internetChecksum,
  neighborAdvertisementFrame,
  neighborSolicitationFrame,
  packetTooBigFrame,
  parseFrame,
} from '@flowline/packet';
import { beforeEach, describe, expect, it } from 'vitest';
import {
  type Fib,
  InvalidRouteError,
  RouteExistsError,
  RouteNotFoundError,
  RouterControlPlane,
  makeInterface,
} from './index';

const R1 = '02:00:00:00:01:01';
const R2 = '02:00:00:00:01:02';
const HOST_A = '02:00:00:00:0a:01';
const GW = '02:00:00:00:0b:01';
/** A UDP packet from net1's host whose TTL runs out at the router. */
const EXPIRING_V4 = flowFrame({
  srcMac: HOST_A,
  dstMac: R1,
  src: '10.0.1.50',
  dst: '10.0.2.9',
  protocol: 'udp',
  srcPort: 1,
  dstPort: 2,
  ttl: 1,
});

class Harness {
  clock = 0;
  fibs: Fib[] = [];
  sent: { port: string; frame: Buffer }[] = [];
  refuse = false;
  cp = new RouterControlPlane(
    [
      makeInterface('net1', R1, ['10.0.1.1/24', 'fd00:1::1/64'], 'interfaces[0]'),
      makeInterface('net2', R2, ['10.0.2.1/24', 'fd00:2::1/64'], 'interfaces[1]', 1400),
    ],
    {
      apply: async (fib) => {
        if (this.refuse) throw new Error('rte_lpm_add: no space');
        this.fibs.push(fib);
      },
    },
    (port, frame) => this.sent.push({ port, frame }),
    () => this.clock,
    {
      reachableMs: 30_000,
      retransMs: 1_000,
      maxProbes: 3,
      staleProbeMs: 60_000,
      failedHoldMs: 5_000,
    },
  );
  get fib(): Fib {
    return this.fibs.at(-1)!;
  }
  route(prefix: string) {
    const r = this.fib.routes.find((x) => x.prefix.text === prefix);
    return r && { ...this.fib.nextHops[r.nextHop]!, origin: r.origin };
  }
  take() {
    return this.sent.splice(0).map((s) => ({ port: s.port, ...parseFrame(s.frame) }));
  }
}

let h: Harness;
beforeEach(async () => {
  h = new Harness();
  await h.cp.start();
});

describe('FIB', () => {
  it("has glean routes for connected subnets and the router's own addresses as local", () => {
    // each next hop with its interface's MTU: net1's the default, net2's configured
    expect(h.route('10.0.1.0/24')).toEqual({
      port: 'net1',
      srcMac: R1,
      mtu: 1500,
      origin: 'connected',
    });
    expect(h.route('fd00:2::/64')).toEqual({
      port: 'net2',
      srcMac: R2,
      mtu: 1400,
      origin: 'connected',
    });
    expect(h.fib.local4.map((b) => b.join('.'))).toEqual(['10.0.1.1', '10.0.2.1']);
    expect(h.fib.local6).toHaveLength(2);
  });

  it('a static route via an unresolved gateway gleans, probes it, and forwards once it answers', async () => {
    await h.cp.addRoute({ prefix: '192.168.0.0/16', nextHop: '10.0.2.254' });
    expect(h.route('192.168.0.0/16')).toEqual({
      port: 'net2',
      srcMac: R2,
      mtu: 1400,
      origin: 'static',
    });
    const [probe] = h.take();
    expect(probe).toMatchObject({
      port: 'net2',
      dstMac: 'ff:ff:ff:ff:ff:ff',
      arp: { op: 1, senderIp: '10.0.2.1', targetIp: '10.0.2.254' },
    });
    h.cp.handlePunt(
      arpFrame({
        op: 'reply',
        senderMac: GW,
        senderIp: '10.0.2.254',
        targetMac: R2,
        targetIp: '10.0.2.1',
      }),
      'net2',
      'arp',
    );
    await h.cp.flush();
    expect(h.route('192.168.0.0/16')).toEqual({
      port: 'net2',
      srcMac: R2,
      dstMac: GW,
      mtu: 1400,
      origin: 'static',
    });
    expect(h.route('10.0.2.254/32')).toEqual({
      port: 'net2',
      srcMac: R2,
      dstMac: GW,
      mtu: 1400,
      origin: 'neighbor',
    });
  });

  it('a static neighbour resolves a route at once, is never probed, aged or overridden', async () => {
    h = new Harness();
    h.cp.addStaticNeighbor(
      { address: '10.0.2.10', mac: '02:00:00:00:0C:01', iface: 'net2' },
      'staticNeighbors[0]',
    );
    await h.cp.start([{ prefix: '172.16.0.0/12', nextHop: '10.0.2.10' }]);
    expect(h.route('172.16.0.0/12')).toEqual({
      port: 'net2',
      srcMac: R2,
      dstMac: '02:00:00:00:0c:01',
      mtu: 1400,
      origin: 'static',
    });
    expect(h.take()).toEqual([]);
    h.cp.handlePunt(
      arpFrame({
        op: 'reply',
        senderMac: GW,
        senderIp: '10.0.2.10',
        targetMac: R2,
        targetIp: '10.0.2.1',
      }),
      'net2',
      'arp',
    );
    h.clock += 10 * 60_000;
    await h.cp.tick();
    await h.cp.flush();
    expect(h.route('172.16.0.0/12')).toMatchObject({ dstMac: '02:00:00:00:0c:01' });
    expect(h.cp.neighbors.list().map((n) => [n.address, n.state])).toEqual([
      ['10.0.2.10', 'PERMANENT'],
    ]);
    expect(h.take()).toEqual([]);
    expect(() =>
      h.cp.addStaticNeighbor(
        { address: '10.0.2.0/24', mac: GW, iface: 'net2' },
        'staticNeighbors[1]',
      ),
    ).toThrow('staticNeighbors[1].address: "10.0.2.0/24" must be an address, not a prefix');
    expect(() =>
      h.cp.addStaticNeighbor(
        { address: '10.0.2.9', mac: 'nope', iface: 'net2' },
        'staticNeighbors[1]',
      ),
    ).toThrow(/staticNeighbors\[1\]\.mac/);
    expect(() =>
      h.cp.addStaticNeighbor({ address: '10.0.2.9', mac: GW, iface: 'net9' }, 'staticNeighbors[1]'),
    ).toThrow(/staticNeighbors\[1\]\.interface: "net9" is not one of net1, net2/);
  });

  it('validates routes, naming the field', async () => {
    await expect(h.cp.addRoute({ prefix: '10.9.0.0/16', nextHop: '10.7.0.1' })).rejects.toThrow(
      /route\.next_hop: 10\.7\.0\.1 is not in a connected subnet/,
    );
    await expect(h.cp.addRoute({ prefix: '10.9.0.0/16', nextHop: 'fd00:1::9' })).rejects.toThrow(
      /route\.next_hop: is IPv6 but prefix is IPv4/,
    );
    await expect(h.cp.addRoute({ prefix: '10.9.0.1/16', nextHop: '10.0.1.9' })).rejects.toThrow(
      InvalidRouteError,
    );
    await expect(h.cp.addRoute({ prefix: '10.9.0.0/16', iface: 'eth9' })).rejects.toThrow(
      /route\.interface: "eth9" is not one of net1, net2/,
    );
    await expect(h.cp.addRoute({ prefix: '10.9.0.0/16' })).rejects.toThrow(
      /route\.next_hop: give a next hop, an interface, or both/,
    );
  });

  it('refuses a duplicate prefix, and deletes with NOT_FOUND semantics; connected routes stay', async () => {
    await h.cp.addRoute({ prefix: '10.9.0.0/16', nextHop: '10.0.1.9' });
    await expect(h.cp.addRoute({ prefix: '10.9.0.0/16', nextHop: '10.0.1.8' })).rejects.toThrow(
      RouteExistsError,
    );
    await h.cp.deleteRoute('10.9.0.0/16');
    expect(h.route('10.9.0.0/16')).toBeUndefined();
    await expect(h.cp.deleteRoute('10.9.0.0/16')).rejects.toThrow(
      /no static route for 10\.9\.0\.0\/16/,
    );
    const connected = await h.cp.deleteRoute('10.0.1.0/24').catch((e: RouteNotFoundError) => e);
    expect(connected).toMatchObject({ connected: true });
  });

  it('a FIB the dataplane refuses leaves routes and generation as they were', async () => {
    const gen = h.cp.generation;
    h.refuse = true;
    await expect(h.cp.addRoute({ prefix: '10.9.0.0/16', nextHop: '10.0.1.9' })).rejects.toThrow(
      /no space/,
    );
    expect(h.cp.statics.size).toBe(0);
    expect(h.cp.generation).toBe(gen);
  });

  it('a refused FIB keeps a pending neighbour change: the next flush programs the new MAC', async () => {
    const reply = (mac: string) =>
      arpFrame({
        op: 'reply',
        senderMac: mac,
        senderIp: '10.0.2.254',
        targetMac: R2,
        targetIp: '10.0.2.1',
      });
    h.cp.handlePunt(reply(GW), 'net2', 'arp');
    await h.cp.flush();
    expect(h.route('10.0.2.254/32')).toMatchObject({ dstMac: GW });
    const moved = '02:00:00:00:0b:02';
    h.cp.handlePunt(reply(moved), 'net2', 'arp'); // the gateway's MAC changed
    h.refuse = true; // once: an LPM refusal during AddRoute
    await expect(h.cp.addRoute({ prefix: '10.9.0.0/16', nextHop: '10.0.1.9' })).rejects.toThrow(
      /no space/,
    );
    h.refuse = false;
    await h.cp.flush();
    const fib = h.cp.currentFib!;
    const host = fib.routes.find((r) => r.prefix.text === '10.0.2.254/32')!;
    expect(fib.nextHops[host.nextHop]).toMatchObject({ dstMac: moved });
    expect(h.fib).toBe(fib);
  });
});

describe('slow path', () => {
  it('answers ARP for its own address and learns the asker as STALE', async () => {
    h.cp.handlePunt(
      arpFrame({
        op: 'request',
        senderMac: HOST_A,
        senderIp: '10.0.1.50',
        targetMac: '00:00:00:00:00:00',
        targetIp: '10.0.1.1',
      }),
      'net1',
      'arp',
    );
    const [reply] = h.take();
    expect(reply).toMatchObject({
      port: 'net1',
      dstMac: HOST_A,
      arp: { op: 2, senderMac: R1, senderIp: '10.0.1.1', targetMac: HOST_A, targetIp: '10.0.1.50' },
    });
    expect(h.cp.neighbors.lookup('net1', '10.0.1.50')).toMatchObject({
      mac: HOST_A,
      state: 'STALE',
    });
    await h.cp.flush();
    expect(h.route('10.0.1.50/32')).toMatchObject({ dstMac: HOST_A });
  });

  it('ignores ARP for addresses that are not its own', () => {
    h.cp.handlePunt(
      arpFrame({
        op: 'request',
        senderMac: HOST_A,
        senderIp: '10.0.1.50',
        targetMac: '00:00:00:00:00:00',
        targetIp: '10.0.1.77',
      }),
      'net1',
      'arp',
    );
    expect(h.take()).toEqual([]);
    expect(h.cp.counters.ignored).toBe(1n);
  });

  it('answers a Neighbor Solicitation with a solicited router advertisement', () => {
    h.cp.handlePunt(
      neighborSolicitationFrame({ srcMac: HOST_A, src: 'fd00:1::50', target: 'fd00:1::1' }),
      'net1',
      'nd',
    );
    const [na] = h.take();
    expect(na).toMatchObject({
      port: 'net1',
      dstMac: HOST_A,
      ipv6: { src: 'fd00:1::1', dst: 'fd00:1::50', hopLimit: 255 },
      l4: { icmpType: 136, checksumOk: true },
    });
    expect(h.cp.neighbors.lookup('net1', 'fd00:1::50')).toMatchObject({
      mac: HOST_A,
      state: 'STALE',
    });
  });

  it('gleans: a packet to an unknown connected host triggers ND, and the NA makes it REACHABLE', async () => {
    const pkt = flowFrame({
      srcMac: GW,
      dstMac: R2,
      src: 'fd00:2::9',
      dst: 'fd00:1::77',
      protocol: 'udp',
      srcPort: 1,
      dstPort: 2,
    });
    h.cp.handlePunt(pkt, 'net2', 'glean');
    const [ns] = h.take();
    expect(ns).toMatchObject({
      port: 'net1',
      dstMac: '33:33:ff:00:00:77',
      ipv6: { dst: 'ff02::1:ff00:77' },
      l4: { icmpType: 135 },
    });
    h.cp.handlePunt(
      neighborAdvertisementFrame({
        srcMac: HOST_A,
        dstMac: R1,
        target: 'fd00:1::77',
        dst: 'fd00:1::1',
        solicited: true,
        router: false,
      }),
      'net1',
      'nd',
    );
    expect(h.cp.neighbors.lookup('net1', 'fd00:1::77')).toMatchObject({
      mac: HOST_A,
      state: 'REACHABLE',
    });
    await h.cp.flush();
    expect(h.route('fd00:1::77/128')).toMatchObject({ port: 'net1', dstMac: HOST_A });
  });

  it('answers TTL expiry with ICMP time exceeded from the ingress interface, v4 and v6', () => {
    h.cp.handlePunt(EXPIRING_V4, 'net1', 'ttl_expired');
    h.cp.handlePunt(
      flowFrame({
        srcMac: HOST_A,
        dstMac: R1,
        src: 'fd00:1::50',
        dst: 'fd00:2::9',
        protocol: 'tcp',
        srcPort: 1,
        dstPort: 2,
        ttl: 1,
      }),
      'net1',
      'ttl_expired',
    );
    const [v4, v6] = h.take();
    expect(v4).toMatchObject({
      port: 'net1',
      dstMac: HOST_A,
      ipv4: { src: '10.0.1.1', dst: '10.0.1.50' },
      l4: { icmpType: 11, checksumOk: true },
    });
    expect(v6).toMatchObject({
      port: 'net1',
      ipv6: { src: 'fd00:1::1', dst: 'fd00:1::50' },
      l4: { icmpType: 3, checksumOk: true },
    });
    expect(h.cp.counters.icmpTimeExceededSent).toBe(2n);
  });

  it('limits the ICMP errors it sends: a flood gets the burst, then the rate, the rest counted', () => {
    const flood = (n: number) => {
      for (let i = 0; i < n; i++) h.cp.handlePunt(EXPIRING_V4, 'net1', 'ttl_expired');
      return h.take().length;
    };
    expect(flood(80)).toBe(50); // the default burst (Linux's icmp_msgs_burst)
    h.clock += 10; // 10 ms at 1,000 a second
    expect(flood(80)).toBe(10);
    expect(h.cp.counters).toMatchObject({
      ttlExpired: 160n,
      icmpTimeExceededSent: 60n,
      icmpRateLimited: 100n,
    });
  });
});

describe('neighbour aging', () => {
  it('INCOMPLETE probes maxProbes times, then FAILED, then forgotten', async () => {
    h.cp.handlePunt(
      flowFrame({
        srcMac: GW,
        dstMac: R2,
        src: '10.0.2.9',
        dst: '10.0.1.99',
        protocol: 'udp',
        srcPort: 1,
        dstPort: 2,
      }),
      'net2',
      'glean',
    );
    for (let t = 1000; t <= 3000; t += 1000) {
      h.clock = t;
      await h.cp.tick();
    }
    expect(h.take().filter((f) => f.arp?.targetIp === '10.0.1.99')).toHaveLength(3);
    expect(h.cp.neighbors.lookup('net1', '10.0.1.99')?.state).toBe('FAILED');
    h.clock = 9000;
    await h.cp.tick();
    expect(h.cp.neighbors.lookup('net1', '10.0.1.99')).toBeUndefined();
  });

  it('REACHABLE ages to STALE, is re-probed by unicast, and is dropped from the FIB if it stays silent', async () => {
    h.cp.handlePunt(
      arpFrame({
        op: 'reply',
        senderMac: HOST_A,
        senderIp: '10.0.1.50',
        targetMac: R1,
        targetIp: '10.0.1.1',
      }),
      'net1',
      'arp',
    );
    await h.cp.flush();
    expect(h.route('10.0.1.50/32')).toBeDefined();
    h.clock = 30_000;
    await h.cp.tick();
    expect(h.cp.neighbors.lookup('net1', '10.0.1.50')?.state).toBe('STALE');
    h.clock = 60_000;
    await h.cp.tick();
    const [probe] = h.take();
    expect(probe).toMatchObject({ dstMac: HOST_A, arp: { op: 1, targetIp: '10.0.1.50' } });
    for (const t of [61_000, 62_000, 63_000]) {
      h.clock = t;
      await h.cp.tick();
    }
    expect(h.cp.neighbors.lookup('net1', '10.0.1.50')?.state).toBe('FAILED');
    expect(h.route('10.0.1.50/32')).toBeUndefined();
  });
});

describe('packets too big for the egress MTU (net2: 1400)', () => {
  const GW6 = '02:00:00:00:0b:06';
  /** A UDP packet from host A on net1 of exactly `l3` bytes of IP. */
  const packet = (dst: string, l3: number, df = true, ttl = 64): Buffer =>
    flowFrame({
      srcMac: HOST_A,
      dstMac: R1,
      src: dst.includes(':') ? 'fd00:1::50' : '10.0.1.50',
      dst,
      protocol: 'udp',
      srcPort: 4000,
      dstPort: 5000,
      ttl,
      df,
      payload: Buffer.alloc(l3 - (dst.includes(':') ? 40 : 20) - 8, 0x5a),
    });

  beforeEach(async () => {
    h = new Harness();
    h.cp.addStaticNeighbor({ address: '10.0.2.10', mac: GW, iface: 'net2' }, 'n[0]');
    h.cp.addStaticNeighbor({ address: 'fd00:2::10', mac: GW6, iface: 'net2' }, 'n[1]');
    await h.cp.start([
      { prefix: '198.51.100.0/24', nextHop: '10.0.2.10' },
      { prefix: '2001:db8:99::/48', nextHop: 'fd00:2::10' },
    ]);
  });

  it('IPv4 with DF and IPv6: ICMP with the MTU, from the interface they came in on', () => {
    const v4 = packet('198.51.100.7', 1401);
    const v6 = packet('2001:db8:99::7', 1401);
    h.cp.handlePunt(v4, 'net1', 'too_big');
    h.cp.handlePunt(v6, 'net1', 'too_big');
    expect(h.sent.map((s) => [s.port, s.frame.toString('hex')])).toEqual([
      ['net1', packetTooBigFrame(v4, R1, '10.0.1.1', 1400).toString('hex')],
      ['net1', packetTooBigFrame(v6, R1, 'fd00:1::1', 1400).toString('hex')],
    ]);
    const [icmp, icmp6] = h.take();
    expect(icmp).toMatchObject({
      dstMac: HOST_A,
      ipv4: { src: '10.0.1.1', dst: '10.0.1.50' },
      l4: { icmpType: 3, icmpCode: 4, checksumOk: true },
    });
    expect(icmp6).toMatchObject({
      ipv6: { src: 'fd00:1::1' },
      l4: { icmpType: 2, checksumOk: true },
    });
    expect(h.cp.counters).toMatchObject({ tooBig: 2n, icmpTooBigSent: 2n, fragmented: 0n });
  });

  it('IPv4 without DF: fragmented to the MTU, in order, to the next hop, TTL less one', () => {
    const big = packet('198.51.100.7', 3000, false);
    h.cp.handlePunt(big, 'net1', 'too_big');
    const ip = Buffer.from(big.subarray(14));
    ip[8] = 63;
    const eth = ethernetHeader(GW, R2, 0x0800);
    expect(h.sent.map((s) => [s.port, s.frame.toString('hex')])).toEqual(
      fragmentIpv4(ip, 1400).map((f) => ['net2', Buffer.concat([eth, f]).toString('hex')]),
    );
    const frames = h.sent.map((s) => s.frame);
    expect(frames).toHaveLength(3);
    for (const f of frames) {
      expect(f.length).toBeLessThanOrEqual(14 + 1400);
      expect(f[22]).toBe(63);
      expect(internetChecksum(f.subarray(14, 34))).toBe(0);
    }
    // reassembled: the packet's data, in order
    expect(Buffer.concat(frames.map((f) => f.subarray(34))).equals(big.subarray(34))).toBe(true);
    expect(h.cp.counters).toMatchObject({
      tooBig: 1n,
      fragmented: 1n,
      fragmentsSent: 3n,
      icmpTooBigSent: 0n,
    });
  });

  it('resolves an unresolved next hop instead; ignores what the FIB no longer sends there', async () => {
    h.cp.handlePunt(packet('10.0.2.77', 1500, false), 'net1', 'too_big');
    expect(h.take()).toMatchObject([{ port: 'net2', arp: { op: 1, targetIp: '10.0.2.77' } }]);
    expect(h.cp.counters).toMatchObject({ tooBig: 1n, neighborUnresolved: 1n, fragmented: 0n });
    // fits its MTU after all (the FIB changed since it was punted); then no route at all
    h.cp.handlePunt(packet('198.51.100.7', 1400), 'net1', 'too_big');
    await h.cp.deleteRoute('198.51.100.0/24');
    h.cp.handlePunt(packet('198.51.100.7', 1401), 'net1', 'too_big');
    // a header whose checksum is wrong is not fragmented under a new, right one
    const bad = packet('10.0.2.10', 1500, false);
    bad[24]! ^= 0xff;
    h.cp.handlePunt(bad, 'net1', 'too_big');
    expect(h.take()).toEqual([]);
    expect(h.cp.counters).toMatchObject({
      tooBig: 4n,
      ignored: 3n,
      icmpTooBigSent: 0n,
      fragmented: 0n,
    });
  });
});
