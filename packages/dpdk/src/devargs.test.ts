import { describe, expect, it } from 'vitest';

import { canonicalDevargs, deviceName, devargs, normalizePci, validateDevargs } from './devargs';
import { DevargsError } from './errors';

describe('devargs builders', () => {
  it('builds every port type', () => {
    expect(
      devargs.virtioUser({
        id: 0,
        path: '/run/flowline/p/eth1.sock',
        server: true,
        queues: 2,
        queueSize: 1024,
        mac: '02:00:00:00:00:01',
      }),
    ).toBe(
      'net_virtio_user0,path=/run/flowline/p/eth1.sock,server=1,queues=2,queue_size=1024,mac=02:00:00:00:00:01',
    );
    expect(devargs.virtioUser({ id: 1, path: '/tmp/v.sock', packed: true })).toBe(
      'net_virtio_user1,path=/tmp/v.sock,packed_vq=1',
    );
    expect(devargs.virtioUser({ id: 1, path: '/tmp/v.sock', packed: false })).toBe(
      'net_virtio_user1,path=/tmp/v.sock',
    );
    expect(devargs.vhost({ id: 'a', iface: '/tmp/v.sock', client: true })).toBe(
      'net_vhosta,iface=/tmp/v.sock,client=1',
    );
    expect(devargs.ring({ id: 3 })).toBe('net_ring3');
    expect(devargs.null({ id: 0, size: 64 })).toBe('net_null0,size=64');
    expect(devargs.tap({ id: 0, iface: 'fltap0' })).toBe('net_tap0,iface=fltap0');
    expect(devargs.afPacket({ id: 0, iface: 'veth0', qpairs: 2 })).toBe(
      'net_af_packet0,iface=veth0,qpairs=2',
    );
    expect(devargs.memif({ id: 0, socket: '/tmp/m.sock', role: 'server' })).toBe(
      'net_memif0,socket=/tmp/m.sock,role=server',
    );
    expect(devargs.pcap({ id: 0, rxPcap: '/tmp/in.pcap', txPcap: '/tmp/out.pcap' })).toBe(
      'net_pcap0,rx_pcap=/tmp/in.pcap,tx_pcap=/tmp/out.pcap',
    );
    expect(devargs.pci('03:00.1', { rxq_pkt_burst: 32 })).toBe('0000:03:00.1,rxq_pkt_burst=32');
  });

  it('rejects bad arguments with the device in the error', () => {
    expect(() => devargs.virtioUser({ id: 0, path: 'x.sock' })).toThrow(DevargsError);
    expect(() => devargs.virtioUser({ id: 0, path: `/${'a'.repeat(107)}` })).toThrow(/107 bytes/);
    expect(() => devargs.virtioUser({ id: 0, path: '/a,b' })).toThrow(/commas/);
    expect(() => devargs.virtioUser({ id: 0, path: '/a', queues: 0 })).toThrow(/queues=0/);
    expect(() => devargs.vhost({ id: 'x y', iface: '/a' })).toThrow(/bad device/);
    expect(() => devargs.tap({ id: 0, iface: 'much-too-long-ifname' })).toThrow(/iface/);
    expect(() => devargs.pcap({ id: 0 })).toThrow(/rxPcap/);
    expect(() => devargs.pci('eth0')).toThrow(/PCI address/);
    expect(() => devargs.virtioUser({ id: 0, path: '/a', mac: 'zz' })).toThrow(/mac/);
  });

  it('validates and names devargs strings', () => {
    expect(validateDevargs('net_ring0,a=1,b=x')).toEqual({
      name: 'net_ring0',
      kv: { a: '1', b: 'x' },
    });
    expect(() => validateDevargs('')).toThrow(/empty/);
    expect(() => validateDevargs('net ring')).toThrow(/whitespace/);
    expect(() => validateDevargs('net_ring0,=1')).toThrow(/key=value/);
    expect(deviceName('03:00.1,x=1')).toBe('0000:03:00.1');
    expect(normalizePci('0000:AF:00.7')).toBe('0000:af:00.7');
  });

  it('probes a device under the name its port is looked up by', () => {
    // the PCI bus names the device 0000:03:00.1; probing "03:00.1" left a port no name found
    expect(canonicalDevargs('03:00.1,x=1')).toBe('0000:03:00.1,x=1');
    expect(canonicalDevargs('0000:AF:00.7')).toBe('0000:af:00.7');
    expect(canonicalDevargs('net_ring0,a=03:00.1')).toBe('net_ring0,a=03:00.1');
    expect(() => canonicalDevargs('bad name')).toThrow(/whitespace/);
  });
});
