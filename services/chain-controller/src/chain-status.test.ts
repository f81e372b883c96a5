import { describe, expect, it } from 'vitest';
import type { ChainState } from './chain-state';
import { chainMessage, phaseOf, refreshPhase, withCounters } from './chain-status';
import type { SwitchFlowStats } from './chain-switch';
import { chainKey, cookieOf } from './flows';
import type { HopState } from './hop-health';
import {
  type ChainCrossing,
  TUNNEL_OVERSIZE_BIT,
  TUNNEL_RECEIVE_BIT,
  TUNNEL_SEND_BIT,
} from './node-flows';
import { stepKey } from './path';
import { validateChainSpec } from './spec';

const raw = {
  classifier: { ingressPort: 'gen1' },
  hops: [
    { nf: 'default/fw', ingressInterface: 'net1', egressInterface: 'net2' },
    { nf: 'default/rt', ingressInterface: 'net1', egressInterface: 'net2' },
  ],
  egressPort: 'sink1',
};
const bypass = validateChainSpec({ ...raw, failurePolicy: 'BYPASS' });
const failClosed = validateChainSpec(raw);

const health =
  (states: Record<string, HopState>) =>
  (nf: string): HopState | undefined =>
    states[nf];
const fwDown = health({ 'default/fw': { healthy: false, message: 'NOT_SERVING' } });

function state(over: Partial<ChainState> = {}): ChainState {
  return {
    name: 'demo',
    raw,
    spec: failClosed,
    generation: 3n,
    phase: 'PENDING',
    message: '',
    updatedAt: 1,
    ...over,
  };
}

describe('phaseOf', () => {
  it('is ACTIVE while no hop is reported down (an unknown hop counts as healthy)', () => {
    expect(phaseOf(failClosed, health({}))).toEqual({
      phase: 'ACTIVE',
      message: 'programmed; every hop healthy',
    });
  });

  it('is DEGRADED naming the down hops and what the failure policy does', () => {
    expect(phaseOf(bypass, fwDown)).toEqual({
      phase: 'DEGRADED',
      message: 'default/fw down: bypassed',
    });
    const both = health({
      'default/fw': { healthy: false, message: '' },
      'default/rt': { healthy: false, message: '' },
    });
    expect(phaseOf(failClosed, both)).toEqual({
      phase: 'DEGRADED',
      message: 'default/fw, default/rt down: traffic dropped (fail-closed)',
    });
  });
});

describe('refreshPhase', () => {
  const resolved = {
    name: 'demo',
    spec: failClosed,
    ingressPort: 'gen1',
    egressPort: 'sink1',
    hops: [],
  };

  it('moves updatedAt only when the phase or message changes', () => {
    const s = state({ resolved });
    refreshPhase(s, health({}), () => 5);
    expect(s).toMatchObject({ phase: 'ACTIVE', updatedAt: 5 });
    refreshPhase(s, health({}), () => 9);
    expect(s.updatedAt).toBe(5);
    refreshPhase(s, fwDown, () => 9);
    expect(s).toMatchObject({ phase: 'DEGRADED', updatedAt: 9 });
  });

  it('leaves a chain that is not programmed as it is', () => {
    const s = state({ phase: 'FAILED', message: 'port gone' });
    refreshPhase(s, health({}), () => 5);
    expect(s).toMatchObject({ phase: 'FAILED', message: 'port gone', updatedAt: 1 });
  });
});

describe('chainMessage', () => {
  it('reports the spec as given, the generation, the time in ns and each hop', () => {
    const s = state({
      phase: 'DEGRADED',
      message: 'default/fw down',
      updatedAt: 1_700_000_000_123,
      resolved: {
        name: 'demo',
        spec: failClosed,
        ingressPort: 'gen1',
        egressPort: 'sink1',
        hops: [{ nf: 'default/fw', ingressPort: 'fw1', egressPort: 'fw2', healthy: false }],
      },
    });
    expect(chainMessage(s, fwDown)).toEqual({
      name: 'demo',
      spec: raw,
      generation: '3',
      status: {
        phase: 'DEGRADED',
        message: 'default/fw down',
        updatedUnixNanos: '1700000000123000000',
        hops: [
          {
            nf: 'default/fw',
            healthy: false,
            message: 'NOT_SERVING',
            ingressOvsPort: 'fw1',
            egressOvsPort: 'fw2',
          },
          { nf: 'default/rt', healthy: true, message: '', ingressOvsPort: '', egressOvsPort: '' },
        ],
      },
    });
  });
});

describe('withCounters', () => {
  const key = chainKey('demo');
  const flow = (cookie: string, nPackets: number, node?: string): SwitchFlowStats => ({
    cookie,
    table: 0,
    priority: 0,
    durationSec: 0,
    nPackets,
    nBytes: 0,
    match: '',
    actions: '',
    ...(node ? { node } : {}),
  });

  it('sums the forward flows of the chain per step: step 0 is classified, step i reaches hop i', () => {
    const chain = chainMessage(state(), health({}));
    const stats = [
      flow(cookieOf({ chainKey: key, reverse: false, step: 0 }), 10),
      flow(cookieOf({ chainKey: key, reverse: false, step: 0 }), 5),
      flow(cookieOf({ chainKey: key, reverse: false, step: 1 }), 7),
      flow(cookieOf({ chainKey: key, reverse: true, step: 1 }), 100),
      flow(cookieOf({ chainKey: chainKey('other'), reverse: false, step: 1 }), 1000),
      flow('0x0', 50),
    ];
    const counted = withCounters(chain, stats);
    expect(counted.status?.classifiedPackets).toBe('15');
    expect(counted.status?.hops?.map((h) => h.packets)).toEqual(['15', '7']);
    expect(counted.status?.phase).toBe(chain.status?.phase);
  });

  it('reports zeros for a chain with no flows, and no crossings for a chain on one node', () => {
    const counted = withCounters(chainMessage(state(), health({})), []);
    expect(counted.status).toMatchObject({
      classifiedPackets: '0',
      hops: [{ packets: '0' }, { packets: '0' }],
      crossings: [],
    });
  });

  describe('a chain across nodes: gen (a) → fw (a) → rt (b) → sink (a)', () => {
    const crossing = (reverse: boolean, step: number, from: string, to: string): ChainCrossing => ({
      reverse,
      step,
      from,
      to,
      key: stepKey('demo', reverse, step),
      tunnelPort: `gnv-${from}${to}`,
    });
    // As the switch programmed it (path.ts): fw's output crosses to b, rt's back to a; the
    // reverse direction crosses the other way, in chain order after the forward steps.
    const crossings = [
      crossing(false, 2, 'b', 'a'),
      crossing(false, 1, 'a', 'b'),
      crossing(true, 1, 'a', 'b'),
      crossing(true, 2, 'b', 'a'),
    ];
    const sending = (step: number, reverse = false): string =>
      cookieOf({ chainKey: key, reverse, step });
    const receiving = (step: number, reverse = false): string =>
      cookieOf({ chainKey: key, reverse, step: step | TUNNEL_RECEIVE_BIT });
    const stats = [
      flow(sending(0), 40, 'a'),
      flow(sending(1), 30, 'a'),
      flow(receiving(1), 29, 'b'), // one packet lost in the tunnel
      flow(sending(2), 20, 'b'),
      flow(receiving(2), 19, 'a'),
      flow(receiving(1, true), 500, 'b'),
      flow(receiving(2, true), 600, 'a'),
    ];

    it('fills each crossing from its receiving flow on the receiving node: forward in step order, then reverse', () => {
      const counted = withCounters(chainMessage(state(), health({})), stats, crossings);
      expect(counted.status?.crossings).toEqual([
        {
          step: 1,
          fromNode: 'a',
          toNode: 'b',
          tunnelPort: 'gnv-ab',
          packets: '29',
          reverse: false,
          oversizeDrops: '0',
        },
        {
          step: 2,
          fromNode: 'b',
          toNode: 'a',
          tunnelPort: 'gnv-ba',
          packets: '19',
          reverse: false,
          oversizeDrops: '0',
        },
        {
          step: 1,
          fromNode: 'a',
          toNode: 'b',
          tunnelPort: 'gnv-ab',
          packets: '500',
          reverse: true,
          oversizeDrops: '0',
        },
        {
          step: 2,
          fromNode: 'b',
          toNode: 'a',
          tunnelPort: 'gnv-ba',
          packets: '600',
          reverse: true,
          oversizeDrops: '0',
        },
      ]);
    });

    it('counts hops from the sending flows only: a receiving flow is never a hop', () => {
      const counted = withCounters(chainMessage(state(), health({})), stats, crossings);
      expect(counted.status?.classifiedPackets).toBe('40');
      expect(counted.status?.hops?.map((h) => h.packets)).toEqual(['40', '30']);
    });

    it("counts a receiving flow only on the crossing's receiving node", () => {
      const stray = [
        ...stats,
        flow(receiving(1), 1000, 'a'),
        flow(receiving(2), 1000),
        flow(receiving(1, true), 1000, 'a'),
      ];
      const counted = withCounters(chainMessage(state(), health({})), stray, crossings);
      expect(counted.status?.crossings?.map((c) => c.packets)).toEqual(['29', '19', '500', '600']);
    });

    it("counts a crossing's oversize drops from its meter on its sending node; the check table's flows count nothing", () => {
      const marked = (step: number, bit: number, reverse = false): string =>
        cookieOf({ chainKey: key, reverse, step: step | bit });
      // OVS credits both branches of check_pkt_larger with every packet: these flows' counts
      // are not the drops (nor a hop's, nor a crossing's).
      const checked = [
        ...stats,
        flow(marked(1, TUNNEL_OVERSIZE_BIT), 250, 'a'),
        flow(marked(1, TUNNEL_SEND_BIT), 250, 'a'),
        flow(marked(0, TUNNEL_SEND_BIT), 1000, 'a'),
      ];
      const meters = [
        { cookie: marked(1, TUNNEL_OVERSIZE_BIT), node: 'a', packets: 3 },
        { cookie: marked(1, TUNNEL_OVERSIZE_BIT), node: 'b', packets: 1000 }, // not the sender
        { cookie: marked(2, TUNNEL_OVERSIZE_BIT, true), node: 'b', packets: 7 },
        { cookie: marked(2, TUNNEL_SEND_BIT), node: 'b', packets: 1000 }, // not a too-long flow
        {
          cookie: cookieOf({ chainKey: key + 1, reverse: false, step: 1 | TUNNEL_OVERSIZE_BIT }),
          node: 'a',
          packets: 99,
        },
      ];
      const counted = withCounters(chainMessage(state(), health({})), checked, crossings, meters);
      expect(counted.status?.crossings?.map((c) => [c.reverse, c.step, c.oversizeDrops])).toEqual([
        [false, 1, '3'],
        [false, 2, '0'],
        [true, 1, '0'],
        [true, 2, '7'],
      ]);
      expect(counted.status?.classifiedPackets).toBe('40');
      expect(counted.status?.hops?.map((h) => h.packets)).toEqual(['40', '30']);
      expect(counted.status?.crossings?.map((c) => c.packets)).toEqual(['29', '19', '500', '600']);
    });

    it('reports a crossing with no flow counted yet as 0 packets', () => {
      const counted = withCounters(chainMessage(state(), health({})), [], crossings);
      expect(counted.status?.crossings?.map((c) => [c.reverse, c.step, c.packets])).toEqual([
        [false, 1, '0'],
        [false, 2, '0'],
        [true, 1, '0'],
        [true, 2, '0'],
      ]);
    });
  });
});
