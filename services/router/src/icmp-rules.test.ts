import {
  flowFrame,
  fragmentIpv4,
  neighborSolicitationFrame,
  parseFrame,
  timeExceededFrame,
} from '@flowline/packet';
import { describe, expect, it } from 'vitest';
import { mayAnswerWithIcmpError } from './icmp-rules';

const MAC = '02:00:00:00:00:01';
const udp = (src: string, dst: string, size = 0) =>
  flowFrame({
    df: false,
    srcMac: MAC,
    dstMac: MAC,
    src,
    dst,
    protocol: 'udp',
    srcPort: 1,
    dstPort: 2,
    ttl: 1,
    ...(size ? { payload: Buffer.alloc(size) } : {}),
  });
const may = (frame: Buffer, error: 'time_exceeded' | 'too_big' = 'time_exceeded') =>
  mayAnswerWithIcmpError(frame, parseFrame(frame), error);

describe('mayAnswerWithIcmpError (RFC 1812 4.3.2.7, RFC 4443 2.4 e)', () => {
  it('answers a unicast packet from a host, IPv4 and IPv6', () => {
    expect(may(udp('10.0.1.50', '10.0.2.9'))).toBe(true);
    expect(may(udp('fd00:1::50', 'fd00:2::9'))).toBe(true);
  });

  it('never answers an ICMP error with another', () => {
    const v4 = timeExceededFrame(udp('10.0.2.9', '10.0.1.50'), MAC, '10.0.3.1');
    const v6 = timeExceededFrame(udp('fd00:2::9', 'fd00:1::50'), MAC, 'fd00:3::1');
    expect([may(v4), may(v6), may(v6, 'too_big')]).toEqual([false, false, false]);
    // an ICMPv6 informational message (neighbour solicitation, type 135) is not an error (it
    // goes to a solicited-node group, so only packet too big may answer it)
    const ns = neighborSolicitationFrame({
      srcMac: MAC,
      src: 'fd00:1::50',
      target: 'fd00:1::1',
    });
    expect(may(ns, 'too_big')).toBe(true);
  });

  it('answers the first fragment of an IPv4 packet, not the others', () => {
    const [first, second] = fragmentIpv4(udp('10.0.1.50', '10.0.2.9', 1200).subarray(14), 576);
    const framed = (ip: Buffer) =>
      Buffer.concat([udp('10.0.1.50', '10.0.2.9').subarray(0, 14), ip]);
    expect(may(framed(first!))).toBe(true);
    expect(may(framed(second!))).toBe(false);
  });

  it('does not answer packets to a group or broadcast address, except ICMPv6 packet too big', () => {
    expect(may(udp('10.0.1.50', '224.0.0.5'))).toBe(false);
    expect(may(udp('10.0.1.50', '255.255.255.255'))).toBe(false);
    expect(may(udp('10.0.1.50', '239.1.1.1'), 'too_big')).toBe(false);
    expect(may(udp('fd00:1::50', 'ff0e::1'))).toBe(false);
    expect(may(udp('fd00:1::50', 'ff0e::1'), 'too_big')).toBe(true);
  });

  it('does not answer packets from no single host', () => {
    for (const src of ['0.0.0.0', '127.0.0.1', '224.0.0.9', '255.255.255.255'])
      expect(may(udp(src, '10.0.2.9')), src).toBe(false);
    for (const src of ['::', '::1', 'ff02::1'])
      expect(may(udp(src, 'fd00:2::9'), 'too_big'), src).toBe(false);
  });
});
