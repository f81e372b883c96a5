import { describe, expect, it } from 'vitest';
import { NodeConfigError } from './errors';
import { netconfFor, nodePaths, parseNodeConfig } from './config';

describe('node config', () => {
  it('has a working default for every field', () => {
    const c = parseNodeConfig({});
    expect(c.stateDir).toBe('/var/run/flowline-node');
    expect(c.ovs).toEqual({ pmdCpuMask: '0x2', socketMemMb: 1024, pmdMaxSleepUs: 500 });
    expect(c.emulatedNics).toEqual([{ pf: 'ens1f0', vfs: 4, numa: 0 }]);
    expect(Object.keys(c.networks)).toEqual(['flowline-net']);
  });

  it('names a bad field', () => {
    expect(() => parseNodeConfig({ ovs: { pmdCpuMask: 'two' } })).toThrow(NodeConfigError);
    expect(() => parseNodeConfig({ emulatedNics: [{ pf: 'ens1f0', vfs: 99 }] })).toThrow(
      /emulatedNics\.0\.vfs/,
    );
  });

  it('completes a network attachment with the node socket dir, bridge and OVS socket', () => {
    const c = parseNodeConfig({
      networks: { lan: { type: 'flowline', ipam: { type: 'host-local', ranges: [] } } },
    });
    const paths = nodePaths('/run/n');
    expect(netconfFor(c, paths, 'lan', '/run/n/ovs/db.sock')).toEqual({
      cniVersion: '1.1.0',
      type: 'flowline',
      bridge: 'br-flowline',
      mtu: 1500,
      name: 'lan',
      socketDir: '/run/n/sockets',
      ovsdbSocket: '/run/n/ovs/db.sock',
      ipam: { dataDir: '/run/n/ipam', type: 'host-local', ranges: [] },
    });
    expect(() => netconfFor(c, paths, 'wan', 'x')).toThrow(
      /networks\.wan is not defined \(known: lan\)/,
    );
  });
});
