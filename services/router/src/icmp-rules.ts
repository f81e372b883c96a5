import { type ParsedFrame, parseAddress } from '@flowline/packet';

/**
 * Whether a router may answer a packet with an ICMP error (time exceeded, fragmentation needed,
 * packet too big). It must not for (RFC 1812 §4.3.2.7, RFC 4443 §2.4 (e)):
 * - an ICMP error (an error about an error could loop); queries such as echo are fine;
 * - an IPv4 fragment other than the first (the error would quote no transport header);
 * - a packet to a multicast or broadcast address (one packet would draw an error from every
 *   router that sees it), except ICMPv6 packet too big, which path MTU discovery for multicast
 *   needs;
 * - a packet whose source is not a single host (unspecified, multicast, broadcast, loopback):
 *   nobody could receive the error.
 * `frame` is the packet as punted (Ethernet first, no VLAN tag: the router's ports carry none).
 */
export function mayAnswerWithIcmpError(
  frame: Uint8Array,
  parsed: ParsedFrame,
  error: 'time_exceeded' | 'too_big',
): boolean {
  if (parsed.ipv4) {
    const { src, dst, protocol } = parsed.ipv4;
    const fragmentOffset = ((frame[20]! << 8) | frame[21]!) & 0x1fff;
    if (fragmentOffset !== 0) return false;
    if (protocol === 1 && ICMP4_ERRORS.has(parsed.l4?.icmpType ?? -1)) return false;
    return singleHost4(src) && !groupOrBroadcast4(dst);
  }
  if (parsed.ipv6) {
    const { src, dst, nextHeader } = parsed.ipv6;
    // ICMPv6 types below 128 are errors
    if (nextHeader === 58 && (parsed.l4?.icmpType ?? 128) < 128) return false;
    const s = parseAddress(src).bytes;
    if (s.every((b) => b === 0) || s[0] === 0xff || isLoopback6(s)) return false;
    return error === 'too_big' || parseAddress(dst).bytes[0] !== 0xff;
  }
  return false;
}

// destination unreachable, source quench, redirect, time exceeded, parameter problem
const ICMP4_ERRORS = new Set([3, 4, 5, 11, 12]);

function octets(a: string): number[] {
  return a.split('.').map(Number);
}

function singleHost4(a: string): boolean {
  const [x] = octets(a);
  return a !== '0.0.0.0' && x !== 127 && !groupOrBroadcast4(a);
}

function groupOrBroadcast4(a: string): boolean {
  const [x] = octets(a);
  return (x! >= 224 && x! <= 239) || a === '255.255.255.255';
}

function isLoopback6(b: Uint8Array): boolean {
  return b.slice(0, 15).every((x) => x === 0) && b[15] === 1;
}
