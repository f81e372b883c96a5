import { type Prefix, addressPrefix, parsePrefix } from '@flowline/packet';
import { DEFAULT_MTU, type RouterInterface } from './interfaces';
import type { NeighborTable } from './neighbors';
import type { StaticRoute } from './routes';

/** A next hop as the dataplane's LPM stage takes it. No dstMac: punt so the slow path resolves. */
export interface FibNextHop {
  port: string;
  srcMac: string;
  dstMac?: string;
  /** The interface's MTU: longer packets are punted (too_big). */
  mtu: number;
}

export interface FibRoute {
  prefix: Prefix;
  nextHop: number;
  origin: 'connected' | 'static' | 'neighbor';
}

export interface Fib {
  routes: FibRoute[];
  nextHops: FibNextHop[];
  /** The router's own addresses: packets to them are punted to the slow path. */
  local4: Uint8Array[];
  local6: Uint8Array[];
  /** Gateways the FIB needs but whose MAC is not known: resolve them. */
  unresolved: { iface: string; bytes: Uint8Array }[];
}

/** Applies a FIB to the dataplane: build aside, swap, free after quiescence. */
export interface FibProgrammer {
  apply(fib: Fib): Promise<void>;
}

/**
 * Compiles interfaces, static routes and the neighbour cache into the LPM stage's tables:
 * - each connected subnet points at a "glean" next hop (no MAC) on its interface, so traffic
 *   to an unknown host there is punted and the slow path resolves it;
 * - each neighbour with a MAC gets a host route (/32, /128) to its own next hop;
 * - a static route points at its gateway's next hop, or gleans while the gateway is unresolved.
 */
export function compileFib(
  interfaces: readonly RouterInterface[],
  statics: readonly StaticRoute[],
  neighbors: NeighborTable,
): Fib {
  const nextHops: FibNextHop[] = [];
  const index = new Map<string, number>();
  const mtuOf = new Map(interfaces.map((i) => [i.name, i.mtu]));
  const hop = (port: string, srcMac: string, dstMac?: string): number => {
    const k = `${port}|${dstMac ?? 'glean'}`;
    let i = index.get(k);
    if (i === undefined) {
      const mtu = mtuOf.get(port) ?? DEFAULT_MTU;
      i = nextHops.push({ port, srcMac, ...(dstMac ? { dstMac } : {}), mtu }) - 1;
      index.set(k, i);
    }
    return i;
  };
  const macOf = new Map(interfaces.map((i) => [i.name, i.mac]));
  const routes: FibRoute[] = [];
  const unresolved: Fib['unresolved'] = [];

  for (const iface of interfaces) {
    for (const a of iface.addresses)
      routes.push({ prefix: a.subnet, nextHop: hop(iface.name, iface.mac), origin: 'connected' });
  }
  for (const n of neighbors.list()) {
    if (!n.mac || n.state === 'FAILED') continue;
    const srcMac = macOf.get(n.iface);
    if (!srcMac) continue;
    routes.push({
      prefix: parsePrefix(n.address),
      nextHop: hop(n.iface, srcMac, n.mac),
      origin: 'neighbor',
    });
  }
  for (const r of statics) {
    const srcMac = macOf.get(r.iface)!;
    if (!r.nextHop) {
      routes.push({ prefix: r.prefix, nextHop: hop(r.iface, srcMac), origin: 'static' });
      continue;
    }
    const n = neighbors.lookup(r.iface, r.nextHop.address);
    if (n?.mac && n.state !== 'FAILED') {
      routes.push({ prefix: r.prefix, nextHop: hop(r.iface, srcMac, n.mac), origin: 'static' });
    } else {
      routes.push({ prefix: r.prefix, nextHop: hop(r.iface, srcMac), origin: 'static' });
      unresolved.push({ iface: r.iface, bytes: r.nextHop.bytes });
    }
  }
  // A host route for a neighbour must not shadow a more specific static route, and LPM keys
  // must be unique: keep the first (connected < neighbour < static order puts statics last,
  // so a static /32 wins over a learned one).
  const byKey = new Map<string, FibRoute>();
  for (const r of routes) byKey.set(r.prefix.text, r);
  return {
    routes: [...byKey.values()],
    nextHops,
    local4: interfaces.flatMap((i) =>
      i.addresses.filter((a) => a.family === 4).map((a) => a.bytes),
    ),
    local6: interfaces.flatMap((i) =>
      i.addresses.filter((a) => a.family === 6).map((a) => a.bytes),
    ),
    unresolved,
  };
}

/** A FIB's routes by prefix, and the prefix lengths in use per family, longest first. */
interface FibIndex {
  byPrefix: Map<string, FibRoute>;
  lengths: Record<4 | 6, number[]>;
}

const indexes = new WeakMap<Fib, FibIndex>();

/**
 * The next hop the FIB gives a destination address (4 or 16 bytes): its longest matching prefix,
 * as the LPM stage chooses, for the slow path (which interface a punted packet was to leave by).
 * One map lookup per prefix length in use; the index is built at the FIB's first lookup.
 */
export function fibLookup(fib: Fib, dst: Uint8Array): FibNextHop | undefined {
  let ix = indexes.get(fib);
  if (!ix) {
    const lengths = { 4: new Set<number>(), 6: new Set<number>() };
    for (const r of fib.routes) lengths[r.prefix.family].add(r.prefix.length);
    const longestFirst = (s: Set<number>) => [...s].sort((a, b) => b - a);
    ix = {
      byPrefix: new Map(fib.routes.map((r) => [r.prefix.text, r])),
      lengths: { 4: longestFirst(lengths[4]), 6: longestFirst(lengths[6]) },
    };
    indexes.set(fib, ix);
  }
  for (const length of ix.lengths[dst.length === 4 ? 4 : 6]) {
    const route = ix.byPrefix.get(addressPrefix(dst, length).text);
    if (route) return fib.nextHops[route.nextHop];
  }
  return undefined;
}
