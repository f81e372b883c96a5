import { describe, expect, it } from 'vitest';
import { withCounters } from './chain-status';
import { chainKey, compileFlows, type ResolvedChain } from './flows';
import { TUNNEL_RECEIVE_BIT, compileNodeFlows, geneveOverhead } from './node-flows';
import { validateChainSpec } from './spec';

function chain(): ResolvedChain {
  return {
    name: 'cross',
    spec: validateChainSpec({
      classifier: { ingressPort: 'default/gen/net1', ipVersion: 4, protocol: 'udp' },
      hops: [
        { nf: 'default/fw', ingressInterface: 'net1', egressInterface: 'net2' },
        { nf: 'default/rtr', ingressInterface: 'net1', egressInterface: 'net2' },
      ],
      egressPort: 'default/sink/net1',
    }),
    ingressPort: 'gen1',
    egressPort: 'sink1',
    hops: [
      { nf: 'default/fw', ingressPort: 'fw1', egressPort: 'fw2', healthy: true },
      { nf: 'default/rtr', ingressPort: 'rtr1', egressPort: 'rtr2', healthy: true },
    ],
  };
}
const on = (placement: Record<string, string>) => (p: string) =>
  placement[p] ? [placement[p]] : [];
const options = {
  defaultAction: 'drop' as const,
  tunnelPort: (from: string, to: string) => `gnv-${from}-${to}`,
};
const k = chainKey('cross').toString(16).padStart(8, '0');

describe('compileNodeFlows', () => {
  it('gives a chain on one node exactly the flows compileFlows gives, and other nodes only the default', () => {
    const all = on({ gen1: 'a', fw1: 'a', fw2: 'a', rtr1: 'a', rtr2: 'a', sink1: 'a' });
    const tables = compileNodeFlows([chain()], all, ['b', 'a'], options);
    expect([...tables.keys()]).toEqual(['a', 'b']);
    expect(tables.get('a')).toEqual(compileFlows([chain()], options));
    expect(tables.get('b')).toEqual(['priority=0,actions=drop']);
  });

  it('compiles gen → fw (a) → rtr (b) → sink (a) into each node flows, keyed crossings', () => {
    const split = on({ gen1: 'a', fw1: 'a', fw2: 'a', rtr1: 'b', rtr2: 'b', sink1: 'a' });
    const tables = compileNodeFlows([chain()], split, ['a', 'b'], options);
    const key = `0x${chainKey('cross').toString(16)}`;
    expect(tables.get('a')).toEqual([
      `cookie=0x${k}00000000,priority=10100,in_port=gen1,udp,actions=output:fw1`,
      `cookie=0x${k}00000001,priority=10100,in_port=fw2,udp,actions=set_field:0x1->tun_id,set_field:${key}->tun_metadata0,output:gnv-a-b`,
      `cookie=0x${k}00004002,priority=10100,in_port=gnv-a-b,tun_id=0x2,tun_metadata0=${key},actions=output:sink1`,
      'priority=0,actions=drop',
    ]);
    expect(tables.get('b')).toEqual([
      `cookie=0x${k}00004001,priority=10100,in_port=gnv-b-a,tun_id=0x1,tun_metadata0=${key},actions=output:rtr1`,
      `cookie=0x${k}00000002,priority=10100,in_port=rtr2,udp,actions=set_field:0x2->tun_id,set_field:${key}->tun_metadata0,output:gnv-b-a`,
      'priority=0,actions=drop',
    ]);
  });

  it("with a frame limit, a step into a tunnel checks the length and drops what does not fit through the crossing's meter", () => {
    const split = on({ gen1: 'a', fw1: 'a', fw2: 'a', rtr1: 'b', rtr2: 'b', sink1: 'a' });
    const limits: [string, string][] = [];
    const meters: [string, string][] = [];
    const tables = compileNodeFlows([chain()], split, ['a', 'b'], {
      ...options,
      tunnelFrameLimit: (from, to) => {
        limits.push([from, to]);
        return from === 'a' ? 1456 : undefined; // b's tunnels unchecked
      },
      oversizeMeter: (node, cookie) => {
        meters.push([node, cookie]);
        return 7;
      },
    });
    const key = `0x${chainKey('cross').toString(16)}`;
    const toTunnel = `set_field:0x1->tun_id,set_field:${key}->tun_metadata0,output:gnv-a-b`;
    expect(tables.get('a')).toEqual([
      `cookie=0x${k}00000000,priority=10100,in_port=gen1,udp,actions=output:fw1`,
      `table=1,cookie=0x${k}00002001,priority=2,metadata=0x${k}00000001,reg0=0x1/0x1,actions=meter:7`,
      `table=1,cookie=0x${k}00001001,priority=1,metadata=0x${k}00000001,actions=${toTunnel}`,
      `cookie=0x${k}00000001,priority=10100,in_port=fw2,udp,actions=check_pkt_larger(1456)->NXM_NX_REG0[0],write_metadata:0x${k}00000001,goto_table:1`,
      `cookie=0x${k}00004002,priority=10100,in_port=gnv-a-b,tun_id=0x2,tun_metadata0=${key},actions=output:sink1`,
      'priority=0,actions=drop',
    ]);
    expect(tables.get('b')?.some((f) => f.includes('check_pkt_larger'))).toBe(false);
    expect(limits).toEqual([
      ['a', 'b'],
      ['b', 'a'],
    ]);
    expect(meters).toEqual([['a', `0x${k}00002001`]]); // one per checked crossing
    expect(() =>
      compileNodeFlows([chain()], split, ['a', 'b'], { ...options, tunnelFrameLimit: () => 1456 }),
    ).toThrow('a tunnel frame limit needs oversizeMeter');
    // Geneve with the chain option over IPv4 and IPv6 underlays
    expect([geneveOverhead(4), geneveOverhead(6)]).toEqual([44, 64]);
  });

  it('never counts a receiving flow as a hop: hop counters stay those of the sending steps', () => {
    const stats = (cookie: string, nPackets: number) => ({
      cookie,
      table: 0,
      priority: 10100,
      durationSec: 1,
      nPackets,
      nBytes: 0,
      match: '',
      actions: '',
    });
    const status = withCounters(
      { name: 'cross', status: { hops: [{ nf: 'default/fw' }, { nf: 'default/rtr' }] } },
      [
        stats(`0x${k}00000000`, 10),
        stats(`0x${k}00000001`, 9),
        stats(`0x${k}0000${(TUNNEL_RECEIVE_BIT | 1).toString(16)}`, 9),
      ],
    );
    expect(status.status?.classifiedPackets).toBe('10');
    expect(status.status?.hops?.map((h) => h.packets)).toEqual(['10', '9']);
  });
});
