/**
 * Packet builders for tests, examples and the slow path (ARP replies, ICMP errors): Ethernet,
 * IPv4 (with a correct header checksum), IPv6, UDP, TCP, ICMP. Not for the fast path.
 */
import { parseAddress, parseMac, PROTOCOLS } from '@flowline/packet';

export interface PacketSpec {
  srcMac?: string;
  dstMac?: string;
  vlan?: number;
  src: string;
  dst: string;
  proto?: 'udp' | 'tcp' | 'icmp' | number;
  sport?: number;
  dport?: number;
  ttl?: number;
  /** Payload bytes after the L4 header (default: zeros to reach `size`). */
  payload?: Buffer;
  /** Total frame size without FCS; payload is padded to reach it. Default 64. */
  size?: number;
}

export function ipv4Checksum(hdr: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < hdr.length; i += 2) if (i !== 10) sum += (hdr[i]! << 8) | (hdr[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** Builds an Ethernet frame carrying IPv4 or IPv6 (from the address family) and L4. */
export function buildPacket(s: PacketSpec): Buffer {
  const src = parseAddress(s.src);
  const dst = parseAddress(s.dst);
  if (src.family !== dst.family) throw new Error('src and dst must be the same IP version');
  const v6 = src.family === 6;
  const { tcp, udp, icmp, icmpv6 } = PROTOCOLS;
  const protoNum =
    s.proto === undefined
      ? udp
      : s.proto === 'icmp'
        ? v6
          ? icmpv6
          : icmp
        : typeof s.proto === 'string'
          ? PROTOCOLS[s.proto]
          : s.proto;
  const l4len =
    protoNum === tcp ? 20 : protoNum === udp || protoNum === icmp || protoNum === icmpv6 ? 8 : 0;
  const l2 = 14 + (s.vlan !== undefined ? 4 : 0);
  const l3 = v6 ? 40 : 20;
  const min = l2 + l3 + l4len + (s.payload?.length ?? 0);
  const size = Math.max(min, s.size ?? 64);
  const b = Buffer.alloc(size);
  b.set(parseMac(s.dstMac ?? '02:00:00:00:00:02'), 0);
  b.set(parseMac(s.srcMac ?? '02:00:00:00:00:01'), 6);
  let o = 12;
  if (s.vlan !== undefined) {
    b.writeUInt16BE(0x8100, o);
    b.writeUInt16BE(s.vlan & 0xfff, o + 2);
    o += 4;
  }
  b.writeUInt16BE(v6 ? 0x86dd : 0x0800, o);
  o += 2;
  const ipLen = size - l2;
  if (v6) {
    b[o] = 0x60;
    b.writeUInt16BE(ipLen - 40, o + 4);
    b[o + 6] = protoNum;
    b[o + 7] = s.ttl ?? 64;
    b.set(src.bytes, o + 8);
    b.set(dst.bytes, o + 24);
  } else {
    b[o] = 0x45;
    b.writeUInt16BE(ipLen, o + 2);
    b[o + 8] = s.ttl ?? 64;
    b[o + 9] = protoNum;
    b.set(src.bytes, o + 12);
    b.set(dst.bytes, o + 16);
    b.writeUInt16BE(ipv4Checksum(b.subarray(o, o + 20)), o + 10);
  }
  const l4 = o + l3;
  if (protoNum === tcp || protoNum === udp) {
    b.writeUInt16BE(s.sport ?? 1024, l4);
    b.writeUInt16BE(s.dport ?? 80, l4 + 2);
    if (protoNum === udp) b.writeUInt16BE(ipLen - l3, l4 + 4);
    else b[l4 + 12] = 0x50;
  } else if (protoNum === icmp || protoNum === icmpv6) {
    b[l4] = s.sport ?? (v6 ? 128 : 8); // ICMP type (echo request by default)
  }
  s.payload?.copy(b, l4 + l4len);
  return b;
}

/** Offset of the L3 header of a frame built by buildPacket (14, or 18 with a VLAN tag). */
export function l3Offset(frame: Uint8Array): number {
  return ((frame[12]! << 8) | frame[13]!) === 0x8100 ? 18 : 14;
}
