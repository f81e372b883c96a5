import type { RoutingTable } from '@flowline/dpdk';
import { formatAddress, formatMac } from '@flowline/packet';
import { describe, expect, it } from 'vitest';
import { fibToTable, gleanMac } from './dataplane';
import { compileFib } from './fib';
import { makeInterface } from './interfaces';
import { NeighborTable } from './neighbors';
import { validateRoute } from './routes';

/** The table with its parsed values written as text, to compare with what the FIB said. */
const asText = (t: RoutingTable) => ({
  nextHops: t.nextHops.map((h) => ({
    port: h.port,
    mac: formatMac(h.mac),
    ...(h.srcMac ? { srcMac: formatMac(h.srcMac) } : {}),
    mtu: h.mtu,
  })),
  routes: t.routes.map((r) => ({ prefix: r.prefix.text, nextHop: r.nextHop })),
  localAddresses: (t.localAddresses ?? []).map((a) => formatAddress(a.bytes, a.family)),
});

describe('fibToTable', () => {
  const ifs = [
    makeInterface('net1', '02:00:00:00:01:01', ['10.0.1.1/24', '2001:db8:1::1/64'], 'i0'),
    makeInterface('net2', '02:00:00:00:02:01', ['10.0.2.1/24'], 'i1', 1442),
  ];
  const neighbors = new NeighborTable({ probe: () => undefined, changed: () => undefined });
  const ports: Record<string, number> = { net1: 4, net2: 7 };

  it('sends unresolved next hops to the glean port, naming the interface in the MAC, with its MTU', () => {
    const statics = [validateRoute({ prefix: '198.51.100.0/24', nextHop: '10.0.2.2' }, ifs, 'r')];
    const t = asText(
      fibToTable(compileFib(ifs, statics, neighbors), ['net1', 'net2'], (n) => ports[n]!, 9),
    );
    expect(t.nextHops).toEqual([
      { port: 9, mac: gleanMac(0), srcMac: '02:00:00:00:01:01', mtu: 1500 },
      { port: 9, mac: gleanMac(1), srcMac: '02:00:00:00:02:01', mtu: 1442 },
    ]);
    expect(t.routes).toContainEqual({ prefix: '198.51.100.0/24', nextHop: 1 });
    expect(t.routes).toContainEqual({ prefix: '2001:db8:1::/64', nextHop: 0 });
    expect(t.localAddresses).toEqual(['10.0.1.1', '10.0.2.1', '2001:db8:1::1']);
  });

  it("points resolved gateways at their port and MAC, with their interface's MTU", () => {
    neighbors.learn('net2', Uint8Array.from([10, 0, 2, 2]), '02:bb:00:00:00:02', true, 0);
    const statics = [validateRoute({ prefix: '198.51.100.0/24', nextHop: '10.0.2.2' }, ifs, 'r')];
    const t = asText(
      fibToTable(compileFib(ifs, statics, neighbors), ['net1', 'net2'], (n) => ports[n]!, 9),
    );
    const route = t.routes.find((r) => r.prefix === '198.51.100.0/24')!;
    expect(t.nextHops[route.nextHop]).toEqual({
      port: 7,
      mac: '02:bb:00:00:00:02',
      srcMac: '02:00:00:00:02:01',
      mtu: 1442,
    });
  });

  it('encodes the interface index in the last two bytes of the glean MAC', () => {
    expect(gleanMac(0)).toBe('02:00:00:00:00:00');
    expect(gleanMac(258)).toBe('02:00:00:00:01:02');
  });
});
