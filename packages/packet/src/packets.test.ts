import { describe, expect, it } from 'vitest';
import {
  PacketError,
  arpFrame,
  flowFrame,
  fragmentIpv4,
  internetChecksum,
  ipv4Header,
  multicastMac,
  neighborAdvertisementFrame,
  neighborSolicitationFrame,
  packetTooBigFrame,
  parseFrame,
  pseudoHeaderSum,
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

  it('reads no transport header where the IP header says there is none, and never throws', () => {
    const udp4 = () =>
      flowFrame({
        ...macs,
        src: '10.0.0.1',
        dst: '10.0.1.1',
        protocol: 'udp',
        srcPort: 1,
        dstPort: 2,
      });
    const ihl4 = udp4();
    ihl4[14] = 0x44; // a 16-byte header: the "ports" would be read from inside it
    expect(parseFrame(ihl4).l4).toBeUndefined();
    expect(parseFrame(ihl4).ipv4?.headerChecksumOk).toBe(false);
    const short4 = udp4();
    short4.writeUInt16BE(20 + 3, 16); // a 3-byte UDP "header"
    expect(parseFrame(short4).l4).toBeUndefined();
    const under4 = udp4();
    under4.writeUInt16BE(12, 16); // total length under the header's
    expect(parseFrame(under4).l4).toBeUndefined();
    const udp6 = flowFrame({
      ...macs,
      src: 'fd00::1',
      dst: 'fd00:1::1',
      protocol: 'udp',
      srcPort: 1,
      dstPort: 2,
    });
    for (const payloadLength of [0, 3]) {
      udp6.writeUInt16BE(payloadLength, 18);
      expect(parseFrame(udp6).l4).toBeUndefined();
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

/** The error a call throws (undefined when it throws none). */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  return undefined;
}

describe('packet too big (ICMP fragmentation needed, ICMPv6 packet too big)', () => {
  const host = '02:00:00:00:00:01';
  const router = '02:00:00:00:00:fe';
  const v4 = flowFrame({
    srcMac: host,
    dstMac: router,
    src: '192.0.2.1',
    dst: '198.51.100.9',
    protocol: 'udp',
    srcPort: 4000,
    dstPort: 5000,
    payload: Buffer.alloc(1400, 0xab),
  });
  const v6 = flowFrame({
    srcMac: host,
    dstMac: router,
    src: '2001:db8:1::2',
    dst: '2001:db8:99::7',
    protocol: 'udp',
    srcPort: 4000,
    dstPort: 5000,
    payload: Buffer.alloc(1400, 0xcd),
  });

  // The expected headers were computed apart from this code (Python's struct, RFC 1071 sums).
  it('IPv4: type 3 code 4 with the next-hop MTU (RFC 1191), quoting the header and 8 bytes', () => {
    const out = packetTooBigFrame(v4, router, '192.0.2.254', 1400);
    expect(out.toString('hex')).toBe(
      // Ethernet back to the host; IPv4 192.0.2.254 -> 192.0.2.1, ICMP, TTL 64, DF
      '020000000001' +
        '0200000000fe' +
        '0800' +
        '45000038' +
        '00004000' +
        '4001b5c5' +
        'c00002fe' +
        'c0000201' +
        // type 3, code 4, checksum, unused 0, next-hop MTU 1400 (0x0578), then the quote
        '0304' +
        '52bd' +
        '0000' +
        '0578' +
        v4.subarray(14, 14 + 20 + 8).toString('hex'),
    );
    // the checksums, recomputed: a header or message that carries a right one sums to 0
    expect(internetChecksum(out.subarray(14, 34))).toBe(0);
    expect(internetChecksum(out.subarray(34))).toBe(0);
  });

  it('IPv6: type 2 with the MTU (RFC 4443), quoting as much as fits in 1280 bytes', () => {
    const out = packetTooBigFrame(v6, router, '2001:db8:1::1', 1280);
    expect(out).toHaveLength(14 + 1280);
    expect(out.toString('hex')).toBe(
      '020000000001' +
        '0200000000fe' +
        '86dd' +
        // payload length 1240, next header 58, hop limit 64, 2001:db8:1::1 -> 2001:db8:1::2
        '60000000' +
        '04d8' +
        '3a' +
        '40' +
        '20010db8000100000000000000000001' +
        '20010db8000100000000000000000002' +
        // type 2, code 0, checksum, MTU 1280 (0x500), then the first 1232 bytes of the packet
        '0200' +
        'fa19' +
        '00000500' +
        v6.subarray(14, 14 + 1232).toString('hex'),
    );
    const src = out.subarray(22, 38);
    const dst = out.subarray(38, 54);
    expect(internetChecksum(out.subarray(54), pseudoHeaderSum(src, dst, 58, 1240))).toBe(0);
  });

  it('quotes the IP packet, never the Ethernet padding after it', () => {
    const short = Buffer.concat([
      flowFrame({
        srcMac: host,
        dstMac: router,
        src: '2001:db8:1::2',
        dst: '2001:db8:99::7',
        protocol: 'udp',
        srcPort: 1,
        dstPort: 2,
      }),
      Buffer.alloc(6, 0xee), // padding: not part of the 48-byte packet
    ]);
    const out = packetTooBigFrame(short, router, '2001:db8:1::1', 1280);
    expect(out.subarray(54 + 8).equals(short.subarray(14, 14 + 48))).toBe(true);
    expect(parseFrame(out).l4).toMatchObject({ icmpType: 2, checksumOk: true });
    const te = timeExceededFrame(short, router, '2001:db8:1::1');
    expect(te.subarray(54 + 8).equals(short.subarray(14, 14 + 48))).toBe(true);
  });

  it('refuses an MTU the family cannot have, and a frame that is not IP, naming the argument', () => {
    for (const [frame, mtu] of [
      [v4, 67],
      [v4, 65_536],
      [v4, 1400.5],
      [v6, 1279],
    ] as const) {
      const e = thrown(() => packetTooBigFrame(frame, router, '192.0.2.254', mtu));
      expect(e).toBeInstanceOf(PacketError);
      expect(e).toMatchObject({ field: 'mtu' });
    }
    const arp = arpFrame({
      op: 'request',
      senderMac: host,
      senderIp: '192.0.2.1',
      targetMac: '00:00:00:00:00:00',
      targetIp: '192.0.2.254',
    });
    expect(() => packetTooBigFrame(arp, router, '192.0.2.254', 1400)).toThrow(
      'packet: packet too big needs an IPv4 or IPv6 packet',
    );
  });
});

describe('fragmentIpv4 (RFC 791)', () => {
  const data = Buffer.from(Array.from({ length: 100 }, (_, i) => i));
  // 192.0.2.1 -> 198.51.100.9, UDP, TTL 63, id 0x1234, no DF; options: record route (7, not
  // copied), no-op, router alert (148: copied). Headers computed apart (Python).
  const packet = Buffer.concat([
    Buffer.from('48000084123400003f11daeac0000201c6336409070704000000000194040000', 'hex'),
    data,
  ]);

  it('splits into 8-byte multiples with MF and offsets; later fragments keep copied options only', () => {
    const frags = fragmentIpv4(packet, 68);
    expect(frags.map((f) => f.toString('hex'))).toEqual([
      '48000040123420003f11bb2ec0000201c6336409070704000000000194040000' +
        data.subarray(0, 32).toString('hex'),
      '46000040123420043f11c832c0000201c633640994040000' + data.subarray(32, 72).toString('hex'),
      '46000034123400093f11e839c0000201c633640994040000' + data.subarray(72).toString('hex'),
    ]);
    for (const f of frags) {
      expect(f.length).toBeLessThanOrEqual(68);
      expect(internetChecksum(f.subarray(0, (f[0]! & 0xf) * 4))).toBe(0);
    }
  });

  it('fragments a fragment: offsets count on from its own, the last keeps its MF', () => {
    const fragment = Buffer.concat([
      Buffer.from('450000784321201009116206c0000201c6336409', 'hex'),
      data,
    ]);
    expect(fragmentIpv4(fragment, 68).map((f) => f.toString('hex'))).toEqual([
      '45000044432120100911623ac0000201c6336409' + data.subarray(0, 48).toString('hex'),
      '450000444321201609116234c0000201c6336409' + data.subarray(48, 96).toString('hex'),
      '450000184321201c0911625ac0000201c6336409' + data.subarray(96).toString('hex'),
    ]);
  });

  it('refuses a fragment whose offset and data run past 65,535 bytes (the offset would spill into the flags)', () => {
    // Offset field 8100 (64,800 bytes), 1,480 bytes of data, MF clear.
    const far = Buffer.concat([
      Buffer.from('450005dc43211fa409110000c0000201c6336409', 'hex'),
      Buffer.alloc(1480),
    ]);
    far.writeUInt16BE(internetChecksum(far.subarray(0, 20)), 10);
    expect(() => fragmentIpv4(far, 576)).toThrow(/run past the 65535 bytes of an IPv4 datagram/);
    // one 8-byte unit less of offset fits
    far.writeUInt16BE(0x1fa4 - 100, 6);
    far.writeUInt16BE(0, 10);
    far.writeUInt16BE(internetChecksum(far.subarray(0, 20)), 10);
    const frags = fragmentIpv4(far, 576);
    expect(frags.map((f) => f.readUInt16BE(6) & 0x1fff)).toEqual([8000, 8069, 8138]);
  });

  it('returns a packet that fits alone and unchanged, without the Ethernet padding after it', () => {
    const padded = Buffer.concat([packet, Buffer.alloc(10)]);
    expect(fragmentIpv4(padded, 132).map((f) => f.toString('hex'))).toEqual([
      packet.toString('hex'),
    ]);
  });

  it('refuses DF, a small MTU, bad lengths and bad options, naming the argument', () => {
    const df = Buffer.from(packet);
    df[6] = 0x40;
    expect(() => fragmentIpv4(df, 68)).toThrow(
      'packet: has DF set: 132 bytes must not be fragmented to 68',
    );
    expect(thrown(() => fragmentIpv4(packet, 67))).toMatchObject({ field: 'mtu' });
    expect(thrown(() => fragmentIpv4(packet.subarray(0, 100), 68))).toMatchObject({
      field: 'packet',
      message: 'packet: header length 32 and total length 132 do not fit its 100 bytes',
    });
    const badOption = Buffer.from(packet);
    badOption[21] = 40; // record route's length past the header
    expect(() => fragmentIpv4(badOption, 68)).toThrow(
      'packet: IPv4 option 7 at byte 20 has a bad length 40',
    );
    expect(thrown(() => fragmentIpv4(Buffer.alloc(10), 68))).toBeInstanceOf(PacketError);
  });
});
