import { describe, expect, it } from 'vitest';
import {
  arpFrame,
  flowFrame,
  internetChecksum,
  ipv4Header,
  multicastMac,
  neighborAdvertisementFrame,
  neighborSolicitationFrame,
  parseFrame,
  solicitedNodeAddress,
  timeExceededFrame,
} from './index';

describe('checksums', () => {
  it('matches the textbook IPv4 header example (checksum 0xb861)', () => {
    const h = ipv4Header({
      src: '192.168.0.1',
      dst: '192.168.0.199',
      protocol: 17,
      payloadLength: 0x73 - 20,
      ttl: 64,
    });
    expect(h.readUInt16BE(10)).toBe(0xb861);
    expect(internetChecksum(h)).toBe(0);
  });
  it('handles odd lengths (RFC 1071 pads with a zero byte)', () => {
    expect(internetChecksum(Uint8Array.from([0x01]))).toBe(
      internetChecksum(Uint8Array.from([0x01, 0x00])),
    );
  });
});

describe('frames', () => {
  const macs = { srcMac: '02:00:00:00:00:01', dstMac: '02:00:00:00:00:02' };
  it('builds UDP and TCP over IPv4 and IPv6 with valid checksums', () => {
    for (const [src, dst] of [
      ['10.0.0.1', '10.0.1.1'],
      ['fd00::1', 'fd00:1::1'],
    ] as const) {
      for (const protocol of ['udp', 'tcp'] as const) {
        const f = parseFrame(
          flowFrame({
            ...macs,
            src,
            dst,
            protocol,
            srcPort: 1234,
            dstPort: 80,
            payload: Buffer.from('hello'),
          }),
        );
        expect(f.l4).toMatchObject({ srcPort: 1234, dstPort: 80, checksumOk: true });
        if (src.includes(':')) expect(f.ipv6).toMatchObject({ src, dst, hopLimit: 64 });
        else expect(f.ipv4).toMatchObject({ src, dst, ttl: 64, headerChecksumOk: true });
      }
    }
  });

  it('builds ARP requests to broadcast and replies to the asker', () => {
    const req = parseFrame(
      arpFrame({
        op: 'request',
        senderMac: macs.srcMac,
        senderIp: '10.0.0.1',
        targetMac: '00:00:00:00:00:00',
        targetIp: '10.0.0.2',
      }),
    );
    expect(req).toMatchObject({
      dstMac: 'ff:ff:ff:ff:ff:ff',
      arp: { op: 1, senderIp: '10.0.0.1', targetIp: '10.0.0.2' },
    });
    const rep = parseFrame(
      arpFrame({
        op: 'reply',
        senderMac: macs.dstMac,
        senderIp: '10.0.0.2',
        targetMac: macs.srcMac,
        targetIp: '10.0.0.1',
      }),
    );
    expect(rep).toMatchObject({ dstMac: macs.srcMac, arp: { op: 2, senderMac: macs.dstMac } });
  });

  it('derives solicited-node groups and their MACs', () => {
    expect(solicitedNodeAddress('fd00::1:2:abcd:ef01')).toBe('ff02::1:ffcd:ef01');
    expect(multicastMac('ff02::1:ffcd:ef01')).toBe('33:33:ff:cd:ef:01');
  });

  it('builds ND solicitations and advertisements with valid ICMPv6 checksums and hop limit 255', () => {
    const ns = parseFrame(
      neighborSolicitationFrame({ srcMac: macs.srcMac, src: 'fd00::1', target: 'fd00::2' }),
    );
    expect(ns).toMatchObject({
      dstMac: '33:33:ff:00:00:02',
      ipv6: { dst: 'ff02::1:ff00:2', hopLimit: 255 },
      l4: { icmpType: 135, checksumOk: true },
    });
    const na = parseFrame(
      neighborAdvertisementFrame({
        srcMac: macs.dstMac,
        dstMac: macs.srcMac,
        target: 'fd00::2',
        dst: 'fd00::1',
        solicited: true,
        router: true,
      }),
    );
    expect(na).toMatchObject({
      ipv6: { src: 'fd00::2', dst: 'fd00::1' },
      l4: { icmpType: 136, checksumOk: true },
    });
  });

  it('answers an expired packet with ICMP time exceeded quoting it, for IPv4 and IPv6', () => {
    const v4 = flowFrame({
      ...macs,
      src: '10.0.0.1',
      dst: '10.9.0.1',
      protocol: 'udp',
      srcPort: 5,
      dstPort: 6,
      ttl: 1,
      payload: Buffer.alloc(100),
    });
    const te4 = timeExceededFrame(v4, '02:00:00:00:00:fe', '10.0.0.254');
    const p4 = parseFrame(te4);
    expect(p4).toMatchObject({
      dstMac: macs.srcMac,
      ipv4: { src: '10.0.0.254', dst: '10.0.0.1', protocol: 1, headerChecksumOk: true },
      l4: { icmpType: 11, icmpCode: 0, checksumOk: true },
    });
    expect(te4.length).toBe(14 + 20 + 8 + 20 + 8); // quotes the IP header and 8 bytes
    const v6 = flowFrame({
      ...macs,
      src: 'fd00::1',
      dst: 'fd09::1',
      protocol: 'tcp',
      srcPort: 5,
      dstPort: 6,
      ttl: 1,
    });
    const p6 = parseFrame(timeExceededFrame(v6, '02:00:00:00:00:fe', 'fd00::fe'));
    expect(p6).toMatchObject({
      ipv6: { src: 'fd00::fe', dst: 'fd00::1' },
      l4: { icmpType: 3, icmpCode: 0, checksumOk: true },
    });
  });

  it('refuses a runt frame with a clear error', () => {
    expect(() => parseFrame(new Uint8Array(10))).toThrow(
      /10 bytes is shorter than an Ethernet header/,
    );
  });
});
