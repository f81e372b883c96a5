import { describe, expect, it } from 'vitest';
import { UnresolvedPortError } from './errors';
import { chainKey, cookieOf, type ResolvedChain } from './flows';
import { REVERSE_BIT, computePath, placePorts, stepKey } from './path';
import { validateChainSpec } from './spec';

/** gen → fw → rtr → sink, as issue 19's e2e: fw on node a, rtr on node b, gen and sink on a. */
function chain(
  over: Record<string, unknown> = {},
  health: [boolean, boolean] = [true, true],
): ResolvedChain {
  return {
    name: 'cross',
    spec: validateChainSpec({
      classifier: { ingressPort: 'default/gen/net1', ipVersion: 4, protocol: 'udp' },
      hops: [
        { nf: 'default/fw', ingressInterface: 'net1', egressInterface: 'net2' },
        { nf: 'default/rtr', ingressInterface: 'net1', egressInterface: 'net2' },
      ],
      egressPort: 'default/sink/net1',
      ...over,
    }),
    ingressPort: 'gen1',
    egressPort: 'sink1',
    hops: [
      { nf: 'default/fw', ingressPort: 'fw1', egressPort: 'fw2', healthy: health[0] },
      { nf: 'default/rtr', ingressPort: 'rtr1', egressPort: 'rtr2', healthy: health[1] },
    ],
  };
}

const PLACEMENT: Record<string, string[]> = {
  gen1: ['a'],
  fw1: ['a'],
  fw2: ['a'],
  rtr1: ['b'],
  rtr2: ['b'],
  sink1: ['a'],
};
const nodesOf =
  (placement: Record<string, string[]>) =>
  (port: string): string[] =>
    placement[port] ?? [];
const key = (step: number, reverse = false) => ({
  chain: chainKey('cross'),
  hop: (reverse ? REVERSE_BIT : 0) | step,
});
const port = (p: string) => ({ kind: 'port' as const, port: p });

describe('computePath', () => {
  it('keeps a chain whose ports are all on one node there whole, with no tunnel', () => {
    const all = Object.fromEntries(Object.keys(PLACEMENT).map((p) => [p, ['b']]));
    const path = computePath(chain(), nodesOf(all));
    expect(path.nodes).toEqual(['b']);
    expect(path.tunnels).toEqual([]);
    expect(path.segments.get('b')).toEqual([
      { reverse: false, step: 0, input: port('gen1'), output: port('fw1') },
      { reverse: false, step: 1, input: port('fw2'), output: port('rtr1') },
      { reverse: false, step: 2, input: port('rtr2'), output: port('sink1') },
    ]);
  });

  it('splits gen → fw (a) → rtr (b) → sink (a) into per-node steps and two crossings keyed by chain and step', () => {
    const path = computePath(chain(), nodesOf(PLACEMENT));
    expect(path.nodes).toEqual(['a', 'b']);
    expect(path.segments.get('a')).toEqual([
      { reverse: false, step: 0, input: port('gen1'), output: port('fw1') },
      {
        reverse: false,
        step: 1,
        input: port('fw2'),
        output: { kind: 'tunnel', to: 'b', key: key(1) },
      },
      {
        reverse: false,
        step: 2,
        input: { kind: 'tunnel', from: 'b', key: key(2) },
        output: port('sink1'),
      },
    ]);
    expect(path.segments.get('b')).toEqual([
      {
        reverse: false,
        step: 1,
        input: { kind: 'tunnel', from: 'a', key: key(1) },
        output: port('rtr1'),
      },
      {
        reverse: false,
        step: 2,
        input: port('rtr2'),
        output: { kind: 'tunnel', to: 'a', key: key(2) },
      },
    ]);
    expect(path.tunnels).toEqual([
      { reverse: false, step: 1, from: 'a', to: 'b', key: key(1) },
      { reverse: false, step: 2, from: 'b', to: 'a', key: key(2) },
    ]);
  });

  it('keys a crossing as the step flow cookie: chain key high, direction and step low', () => {
    const k = stepKey('cross', true, 2);
    expect(cookieOf({ chainKey: chainKey('cross'), reverse: true, step: 2 })).toBe(
      `0x${k.chain.toString(16).padStart(8, '0')}${k.hop.toString(16).padStart(8, '0')}`,
    );
  });

  it('gives a bidirectional chain its reverse crossings with the reverse bit', () => {
    const path = computePath(chain({ bidirectional: true }), nodesOf(PLACEMENT));
    expect(path.tunnels).toEqual([
      { reverse: false, step: 1, from: 'a', to: 'b', key: key(1) },
      { reverse: false, step: 2, from: 'b', to: 'a', key: key(2) },
      // reverse: sink → rtr (step 0, a → b), rtr → fw (step 1, b → a), fw → gen (step 2, local)
      { reverse: true, step: 0, from: 'a', to: 'b', key: key(0, true) },
      { reverse: true, step: 1, from: 'b', to: 'a', key: key(1, true) },
    ]);
    expect(path.segments.get('a')?.filter((s) => s.reverse)).toEqual([
      {
        reverse: true,
        step: 0,
        input: port('sink1'),
        output: { kind: 'tunnel', to: 'b', key: key(0, true) },
      },
      {
        reverse: true,
        step: 1,
        input: { kind: 'tunnel', from: 'b', key: key(1, true) },
        output: port('fw2'),
      },
      { reverse: true, step: 2, input: port('fw1'), output: port('gen1') },
    ]);
  });

  it('applies the failure policy before placing: a dead rtr is bypassed on a, or its step drops there', () => {
    const bypass = computePath(
      chain({ failurePolicy: 'BYPASS' }, [true, false]),
      nodesOf(PLACEMENT),
    );
    expect(bypass.tunnels).toEqual([]);
    expect(bypass.nodes).toEqual(['a', 'b']);
    expect(bypass.segments.get('b')).toEqual([]);
    expect(bypass.segments.get('a')).toEqual([
      { reverse: false, step: 0, input: port('gen1'), output: port('fw1') },
      { reverse: false, step: 1, input: port('fw2'), output: port('sink1') },
    ]);
    const closed = computePath(chain({}, [true, false]), nodesOf(PLACEMENT));
    expect(closed.tunnels).toEqual([]);
    expect(closed.segments.get('a')).toEqual([
      { reverse: false, step: 0, input: port('gen1'), output: port('fw1') },
      { reverse: false, step: 1, input: port('fw2'), output: { kind: 'drop' } },
    ]);
  });

  it('is deterministic: the same path whatever order nodes are reported in', () => {
    const shuffled = { ...PLACEMENT, gen1: ['a'], sink1: ['a'] };
    const one = computePath(chain(), nodesOf(shuffled));
    const two = computePath(chain(), (p) => [...nodesOf(shuffled)(p)].reverse());
    expect(two).toEqual(one);
    expect([...one.segments.keys()]).toEqual(['a', 'b']);
  });
});

describe('placePorts', () => {
  const field = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      expect(e).toBeInstanceOf(UnresolvedPortError);
      return (e as UnresolvedPortError).field;
    }
    throw new Error('expected UnresolvedPortError');
  };

  it('puts a port several nodes have on the node every other port is on', () => {
    const placed = placePorts(
      chain(),
      nodesOf({ ...PLACEMENT, rtr1: ['a', 'b'], rtr2: ['a', 'b'] }),
    );
    expect([...new Set(placed.values())]).toEqual(['a']);
  });

  it('refuses a port on no node, and one on several when the chain spans nodes, naming the field', () => {
    expect(field(() => placePorts(chain(), nodesOf({ ...PLACEMENT, rtr2: [] })))).toBe(
      'spec.hops[1].egress_interface',
    );
    expect(field(() => placePorts(chain(), nodesOf({ ...PLACEMENT, sink1: ['a', 'b'] })))).toBe(
      'spec.egress_port',
    );
  });
});
