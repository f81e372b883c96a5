import { internetChecksum, pseudoHeaderSum } from './checksum';
import { formatAddress, parseAddress } from './ip';
import { formatMac, parseMac } from './mac';
import { PROTOCOLS } from './protocol';

export const ETH_P_IPV4 = 0x0800;
export const ETH_P_ARP = 0x0806;
export const ETH_P_IPV6 = 0x86dd;
export const IPPROTO_ICMP = PROTOCOLS.icmp;
export const IPPROTO_TCP = PROTOCOLS.tcp;
export const IPPROTO_UDP = PROTOCOLS.udp;
export const IPPROTO_ICMPV6 = PROTOCOLS.icmpv6;
export const ICMPV6_NEIGHBOR_SOLICITATION = 135;
export const ICMPV6_NEIGHBOR_ADVERTISEMENT = 136;

/** An address in bytes: 4 for IPv4, 16 for IPv6. */
export function addressBytes(address: string): Uint8Array {
  return parseAddress(address).bytes;
}

function concat(...parts: Uint8Array[]): Buffer {
  return Buffer.concat(parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength)));
}

export function ethernetHeader(dst: string, src: string, etherType: number): Buffer {
  const h = Buffer.alloc(14);
  h.set(parseMac(dst), 0);
  h.set(parseMac(src), 6);
  h.writeUInt16BE(etherType, 12);
  return h;
}

export interface Ipv4HeaderOptions {
  src: string;
  dst: string;
  protocol: number;
  payloadLength: number;
  ttl?: number;
  id?: number;
  tos?: number;
  /** Don't fragment; default true. */
  df?: boolean;
}

export function ipv4Header(o: Ipv4HeaderOptions): Buffer {
  const h = Buffer.alloc(20);
  h[0] = 0x45;
  h[1] = o.tos ?? 0;
  h.writeUInt16BE(20 + o.payloadLength, 2);
  h.writeUInt16BE(o.id ?? 0, 4);
  h.writeUInt16BE(o.df === false ? 0 : 0x4000, 6);
  h[8] = o.ttl ?? 64;
  h[9] = o.protocol;
  h.set(addressBytes(o.src), 12);
  h.set(addressBytes(o.dst), 16);
  h.writeUInt16BE(internetChecksum(h), 10);
  return h;
}

export interface Ipv6HeaderOptions {
  src: string;
  dst: string;
  nextHeader: number;
  payloadLength: number;
  hopLimit?: number;
  flowLabel?: number;
  trafficClass?: number;
}

export function ipv6Header(o: Ipv6HeaderOptions): Buffer {
  const h = Buffer.alloc(40);
  h.writeUInt32BE(
    ((6 << 28) | ((o.trafficClass ?? 0) << 20) | ((o.flowLabel ?? 0) & 0xfffff)) >>> 0,
    0,
  );
  h.writeUInt16BE(o.payloadLength, 4);
  h[6] = o.nextHeader;
  h[7] = o.hopLimit ?? 64;
  h.set(addressBytes(o.src), 8);
  h.set(addressBytes(o.dst), 24);
  return h;
}

/** Sets the L4 checksum at `offset` of `l4` using the pseudo-header of src/dst. */
function withL4Checksum(
  l4: Buffer,
  offset: number,
  src: string,
  dst: string,
  protocol: number,
): Buffer {
  l4.writeUInt16BE(0, offset);
  const sum = pseudoHeaderSum(addressBytes(src), addressBytes(dst), protocol, l4.length);
  let c = internetChecksum(l4, sum);
  if (c === 0 && protocol === IPPROTO_UDP) c = 0xffff; // 0 means "no checksum" in UDP
  l4.writeUInt16BE(c, offset);
  return l4;
}

export interface FlowFrameOptions {
  srcMac: string;
  dstMac: string;
  src: string;
  dst: string;
  protocol: 'udp' | 'tcp';
  srcPort: number;
  dstPort: number;
  ttl?: number;
  payload?: Uint8Array;
  /** TCP flags byte (default SYN). */
  tcpFlags?: number;
}

/** A whole Ethernet frame carrying UDP or TCP over IPv4 or IPv6 (by the address family). */
export function flowFrame(o: FlowFrameOptions): Buffer {
  const payload = Buffer.from(o.payload ?? new Uint8Array(0));
  const protocol = o.protocol === 'udp' ? IPPROTO_UDP : IPPROTO_TCP;
  let l4: Buffer;
  if (o.protocol === 'udp') {
    l4 = Buffer.alloc(8 + payload.length);
    l4.writeUInt16BE(o.srcPort, 0);
    l4.writeUInt16BE(o.dstPort, 2);
    l4.writeUInt16BE(l4.length, 4);
    payload.copy(l4, 8);
    withL4Checksum(l4, 6, o.src, o.dst, protocol);
  } else {
    l4 = Buffer.alloc(20 + payload.length);
    l4.writeUInt16BE(o.srcPort, 0);
    l4.writeUInt16BE(o.dstPort, 2);
    l4.writeUInt32BE(1, 4);
    l4[12] = 5 << 4;
    l4[13] = o.tcpFlags ?? 0x02;
    l4.writeUInt16BE(65535, 14);
    payload.copy(l4, 20);
    withL4Checksum(l4, 16, o.src, o.dst, protocol);
  }
  const v6 = o.src.includes(':');
  const ip = v6
    ? ipv6Header({
        src: o.src,
        dst: o.dst,
        nextHeader: protocol,
        payloadLength: l4.length,
        hopLimit: o.ttl ?? 64,
      })
    : ipv4Header({ src: o.src, dst: o.dst, protocol, payloadLength: l4.length, ttl: o.ttl ?? 64 });
  return concat(ethernetHeader(o.dstMac, o.srcMac, v6 ? ETH_P_IPV6 : ETH_P_IPV4), ip, l4);
}

export interface ArpOptions {
  op: 'request' | 'reply';
  senderMac: string;
  senderIp: string;
  targetMac: string;
  targetIp: string;
  /** Ethernet destination; default broadcast for requests, targetMac for replies. */
  dstMac?: string;
}

export function arpFrame(o: ArpOptions): Buffer {
  const a = Buffer.alloc(28);
  a.writeUInt16BE(1, 0); // Ethernet
  a.writeUInt16BE(ETH_P_IPV4, 2);
  a[4] = 6;
  a[5] = 4;
  a.writeUInt16BE(o.op === 'request' ? 1 : 2, 6);
  a.set(parseMac(o.senderMac), 8);
  a.set(addressBytes(o.senderIp), 14);
  a.set(parseMac(o.targetMac), 18);
  a.set(addressBytes(o.targetIp), 24);
  const dst = o.dstMac ?? (o.op === 'request' ? 'ff:ff:ff:ff:ff:ff' : o.targetMac);
  return concat(ethernetHeader(dst, o.senderMac, ETH_P_ARP), a);
}

/** ff02::1:ffXX:XXXX for an IPv6 address (RFC 4291 §2.7.1). */
export function solicitedNodeAddress(address: string): string {
  const b = addressBytes(address);
  const hex = (i: number) => b[i]!.toString(16).padStart(2, '0');
  return `ff02::1:ff${hex(13)}:${hex(14)}${hex(15)}`;
}

/** 33:33 followed by the low 32 bits of an IPv6 multicast address (RFC 2464 §7). */
export function multicastMac(address: string): string {
  const b = addressBytes(address);
  return formatMac(Uint8Array.from([0x33, 0x33, b[12]!, b[13]!, b[14]!, b[15]!]));
}

function icmpv6Frame(
  srcMac: string,
  dstMac: string,
  src: string,
  dst: string,
  message: Buffer,
  hopLimit: number,
): Buffer {
  withL4Checksum(message, 2, src, dst, IPPROTO_ICMPV6);
  const ip = ipv6Header({
    src,
    dst,
    nextHeader: IPPROTO_ICMPV6,
    payloadLength: message.length,
    hopLimit,
  });
  return concat(ethernetHeader(dstMac, srcMac, ETH_P_IPV6), ip, message);
}

export interface NeighborSolicitationOptions {
  srcMac: string;
  src: string;
  target: string;
}

/** A Neighbor Solicitation for `target` to its solicited-node group (RFC 4861 §4.3). */
export function neighborSolicitationFrame(o: NeighborSolicitationOptions): Buffer {
  const m = Buffer.alloc(32);
  m[0] = ICMPV6_NEIGHBOR_SOLICITATION;
  m.set(addressBytes(o.target), 8);
  m[24] = 1; // source link-layer address option
  m[25] = 1;
  m.set(parseMac(o.srcMac), 26);
  const group = solicitedNodeAddress(o.target);
  return icmpv6Frame(o.srcMac, multicastMac(group), o.src, group, m, 255);
}

export interface NeighborAdvertisementOptions {
  srcMac: string;
  dstMac: string;
  /** The address advertised, also the IPv6 source. */
  target: string;
  dst: string;
  solicited: boolean;
  router: boolean;
}

/** A Neighbor Advertisement with the target link-layer address option (RFC 4861 §4.4). */
export function neighborAdvertisementFrame(o: NeighborAdvertisementOptions): Buffer {
  const m = Buffer.alloc(32);
  m[0] = ICMPV6_NEIGHBOR_ADVERTISEMENT;
  m[4] = (o.router ? 0x80 : 0) | (o.solicited ? 0x40 : 0) | 0x20; // override
  m.set(addressBytes(o.target), 8);
  m[24] = 2; // target link-layer address option
  m[25] = 1;
  m.set(parseMac(o.srcMac), 26);
  return icmpv6Frame(o.srcMac, o.dstMac, o.target, o.dst, m, 255);
}

/**
 * ICMP Time Exceeded (TTL expired in transit) for an expired packet: IPv4 (RFC 792, the original
 * header plus 8 bytes) or IPv6 (RFC 4443 §3.3, as much as fits in the minimum MTU).
 * `expired` is the whole Ethernet frame that arrived; the answer goes back where it came from.
 */
export function timeExceededFrame(
  expired: Uint8Array,
  routerMac: string,
  routerIp: string,
): Buffer {
  const frame = Buffer.from(expired.buffer, expired.byteOffset, expired.byteLength);
  const parsed = parseFrame(frame);
  const srcMac = formatMac(frame.subarray(6, 12));
  if (parsed.ipv4) {
    const ihl = (frame[14]! & 0x0f) * 4;
    const quoted = frame.subarray(14, Math.min(frame.length, 14 + ihl + 8));
    const m = Buffer.alloc(8 + quoted.length);
    m[0] = 11;
    m.set(quoted, 8);
    m.writeUInt16BE(internetChecksum(m), 2);
    const ip = ipv4Header({
      src: routerIp,
      dst: parsed.ipv4.src,
      protocol: IPPROTO_ICMP,
      payloadLength: m.length,
      ttl: 64,
    });
    return concat(ethernetHeader(srcMac, routerMac, ETH_P_IPV4), ip, m);
  }
  if (parsed.ipv6) {
    const maxQuoted = 1280 - 40 - 8;
    const quoted = frame.subarray(14, Math.min(frame.length, 14 + maxQuoted));
    const m = Buffer.alloc(8 + quoted.length);
    m[0] = 3;
    m.set(quoted, 8);
    return icmpv6Frame(routerMac, srcMac, routerIp, parsed.ipv6.src, m, 64);
  }
  throw new Error('time exceeded needs an IPv4 or IPv6 packet');
}

export interface ParsedFrame {
  dstMac: string;
  srcMac: string;
  etherType: number;
  arp?: { op: number; senderMac: string; senderIp: string; targetMac: string; targetIp: string };
  ipv4?: {
    src: string;
    dst: string;
    ttl: number;
    protocol: number;
    headerChecksumOk: boolean;
    totalLength: number;
  };
  ipv6?: { src: string; dst: string; hopLimit: number; nextHeader: number; payloadLength: number };
  l4?: {
    srcPort?: number;
    dstPort?: number;
    icmpType?: number;
    icmpCode?: number;
    checksumOk: boolean;
    offset: number;
  };
}

const ip4 = (b: Uint8Array): string => formatAddress(b, 4);
const ip6 = (b: Uint8Array): string => formatAddress(b, 6);

/** Parses what the slow path and the tests need; checks IPv4 header and L4 checksums. */
export function parseFrame(frame: Uint8Array): ParsedFrame {
  const f = Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
  if (f.length < 14)
    throw new Error(`frame of ${f.length} bytes is shorter than an Ethernet header`);
  const out: ParsedFrame = {
    dstMac: formatMac(f.subarray(0, 6)),
    srcMac: formatMac(f.subarray(6, 12)),
    etherType: f.readUInt16BE(12),
  };
  let l4Offset = -1;
  let protocol = -1;
  let src: Uint8Array | undefined;
  let dst: Uint8Array | undefined;
  let l4Length = 0;
  if (out.etherType === ETH_P_ARP && f.length >= 42) {
    out.arp = {
      op: f.readUInt16BE(20),
      senderMac: formatMac(f.subarray(22, 28)),
      senderIp: ip4(f.subarray(28, 32)),
      targetMac: formatMac(f.subarray(32, 38)),
      targetIp: ip4(f.subarray(38, 42)),
    };
  } else if (out.etherType === ETH_P_IPV4 && f.length >= 34) {
    const ihl = (f[14]! & 0x0f) * 4;
    const totalLength = f.readUInt16BE(16);
    src = f.subarray(26, 30);
    dst = f.subarray(30, 34);
    protocol = f[23]!;
    out.ipv4 = {
      src: ip4(src),
      dst: ip4(dst),
      ttl: f[22]!,
      protocol,
      headerChecksumOk: internetChecksum(f.subarray(14, 14 + ihl)) === 0,
      totalLength,
    };
    l4Offset = 14 + ihl;
    l4Length = totalLength - ihl;
  } else if (out.etherType === ETH_P_IPV6 && f.length >= 54) {
    src = f.subarray(22, 38);
    dst = f.subarray(38, 54);
    protocol = f[20]!;
    const payloadLength = f.readUInt16BE(18);
    out.ipv6 = {
      src: ip6(src),
      dst: ip6(dst),
      hopLimit: f[21]!,
      nextHeader: protocol,
      payloadLength,
    };
    l4Offset = 54;
    l4Length = payloadLength;
  }
  if (l4Offset > 0 && src && dst && f.length >= l4Offset + Math.min(l4Length, 8)) {
    const l4 = f.subarray(l4Offset, l4Offset + l4Length);
    const pseudo = protocol === IPPROTO_ICMP ? 0 : pseudoHeaderSum(src, dst, protocol, l4.length);
    const checksumOk = internetChecksum(l4, pseudo) === 0;
    if (protocol === IPPROTO_TCP || protocol === IPPROTO_UDP) {
      out.l4 = {
        srcPort: l4.readUInt16BE(0),
        dstPort: l4.readUInt16BE(2),
        checksumOk,
        offset: l4Offset,
      };
    } else if (protocol === IPPROTO_ICMP || protocol === IPPROTO_ICMPV6) {
      out.l4 = { icmpType: l4[0]!, icmpCode: l4[1]!, checksumOk, offset: l4Offset };
    }
  }
  return out;
}
