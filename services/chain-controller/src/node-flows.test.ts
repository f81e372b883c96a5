import { describe, expect, it } from 'vitest';
import { withCounters } from './chain-status';
import { chainKey, compileFlows, type ResolvedChain } from './flows';
import { TUNNEL_RECEIVE_BIT, compileNodeFlows } from './node-flows';
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
