import { describe, expect, it } from 'vitest';
import {
  CHAIN_OPTION,
  TunnelKeyError,
  formatTlvMapping,
  parseTlvMap,
  tunnelKeyActions,
  tunnelKeyMatch,
} from './tunnel-key';
import { afPacketDevargs, tunnelPortName } from './underlay';

describe('tunnel key', () => {
  it('sets the hop in the VNI and the chain in the Geneve option, then outputs', () => {
    expect(tunnelKeyActions({ chain: 0xc0ffee11, hop: 0x8002 }, 'gnv1')).toBe(
      'set_field:0x8002->tun_id,set_field:0xc0ffee11->tun_metadata0,output:gnv1',
    );
  });

  it('matches the key as ovs-ofctl prints it back', () => {
    expect(tunnelKeyMatch({ chain: 0, hop: 0 })).toBe('tun_id=0x0,tun_metadata0=0x0');
    expect(tunnelKeyMatch({ chain: 0xffffffff, hop: 0xffffff })).toBe(
      'tun_id=0xffffff,tun_metadata0=0xffffffff',
    );
  });

  it.each([
    { chain: -1, hop: 0 },
    { chain: 2 ** 32, hop: 0 },
    { chain: 1.5, hop: 0 },
    { chain: 1, hop: 0x1000000 },
    { chain: 1, hop: -1 },
  ])('refuses %o: it does not fit the key', (key) => {
    expect(() => tunnelKeyMatch(key)).toThrow(TunnelKeyError);
    expect(() => tunnelKeyActions(key, 'p')).toThrow(TunnelKeyError);
  });

  it('formats the chain option as add-tlv-map takes it', () => {
    expect(formatTlvMapping(CHAIN_OPTION)).toBe('{class=0xffff,type=0x80,len=4}->tun_metadata0');
  });

  it('parses dump-tlv-map output (OVS 3.1), empty and with mappings', () => {
    const head = [
      'NXT_TLV_TABLE_REPLY (xid=0x2):',
      ' max option space=256 max fields=64',
      ' allocated option space=8',
      '',
    ];
    expect(parseTlvMap(head.join('\n'))).toEqual([]);
    const text = [
      ...head,
      ' mapping table:',
      ' class\ttype\tlength\tmatch field',
      ' -----\t----\t------\t-----------',
      ' 0xffff\t0x80\t4\ttun_metadata0',
      ' 0x102\t0x1\t4\ttun_metadata7',
    ].join('\n');
    expect(parseTlvMap(text)).toEqual([
      CHAIN_OPTION,
      { optionClass: 0x102, type: 0x1, length: 4, field: 7 },
    ]);
  });
});

describe('underlay names', () => {
  it('names a tunnel port by its peer, within an interface name', () => {
    const a = tunnelPortName('198.18.0.1');
    expect(a).toMatch(/^gnv[0-9a-f]{10}$/);
    expect(tunnelPortName('198.18.0.1')).toBe(a);
    expect(tunnelPortName('198.18.0.2')).not.toBe(a);
  });

  it('derives a DPDK af_packet vdev per port', () => {
    expect(afPacketDevargs('pod-src', 'veth0')).toBe('net_af_packet_podsrc,iface=veth0');
  });
});
