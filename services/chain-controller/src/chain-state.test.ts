import { describe, expect, it } from 'vitest';
import { fromStored, toStored } from './chain-state';
import { validateChainSpec } from './spec';

const raw = {
  classifier: { ingressPort: 'gen1' },
  hops: [{ nf: 'default/fw', ingressInterface: 'net1', egressInterface: 'net2' }],
  egressPort: 'sink1',
};

describe('chain state and its stored form', () => {
  it('a stored chain comes back PENDING with its generation and owner, and is stored as it came', () => {
    const stored = { name: 'demo', spec: raw, generation: '12', owner: 'ServiceChain/nfs/demo' };
    const state = fromStored(stored, validateChainSpec(raw), 42);
    expect(state).toMatchObject({
      name: 'demo',
      raw,
      generation: 12n,
      owner: 'ServiceChain/nfs/demo',
      phase: 'PENDING',
      message: 'loaded from the store',
      updatedAt: 42,
    });
    expect(toStored(state)).toEqual(stored);
  });

  it('a chain without an owner is stored without the field', () => {
    const state = fromStored(
      { name: 'plain', spec: raw, generation: '1' },
      validateChainSpec(raw),
      0,
    );
    expect('owner' in state).toBe(false);
    expect(toStored({ ...state, generation: 2n })).toEqual({
      name: 'plain',
      spec: raw,
      generation: '2',
    });
  });
});
