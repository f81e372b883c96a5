/**
 * The firewall's dataplane on real DPDK (hugepages, net_ring ports, one worker lcore), driven
 * through the rule store exactly as the gRPC service drives it: which flows pass (IPv4/IPv6,
 * prefixes, port ranges, protocols, priorities, default action), stateful return traffic, and
 * rule replacement under continuous traffic without losing an allowed packet.
 */
import { reasons } from '@flowline/dpdk';
import type { firewallV1 } from '@flowline/proto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RuleStore } from '../../src/rule-store';
import { validateRuleSet } from '../../src/rules';
import { countersMessage } from '../../src/service';
import { call, serveFirewall } from '../support/grpc';
import { RingRig, TCP, dataplaneReady, frame, scrubPrefix, waitFor } from '../support/rig';

const notReady = dataplaneReady();
const prefix = `fltest-fw-dp-${process.pid}`;
let rig: RingRig;

function ruleSet(rules: firewallV1.Rule[], defaultAction: 'permit' | 'deny' = 'deny') {
  return validateRuleSet(rules, defaultAction, 'rule_set');
}

async function firewall(
  rules: firewallV1.Rule[],
  opts: { stateful?: boolean; defaultAction?: 'permit' | 'deny'; flush?: boolean } = {},
): Promise<RuleStore> {
  const fw = rig.firewall({
    stateful: opts.stateful ?? false,
    conntrack: {
      capacity: 1024,
      whenFull: 'evict',
      timeouts: {},
      flushOnRuleChange: opts.flush ?? false,
    },
  });
  const store = new RuleStore(fw, ruleSet(rules, opts.defaultAction));
  await store.init();
  fw.start();
  return store;
}

beforeAll(() => {
  if (!notReady) rig = RingRig.open(prefix);
});

afterEach(() => {
  if (notReady) return;
  rig.fw?.close();
  rig.fw = undefined;
  rig.drain(rig.a);
  rig.drain(rig.b);
});

afterAll(() => {
  if (!notReady) rig.close();
  scrubPrefix(prefix);
});

const RULES: firewallV1.Rule[] = [
  { id: 'bad-host', priority: 100, action: 'DENY', srcPrefix: '10.1.0.66/32' },
  { id: 'bad-net6', priority: 60, action: 'DENY', srcPrefix: '2001:db8:bad::/48' },
  {
    id: 'web',
    priority: 50,
    action: 'PERMIT',
    protocol: 'tcp',
    dstPrefix: '192.168.0.0/16',
    dstPorts: { first: 80, last: 88 },
  },
  {
    id: 'dns6',
    priority: 50,
    action: 'PERMIT',
    protocol: 'udp',
    dstPrefix: '2001:db8:53::/48',
    dstPorts: { first: 53, last: 53 },
  },
  {
    id: 'high-src',
    priority: 45,
    action: 'PERMIT',
    protocol: 'udp',
    srcPorts: { first: 60000, last: 60010 },
  },
  { id: 'ping', priority: 40, action: 'PERMIT', protocol: 'icmp' },
  { id: 'inside', priority: 10, action: 'PERMIT', srcPrefix: '10.1.0.0/16' },
];

/** [packet, passes, the rule that decides it] */
const CASES: [Buffer, boolean, string][] = [
  [frame({ src: '10.1.0.5', dst: '8.8.8.8', proto: 'udp', dport: 53 }), true, 'inside'],
  [frame({ src: '10.1.0.66', dst: '8.8.8.8', proto: 'udp', dport: 53 }), false, 'bad-host'],
  [frame({ src: '10.2.0.5', dst: '8.8.8.8', proto: 'udp', dport: 53 }), false, 'default'],
  [frame({ src: '172.16.0.1', dst: '192.168.1.1', proto: 'tcp', dport: 80 }), true, 'web'],
  [frame({ src: '172.16.0.1', dst: '192.168.200.9', proto: 'tcp', dport: 88 }), true, 'web'],
  [frame({ src: '172.16.0.1', dst: '192.168.1.1', proto: 'tcp', dport: 89 }), false, 'default'],
  [frame({ src: '172.16.0.1', dst: '192.168.1.1', proto: 'udp', dport: 80 }), false, 'default'],
  [frame({ src: '172.16.0.1', dst: '192.169.0.1', proto: 'tcp', dport: 80 }), false, 'default'],
  [frame({ src: '2001:db8:1::1', dst: '2001:db8:53::1', proto: 'udp', dport: 53 }), true, 'dns6'],
  [
    frame({ src: '2001:db8:1::1', dst: '2001:db8:53::1', proto: 'udp', dport: 54 }),
    false,
    'default',
  ],
  [
    frame({ src: '2001:db8:1::1', dst: '2001:db8:53::1', proto: 'tcp', dport: 53 }),
    false,
    'default',
  ],
  [
    frame({ src: '2001:db8:bad::1', dst: '2001:db8:53::1', proto: 'udp', dport: 53 }),
    false,
    'bad-net6',
  ],
  [
    frame({ src: '2001:db8:1::1', dst: '2001:db8:9::1', proto: 'udp', sport: 60005 }),
    true,
    'high-src',
  ],
  [frame({ src: '192.0.2.1', dst: '192.0.2.2', proto: 'udp', sport: 60011 }), false, 'default'],
  [frame({ src: '172.16.0.1', dst: '8.8.8.8', proto: 'icmp', echoId: 1 }), true, 'ping'],
  [
    frame({ src: '2001:db8:1::1', dst: '2001:db8:2::1', proto: 'icmp', echoId: 1 }),
    false,
    'default',
  ],
];

describe.skipIf(notReady)('firewall dataplane (root, hugepages, net_ring ports)', () => {
  it('passes exactly the allowed flows, both ways, and counts each rule', async () => {
    const store = await firewall(RULES);
    for (const side of [rig.a, rig.b]) {
      const got = await rig.passes(
        side,
        CASES.map(([p]) => p),
      );
      expect(got).toEqual(CASES.map(([, pass]) => pass));
    }
    const c = countersMessage(store, rig.fw!);
    const expected: Record<string, number> = {};
    for (const [, , rule] of CASES) expected[rule] = (expected[rule] ?? 0) + 2;
    const { default: denied, ...perRule } = expected;
    expect(Object.fromEntries((c.rules ?? []).map((r) => [r.id, Number(r.packets)]))).toEqual(
      perRule,
    );
    expect(c.defaultDenied).toBe(String(denied));
    expect(c.defaultPermitted).toBe('0');
  });

  it('applies a new default action with the rules, and keeps rule counters across the swap', async () => {
    const store = await firewall(RULES);
    const denied = CASES.filter(([, , r]) => r === 'default').map(([p]) => p);
    expect(await rig.passes(rig.a, denied)).toEqual(denied.map(() => false));
    await store.replace({ rules: store.ruleSet.rules, defaultAction: 'permit' });
    expect(await rig.passes(rig.a, denied)).toEqual(denied.map(() => true));
    // deny rules still win over a permitting default
    expect(await rig.passes(rig.a, [CASES[1]![0], CASES[11]![0]])).toEqual([false, false]);
    const c = countersMessage(store, rig.fw!);
    expect(c.defaultDenied).toBe(String(denied.length));
    expect(c.defaultPermitted).toBe(String(denied.length));
    expect((c.rules ?? []).find((r) => r.id === 'bad-host')?.packets).toBe('1');
    expect(c.generation).toBe('2');
  });

  it('one-armed: allowed traffic goes back out of the port it came in', async () => {
    const fw = rig.firewall({ stateful: false, topology: 'one-armed' });
    await new RuleStore(fw, ruleSet(RULES)).init();
    fw.start();
    expect(await rig.passes(rig.a, [CASES[0]![0], CASES[1]![0]])).toEqual([true, false]);
  });

  it('stateful: return traffic of allowed flows passes, unsolicited inbound traffic does not', async () => {
    const store = await firewall(
      [
        {
          id: 'out-tcp',
          priority: 10,
          action: 'PERMIT',
          protocol: 'tcp',
          srcPrefix: '10.1.0.0/16',
        },
        {
          id: 'out-udp6',
          priority: 10,
          action: 'PERMIT',
          protocol: 'udp',
          srcPrefix: 'fd00:1::/32',
        },
      ],
      { stateful: true },
    );
    const c = {
      src: '10.1.0.7',
      dst: '203.0.113.5',
      proto: 'tcp' as const,
      sport: 33000,
      dport: 443,
    };
    const s = { src: c.dst, dst: c.src, proto: 'tcp' as const, sport: 443, dport: 33000 };
    const u = {
      src: 'fd00:1::7',
      dst: 'fd00:99::1',
      proto: 'udp' as const,
      sport: 5000,
      dport: 5001,
    };
    const v = { src: u.dst, dst: u.src, proto: 'udp' as const, sport: 5001, dport: 5000 };
    // unsolicited first
    expect(await rig.passes(rig.b, [frame({ ...s, flags: TCP.SYN | TCP.ACK }), frame(v)])).toEqual([
      false,
      false,
    ]);
    expect(await rig.passes(rig.a, [frame({ ...c, flags: TCP.SYN }), frame(u)])).toEqual([
      true,
      true,
    ]);
    expect(
      await rig.passes(rig.b, [
        frame({ ...s, flags: TCP.SYN | TCP.ACK }),
        frame(v),
        frame({ ...v, dport: 5002 }), // not a reply of the flow
        frame({ ...s, src: '203.0.113.6', flags: TCP.ACK }), // another host
      ]),
    ).toEqual([true, true, false, false]);
    const ct = countersMessage(store, rig.fw!).conntrack;
    // two flows, and the denials of the last two packets (the two unsolicited ones' denials gave
    // their slots to the flows the other side then opened)
    expect(ct).toMatchObject({
      created: '2',
      entries: '4',
      returnPermitted: '2',
      capacity: '1024',
      denialsCached: '4',
      deniedByCache: '0',
    });
  });

  it('stateful: flows outlive a rule change, or end with it when flushOnRuleChange is set', async () => {
    const permit: firewallV1.Rule[] = [
      { id: 'out', priority: 10, action: 'PERMIT', protocol: 'udp', srcPrefix: '10.1.0.0/16' },
    ];
    const out = frame({ src: '10.1.0.7', dst: '203.0.113.5', sport: 7000, dport: 7001 });
    const back = frame({ src: '203.0.113.5', dst: '10.1.0.7', sport: 7001, dport: 7000 });
    for (const flush of [false, true]) {
      const store = await firewall(permit, { stateful: true, flush });
      expect(await rig.passes(rig.a, [out])).toEqual([true]);
      await store.replace({ rules: [] }); // nothing is permitted any more
      expect(await rig.passes(rig.b, [back])).toEqual([!flush]);
      expect(await rig.passes(rig.a, [out])).toEqual([!flush]);
      rig.fw!.close();
      rig.fw = undefined;
    }
  });

  it('GetCounters over gRPC reports the pipeline counts: per rule, default, and drops by their real reasons', async () => {
    const store = await firewall(RULES);
    const served = await serveFirewall(store, rig.fw!);
    try {
      const inside = CASES[0]![0]; // permitted by "inside"
      const denied = CASES[2]![0]; // the default action
      const fragment = Buffer.from(inside);
      fragment.writeUInt16BE(0x0001, 14 + 6); // a later fragment: offset 8 bytes, no ports
      const badHeader = Buffer.from(inside);
      badHeader[14] = 0x44; // IPv4 with a 16-byte header: malformed
      expect(
        await rig.passes(rig.a, [inside, inside, inside, denied, denied, fragment, badHeader]),
      ).toEqual([true, true, true, false, false, false, false]);
      const c = await call(served.client.GetCounters.bind(served.client), {});
      expect(c.generation).toBe('1');
      expect(c.rules.find((r) => r.id === 'inside')?.packets).toBe('3');
      expect(c.rules.filter((r) => r.id !== 'inside').every((r) => r.packets === '0')).toBe(true);
      expect(c.defaultDenied).toBe('2');
      expect(c.defaultPermitted).toBe('0');
      expect(c.droppedByReason).toEqual({ fragment: '1', malformed_l3: '1' });
      // every reason the firewall reports is one the native pipeline has
      for (const reason of Object.keys(c.droppedByReason)) expect(reasons()).toContain(reason);
    } finally {
      await served.close();
    }
  });

  it('replaces rules under continuous traffic without losing an allowed packet (exact counts)', async () => {
    const allowA: firewallV1.Rule[] = [
      { id: 'allow-a', priority: 10, action: 'PERMIT', protocol: 'udp', srcPrefix: '10.0.0.0/8' },
    ];
    // the other set permits the same traffic by a different rule, and denies the rest explicitly
    const allowB: firewallV1.Rule[] = [
      { id: 'allow-b', priority: 20, action: 'PERMIT', srcPrefix: '10.1.0.0/16' },
      { id: 'deny-c', priority: 10, action: 'DENY', srcPrefix: '10.0.0.0/8' },
    ];
    const store = await firewall(allowA);
    const allowed = Array.from({ length: 64 }, (_, i) =>
      frame({ src: `10.1.0.${i + 1}`, dst: '192.0.2.1', sport: 1000 + i, dport: 9 }),
    );
    const blocked = Array.from({ length: 16 }, (_, i) =>
      frame({ src: '172.16.0.1', dst: '192.0.2.1', sport: 2000 + i, dport: 9 }),
    );
    const burst = [
      ...allowed.slice(0, 32),
      ...blocked.slice(0, 8),
      ...allowed.slice(32),
      ...blocked.slice(8),
    ];
    let sentAllowed = 0;
    let sentBlocked = 0;
    let received = 0;
    const rounds = 100;
    const fw = rig.fw!;
    let overlapped = 0;
    for (let round = 0; round < rounds; round++) {
      // a backlog of 12 bursts (960 packets) so the worker is busy while the table swaps
      for (let k = 0; k < 12; k++) {
        await rig.push(rig.a, burst);
        sentAllowed += allowed.length;
        sentBlocked += blocked.length;
      }
      const rxBefore = fw.pipeline.counters().rx;
      await store.replace({ rules: ruleSet(round % 2 ? allowA : allowB).rules });
      const rxAfter = fw.pipeline.counters().rx;
      if (rxBefore < sentAllowed + sentBlocked && rxAfter > rxBefore) overlapped++;
      expect(await waitFor(() => fw.pipeline.counters().rx >= sentAllowed + sentBlocked)).toBe(
        true,
      );
      received += rig.drain(rig.b).length;
    }
    // the worker was receiving while most swaps were published
    expect(overlapped).toBeGreaterThan(0);
    console.log(`rule swaps overlapping traffic: ${overlapped}/${rounds}`);
    const total = sentAllowed + sentBlocked;
    expect(await waitFor(() => fw.pipeline.counters().rx >= total && fw.idle(), 10_000)).toBe(true);
    received += rig.drain(rig.b).length;
    expect(fw.pipeline.counters().rx).toBe(total);
    expect(received).toBe(sentAllowed);
    const c = countersMessage(store, fw);
    expect(c.generation).toBe(String(rounds + 1));
    const hits = Object.fromEntries((c.rules ?? []).map((r) => [r.id, Number(r.packets)]));
    // every packet was judged by exactly one table: allowed ones by allow-a or allow-b
    expect(Number(c.defaultDenied) + (hits['deny-c'] ?? 0)).toBe(sentBlocked);
    expect(c.droppedByReason).toEqual({});
    expect(fw.pipeline.counters().drops).toEqual({});
  });
});
