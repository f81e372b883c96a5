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
/** The smallest MTU of an IPv4 link: a 60-byte header and 8 bytes of data (RFC 791). */
export const IPV4_MIN_MTU = 68;
/** The smallest MTU of an IPv6 link (RFC 8200 §5). */
export const IPV6_MIN_MTU = 1280;
/** The largest IPv4 packet (its total length is 16 bits), so the largest MTU worth naming. */
export const IPV4_MAX_LENGTH = 65_535;

/** A packet or a value a builder cannot use; `field` names the argument. */
export class PacketError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
    this.name = 'PacketError';
  }
}

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
  /** IPv4 don't fragment; default true. */
  df?: boolean;
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
    : ipv4Header({
        src: o.src,
        dst: o.dst,
        protocol,
        payloadLength: l4.length,
        ttl: o.ttl ?? 64,
        ...(o.df !== undefined ? { df: o.df } : {}),
      });
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

/** What an ICMP error says besides its quote: type, code and the 32 bits after the checksum. */
interface IcmpErrorHeader {
  type: number;
  code: number;
  /** Unused (0), or an MTU: RFC 1191's next-hop MTU in the low 16 bits, RFC 4443's all 32. */
  word?: number;
}

/**
 * An ICMP or ICMPv6 error about `offending`, the whole (untagged) Ethernet frame that arrived,
 * sent back where it came from: to its source MAC and IP, from routerMac and routerIp. The quote
 * is the offending IP packet as it arrived, never the Ethernet padding after it: for IPv4 its
 * header and the first 8 bytes of its data (RFC 792), for IPv6 as much as keeps the error within
 * the minimum MTU (RFC 4443 §2.4 (c)). `header` gives the error's type, code and word per family.
 */
function icmpErrorFrame(
  offending: Uint8Array,
  routerMac: string,
  routerIp: string,
  header: (family: 4 | 6) => IcmpErrorHeader,
  what: string,
): Buffer {
  const frame = Buffer.from(offending.buffer, offending.byteOffset, offending.byteLength);
  const parsed = parseFrame(frame);
  const srcMac = formatMac(frame.subarray(6, 12));
  const message = (h: IcmpErrorHeader, quoted: Buffer): Buffer => {
    const m = Buffer.alloc(8 + quoted.length);
    m[0] = h.type;
    m[1] = h.code;
    m.writeUInt32BE(h.word ?? 0, 4);
    m.set(quoted, 8);
    return m;
  };
  if (parsed.ipv4) {
    const ihl = (frame.readUInt8(14) & 0x0f) * 4;
    const end = Math.min(frame.length, 14 + parsed.ipv4.totalLength, 14 + ihl + 8);
    const m = message(header(4), frame.subarray(14, end));
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
    const maxQuoted = IPV6_MIN_MTU - 40 - 8;
    const end = Math.min(frame.length, 14 + 40 + parsed.ipv6.payloadLength, 14 + maxQuoted);
    const m = message(header(6), frame.subarray(14, end));
    return icmpv6Frame(routerMac, srcMac, routerIp, parsed.ipv6.src, m, 64);
  }
  throw new PacketError('packet', `${what} needs an IPv4 or IPv6 packet`);
}

/**
 * ICMP Time Exceeded (TTL expired in transit) for an expired packet: IPv4 (type 11, RFC 792) or
 * IPv6 (type 3, RFC 4443 §3.3), quoting it as icmpErrorFrame says. `expired` is the whole
 * Ethernet frame that arrived; the answer goes back where it came from.
 */
export function timeExceededFrame(
  expired: Uint8Array,
  routerMac: string,
  routerIp: string,
): Buffer {
  return icmpErrorFrame(
    expired,
    routerMac,
    routerIp,
    (family) => ({ type: family === 4 ? 11 : 3, code: 0 }),
    'time exceeded',
  );
}

/**
 * The answer to a packet longer than the MTU of the link it must leave by, which a router cannot
 * send on: for IPv4 (DF set) Destination Unreachable, Fragmentation Needed and DF Set (type 3,
 * code 4) with the next-hop MTU (RFC 1191 §4); for IPv6 Packet Too Big (type 2, RFC 4443 §3.2)
 * with the MTU. `tooBig` is the whole Ethernet frame that arrived; the answer goes back where it
 * came from, quoting it as time exceeded does. `mtu`: IPv4 68..65535, IPv6 1280 and more.
 */
export function packetTooBigFrame(
  tooBig: Uint8Array,
  routerMac: string,
  routerIp: string,
  mtu: number,
): Buffer {
  return icmpErrorFrame(
    tooBig,
    routerMac,
    routerIp,
    (family) => {
      const [min, max] =
        family === 4 ? [IPV4_MIN_MTU, IPV4_MAX_LENGTH] : [IPV6_MIN_MTU, 0xffffffff];
      if (!Number.isInteger(mtu) || mtu < min || mtu > max)
        throw new PacketError('mtu', `${mtu} is not an IPv${family} link MTU (${min}..${max})`);
      return family === 4 ? { type: 3, code: 4, word: mtu } : { type: 2, code: 0, word: mtu };
    },
    'packet too big',
  );
}

/**
 * IPv4 options of a fragment after the first: only those whose copied flag (0x80) is set
 * (RFC 791 §3.1), padded with end-of-list to a multiple of 4, behind a copy of the fixed header.
 */
function laterFragmentHeader(header: Buffer): Buffer {
  const copied: Buffer[] = [];
  for (let i = 20; i < header.length;) {
    const type = header.readUInt8(i);
    if (type === 0) break; // end of option list
    if (type === 1) {
      i += 1; // no operation (one byte, not copied)
      continue;
    }
    const len = header[i + 1] ?? 0;
    if (len < 2 || i + len > header.length)
      throw new PacketError('packet', `IPv4 option ${type} at byte ${i} has a bad length ${len}`);
    if (type & 0x80) copied.push(header.subarray(i, i + len));
    i += len;
  }
  const options = Buffer.concat(copied);
  const out = Buffer.alloc(20 + Math.ceil(options.length / 4) * 4);
  header.copy(out, 0, 0, 20);
  options.copy(out, 20);
  return out;
}

/**
 * Splits an IPv4 packet (from its IP header on, no Ethernet header) into fragments of at most
 * `mtu` bytes (RFC 791 §2.3 and §3.2): every fragment but the last carries a multiple of 8 data
 * bytes and MF; offsets count on from the packet's own, and the last fragment keeps its MF, so a
 * fragment can be fragmented again; the first keeps every option, the others the copied ones;
 * each header's total length and checksum are written anew, everything else (TTL included) is
 * the packet's. A packet that fits is returned as it is, alone. DF set: PacketError (answer
 * with packetTooBigFrame instead).
 */
export function fragmentIpv4(packet: Uint8Array, mtu: number): Buffer[] {
  const p = Buffer.from(packet.buffer, packet.byteOffset, packet.byteLength);
  if (p.length < 20 || p.readUInt8(0) >> 4 !== 4)
    throw new PacketError('packet', 'is not an IPv4 packet (no IPv4 header)');
  const ihl = (p.readUInt8(0) & 0x0f) * 4;
  const total = p.readUInt16BE(2);
  if (ihl < 20 || total < ihl || total > p.length)
    throw new PacketError(
      'packet',
      `header length ${ihl} and total length ${total} do not fit its ${p.length} bytes`,
    );
  if (!Number.isInteger(mtu) || mtu < IPV4_MIN_MTU || mtu > IPV4_MAX_LENGTH)
    throw new PacketError(
      'mtu',
      `${mtu} is not an IPv4 link MTU (${IPV4_MIN_MTU}..${IPV4_MAX_LENGTH})`,
    );
  const ip = p.subarray(0, total);
  if (total <= mtu) return [Buffer.from(ip)];
  const flags = p.readUInt16BE(6);
  if (flags & 0x4000)
    throw new PacketError('packet', `has DF set: ${total} bytes must not be fragmented to ${mtu}`);
  const first = ip.subarray(0, ihl);
  const later = laterFragmentHeader(first);
  const data = ip.subarray(ihl);
  const offset = (flags & 0x1fff) * 8;
  // The fragments' offsets are 13-bit counts of 8 bytes: data that would reach past 65,535
  // bytes of the original datagram cannot be described (its offset would run into the flags).
  if (offset + data.length > IPV4_MAX_LENGTH - ihl)
    throw new PacketError(
      'packet',
      `fragment offset ${offset} and ${data.length} bytes of data run past the ${IPV4_MAX_LENGTH} bytes of an IPv4 datagram`,
    );
  const out: Buffer[] = [];
  for (let at = 0; at < data.length;) {
    const h = at === 0 ? first : later;
    const n = Math.min(Math.floor((mtu - h.length) / 8) * 8, data.length - at);
    const last = at + n === data.length;
    const f = Buffer.concat([h, data.subarray(at, at + n)]);
    f[0] = 0x40 | (h.length / 4);
    f.writeUInt16BE(f.length, 2);
    f.writeUInt16BE((flags & 0x8000) | (last ? flags & 0x2000 : 0x2000) | ((offset + at) / 8), 6);
    f.writeUInt16BE(0, 10);
    f.writeUInt16BE(internetChecksum(f.subarray(0, h.length)), 10);
    out.push(f);
    at += n;
  }
  return out;
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
      headerChecksumOk: ihl >= 20 && internetChecksum(f.subarray(14, 14 + ihl)) === 0,
      totalLength,
    };
    // A header under 20 bytes, or longer than the datagram, has no transport header after it.
    if (ihl >= 20 && totalLength >= ihl) {
      l4Offset = 14 + ihl;
      l4Length = totalLength - ihl;
    }
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
  // 8 bytes: UDP's and ICMP's headers, the ports and offsets of TCP's; less is no L4 header.
  if (l4Offset > 0 && src && dst && l4Length >= 8 && f.length >= l4Offset + 8) {
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
