import { describe, expect, it } from 'vitest';
import { type Placement, preferredAllocation } from './preferred';

/** PF p on NUMA node n with k VFs: ids "p<p>v<i>". */
function host(
  pfs: Array<{ pf: number; numa: number | undefined; vfs: number }>,
): Map<string, Placement> {
  const m = new Map<string, Placement>();
  for (const { pf, numa, vfs } of pfs) {
    for (let i = 0; i < vfs; i++)
      m.set(`p${pf}v${i}`, { id: `p${pf}v${i}`, numaNode: numa, group: `pf${pf}`, order: i });
  }
  return m;
}

const pfOf = (id: string): string => id.slice(0, id.indexOf('v'));

describe('preferred allocation', () => {
  const twoNodes = host([
    { pf: 0, numa: 0, vfs: 4 },
    { pf: 1, numa: 0, vfs: 4 },
    { pf: 2, numa: 1, vfs: 4 },
    { pf: 3, numa: 1, vfs: 4 },
  ]);
  const all = [...twoNodes.keys()];

  it('always includes must-include devices and returns the requested size', () => {
    const got = preferredAllocation(twoNodes, all, ['p3v2'], 3, 'spread');
    expect(got).toHaveLength(3);
    expect(got[0]).toBe('p3v2');
  });

  it('stays on the NUMA node of the must-include devices', () => {
    const got = preferredAllocation(twoNodes, all, ['p2v1'], 5, 'spread');
    expect(got.every((id) => twoNodes.get(id)!.numaNode === 1)).toBe(true);
  });

  it('spreads across PFs, packs onto few PFs', () => {
    const spread = preferredAllocation(twoNodes, all, [], 4, 'spread');
    expect(new Set(spread.map(pfOf)).size).toBe(2);
    expect(
      spread.every(
        (id) => twoNodes.get(id)!.numaNode === spread.map((i) => twoNodes.get(i)!.numaNode)[0],
      ),
    ).toBe(true);
    const pack = preferredAllocation(twoNodes, all, [], 4, 'pack');
    expect(new Set(pack.map(pfOf)).size).toBe(1);
    const packMust = preferredAllocation(twoNodes, all, ['p1v3'], 3, 'pack');
    expect(packMust.map(pfOf)).toEqual(['p1', 'p1', 'p1']);
  });

  it('picks the node that fits most tightly, keeping the bigger node whole', () => {
    const uneven = host([
      { pf: 0, numa: 0, vfs: 2 },
      { pf: 1, numa: 1, vfs: 6 },
    ]);
    const got = preferredAllocation(uneven, [...uneven.keys()], [], 2, 'spread');
    expect(got.map(pfOf)).toEqual(['p0', 'p0']);
  });

  it('crosses NUMA nodes only when one node cannot hold the request, must-include node first', () => {
    const got = preferredAllocation(twoNodes, all, ['p0v0'], 10, 'spread');
    expect(got).toHaveLength(10);
    expect(got.filter((id) => twoNodes.get(id)!.numaNode === 0)).toHaveLength(8);
  });

  it('only returns available devices, and keeps unknown available IDs as a last resort', () => {
    const available = ['p0v0', 'p2v0', 'p2v1', 'other'];
    const got = preferredAllocation(twoNodes, available, [], 4, 'spread');
    expect(new Set(got)).toEqual(new Set(available));
    expect(got[3]).toBe('other');
  });

  it('handles devices without a NUMA node', () => {
    const flat = host([
      { pf: 0, numa: undefined, vfs: 2 },
      { pf: 1, numa: undefined, vfs: 2 },
    ]);
    expect(
      preferredAllocation(flat, [...flat.keys()], [], 2, 'spread')
        .map(pfOf)
        .sort(),
    ).toEqual(['p0', 'p1']);
  });
});
