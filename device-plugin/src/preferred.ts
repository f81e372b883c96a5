import type { AllocationPolicy } from './config';

/** What preferred allocation needs to know of a device. */
export interface Placement {
  id: string;
  numaNode: number | undefined;
  /** Devices sharing a group share a bottleneck: VFs of one PF. */
  group: string;
  /** Order within the group (VF index): lower first. */
  order: number;
}

const NO_NODE = -1;

function pickFromGroups(
  devices: Placement[],
  count: number,
  chosenPerGroup: Map<string, number>,
  policy: AllocationPolicy,
): Placement[] {
  const byGroup = new Map<string, Placement[]>();
  for (const d of [...devices].sort((a, b) => a.order - b.order || a.id.localeCompare(b.id))) {
    const list = byGroup.get(d.group) ?? [];
    list.push(d);
    byGroup.set(d.group, list);
  }
  const picked: Placement[] = [];
  while (picked.length < count) {
    const groups = [...byGroup.entries()].filter(([, list]) => list.length > 0);
    if (groups.length === 0) break;
    const need = count - picked.length;
    const used = (g: string): number => chosenPerGroup.get(g) ?? 0;
    let best: [string, Placement[]] | undefined;
    if (policy === 'spread') {
      // The least used PF first; among equals the one with most left, so later picks spread too.
      best = groups.sort(
        ([ga, a], [gb, b]) => used(ga) - used(gb) || b.length - a.length || ga.localeCompare(gb),
      )[0];
    } else {
      // Keep filling a PF already in use; else the PF that fits the rest most tightly; else the
      // fullest, to touch as few PFs as possible.
      const inUse = groups
        .filter(([g]) => used(g) > 0)
        .sort(([ga], [gb]) => used(gb) - used(ga) || ga.localeCompare(gb));
      const fits = groups
        .filter(([, l]) => l.length >= need)
        .sort(([ga, a], [gb, b]) => a.length - b.length || ga.localeCompare(gb));
      const fullest = [...groups].sort(
        ([ga, a], [gb, b]) => b.length - a.length || ga.localeCompare(gb),
      );
      best = inUse[0] ?? fits[0] ?? fullest[0];
    }
    const device = best?.[1].shift();
    if (!best || !device) break;
    picked.push(device);
    chosenPerGroup.set(best[0], used(best[0]) + 1);
  }
  return picked;
}

/**
 * A preferred allocation of `size` devices from `available`, always including `mustInclude`:
 * all on one NUMA node when one node can hold them (the node of the must-include devices first,
 * else the node that fits most tightly, keeping larger nodes whole), and within that spread
 * across PFs or packed onto as few PFs as possible, by the pool's policy.
 */
export function preferredAllocation(
  known: ReadonlyMap<string, Placement>,
  available: string[],
  mustInclude: string[],
  size: number,
  policy: AllocationPolicy,
): string[] {
  const chosen = [...new Set(mustInclude)];
  if (chosen.length >= size) return chosen;
  const chosenSet = new Set(chosen);
  const candidates = [...new Set(available)].filter((id) => !chosenSet.has(id));
  const placed = candidates
    .map((id) => known.get(id))
    .filter((p): p is Placement => p !== undefined);
  const unplaced = candidates.filter((id) => !known.has(id));

  const chosenPerGroup = new Map<string, number>();
  const mustNodes = new Set<number>();
  for (const id of chosen) {
    const p = known.get(id);
    if (!p) continue;
    chosenPerGroup.set(p.group, (chosenPerGroup.get(p.group) ?? 0) + 1);
    mustNodes.add(p.numaNode ?? NO_NODE);
  }

  const byNode = new Map<number, Placement[]>();
  for (const p of placed) {
    const node = p.numaNode ?? NO_NODE;
    byNode.set(node, [...(byNode.get(node) ?? []), p]);
  }
  const need = size - chosen.length;
  const nodes = [...byNode.keys()];
  const countOn = (n: number): number => byNode.get(n)?.length ?? 0;
  const fitting = nodes
    .filter((n) => countOn(n) >= need)
    .sort((a, b) => countOn(a) - countOn(b) || a - b);
  const [mustNode] = mustNodes.size === 1 ? [...mustNodes] : [];
  let order: number[];
  if (mustNode !== undefined && fitting.includes(mustNode)) order = [mustNode];
  else if (mustNodes.size <= 1 && fitting.length > 0) order = fitting.slice(0, 1);
  else {
    order = nodes.sort(
      (a, b) =>
        Number(mustNodes.has(b)) - Number(mustNodes.has(a)) || countOn(b) - countOn(a) || a - b,
    );
  }
  for (const node of order) {
    if (chosen.length >= size) break;
    for (const p of pickFromGroups(
      byNode.get(node) ?? [],
      size - chosen.length,
      chosenPerGroup,
      policy,
    )) {
      chosen.push(p.id);
    }
  }
  for (const id of unplaced) {
    if (chosen.length >= size) break;
    chosen.push(id);
  }
  return chosen;
}
