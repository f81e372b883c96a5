import type { chainV1 } from '@flowline/proto';
import { describe, expect, it } from 'vitest';
import { ChainApplyError, type ChainCalls, applyChainDocuments } from './chain-apply';
import type { ChainDocument } from './chain-file';

const spec = (nf: string): chainV1.ChainSpec => ({ hops: [{ nf }] }) as chainV1.ChainSpec;
const doc = (name: string, nf = 'fw'): ChainDocument => ({ name, spec: spec(nf) });

/** A ChainService over a map; names in `refuse` fail their create or update. */
function fakeService(
  chains: Map<string, chainV1.ChainSpec>,
  refuse: Set<string>,
  refuseUndo = new Set<string>(),
): ChainCalls & { log: string[] } {
  const log: string[] = [];
  const out = (name: string): chainV1.Chain__Output =>
    ({ name, spec: chains.get(name) }) as chainV1.Chain__Output;
  const invalid = (name: string): Error =>
    Object.assign(new Error(`bad ${name}`), { code: 3, details: `spec.hops[0].nf: bad ${name}` });
  return {
    log,
    async create(d) {
      log.push(`create ${d.name}`);
      if (refuse.has(d.name)) throw invalid(d.name);
      chains.set(d.name, d.spec);
      return out(d.name);
    },
    async update(d) {
      log.push(`update ${d.name}`);
      if (refuse.has(d.name) && chains.get(d.name) !== d.spec) throw invalid(d.name);
      chains.set(d.name, d.spec);
      return out(d.name);
    },
    async get(name) {
      log.push(`get ${name}`);
      return out(name);
    },
    async delete(name) {
      log.push(`delete ${name}`);
      if (refuseUndo.has(name)) throw new Error(`cannot delete ${name}`);
      chains.delete(name);
    },
  };
}

describe('chain create|update -f: a file is one change', () => {
  it('create: a refused document deletes the chains created before it, and says so', async () => {
    const chains = new Map<string, chainV1.ChainSpec>();
    const svc = fakeService(chains, new Set(['c']));
    const err = await applyChainDocuments(svc, 'create', [doc('a'), doc('b'), doc('c'), doc('d')])
      .then(() => undefined)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ChainApplyError);
    expect((err as Error).message).toBe(
      'chain create c: INVALID_ARGUMENT: spec.hops[0].nf: bad c; deleted again: b, a',
    );
    expect([...chains.keys()]).toEqual([]);
    // d is never sent
    expect(svc.log).toEqual(['create a', 'create b', 'create c', 'delete b', 'delete a']);
  });

  it('update: a refused document puts the chains updated before it back as they were', async () => {
    const old = { a: spec('old-a'), b: spec('old-b') };
    const chains = new Map<string, chainV1.ChainSpec>(Object.entries(old));
    const svc = fakeService(chains, new Set(['b']));
    await expect(
      applyChainDocuments(svc, 'update', [doc('a', 'new'), doc('b', 'new')]),
    ).rejects.toThrow(
      'chain update b: INVALID_ARGUMENT: spec.hops[0].nf: bad b; put back as they were: a',
    );
    expect(chains.get('a')).toBe(old.a);
    expect(chains.get('b')).toBe(old.b);
  });

  it('an undo that fails is named, with its error', async () => {
    const chains = new Map<string, chainV1.ChainSpec>();
    const svc = fakeService(chains, new Set(['c']), new Set(['a']));
    await expect(
      applyChainDocuments(svc, 'create', [doc('a'), doc('b'), doc('c')]),
    ).rejects.toThrow('; deleted again: b; could not be undone: a (cannot delete a)');
  });

  it('every document applied: each chain returned, nothing undone', async () => {
    const chains = new Map<string, chainV1.ChainSpec>();
    const svc = fakeService(chains, new Set());
    const made = await applyChainDocuments(svc, 'create', [doc('a'), doc('b')]);
    expect(made.map((c) => c.name)).toEqual(['a', 'b']);
    expect(svc.log).toEqual(['create a', 'create b']);
  });
});
