// fibLookup: the slow path's longest-prefix match over a compiled FIB.
import { parseAddress } from '@flowline/packet';
import { describe, expect, it } from 'vitest';
import { compileFib, fibLookup } from './fib';
import { makeInterface } from './interfaces';
import { NeighborTable } from './neighbors';
import { validateRoute } from './routes';

describe('fibLookup', () => {
  const ifs = [
    makeInterface('net1', '02:00:00:00:01:01', ['10.0.1.1/24', '2001:db8:1::1/64'], 'i0'),
    makeInterface('net2', '02:00:00:00:02:01', ['10.0.2.1/24', '2001:db8:2::1/64'], 'i1', 1400),
  ];
  const neighbors = new NeighborTable({ probe: () => undefined, changed: () => undefined });
  neighbors.learn('net2', parseAddress('10.0.2.2').bytes, '02:bb:00:00:00:02', true, 0);
  const statics = [
    { prefix: '0.0.0.0/0', nextHop: '10.0.1.254' },
    { prefix: '198.51.0.0/16', nextHop: '10.0.2.2' },
    { prefix: '198.51.100.0/24', nextHop: '10.0.1.254' },
    { prefix: '2001:db8:99::/48', nextHop: '2001:db8:2::2' },
  ].map((r, i) => validateRoute(r, ifs, `r[${i}]`));
  const fib = compileFib(ifs, statics, neighbors);
  const hop = (dst: string) => {
    const h = fibLookup(fib, parseAddress(dst).bytes);
    return h && [h.port, h.dstMac ?? 'glean', h.mtu];
  };

  it('finds the longest prefix of the family, as the LPM stage does', () => {
    expect(hop('198.51.100.7')).toEqual(['net1', 'glean', 1500]); // the /24 over the /16
    expect(hop('198.51.7.1')).toEqual(['net2', '02:bb:00:00:00:02', 1400]);
    expect(hop('10.0.2.2')).toEqual(['net2', '02:bb:00:00:00:02', 1400]); // the neighbour's /32
    expect(hop('10.0.2.3')).toEqual(['net2', 'glean', 1400]); // connected
    expect(hop('8.8.8.8')).toEqual(['net1', 'glean', 1500]); // the default route
    expect(hop('2001:db8:99:1::5')).toEqual(['net2', 'glean', 1400]);
    expect(hop('2001:db8:1::9')).toEqual(['net1', 'glean', 1500]);
    expect(hop('2001:db9::1')).toBeUndefined(); // no IPv6 default: IPv4's does not count
  });
});
