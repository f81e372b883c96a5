/**
 * LPM routing tables: the TypeScript form, its checks and translation to the native layout.
 * Prefixes, addresses and MACs come parsed (@flowline/packet: parsePrefix, parseAddress,
 * parseMac); here the table itself is checked: port ids, next-hop indexes, duplicates, and the
 * byte lengths the native side reads.
 */
import { IPV4_MAX_LENGTH, IPV4_MIN_MTU, type Address, type Prefix } from '@flowline/packet';

import { PipelineError } from './errors';

export interface NextHop {
  /** Output port id (Port.id). */
  port: number;
  /** Destination MAC written into forwarded packets (6 bytes, e.g. parseMac's). */
  mac: Uint8Array;
  /** Source MAC; default the output port's own MAC. */
  srcMac?: Uint8Array;
  /**
   * The largest L3 packet sent to this next hop, bytes: its link's MTU (IPv4 total length, IPv6
   * header + payload). A longer packet is punted untouched with reason `too_big` (IPv4 with or
   * without DF, and IPv6: the slow path answers or fragments). 68..65535 (RFC 791's minimum);
   * default: no limit.
   */
  mtu?: number;
}

export interface Route {
  /** 10.1.0.0/16, 2001:db8::/32, 0.0.0.0/0 ... (parsePrefix's: host bits zero). */
  prefix: Prefix;
  /** Index into nextHops. */
  nextHop: number;
}

export interface RoutingTable {
  nextHops: NextHop[];
  routes: Route[];
  /** The NF's own addresses: packets to them are punted with reason "local". */
  localAddresses?: Address[];
}

export interface NativeLpmTable {
  routes: { family: 4 | 6; addr: Buffer; len: number; nexthop: number }[];
  /** mtu 0: no limit. */
  nexthops: { port: number; dstMac: Buffer; srcMac: Buffer; mtu: number }[];
  local4: Buffer[];
  local6: Buffer[];
}

const ADDRESS_BYTES = { 4: 4, 6: 16 } as const;

/** The native side reads exactly this many bytes: a shorter value is refused, not read past. */
function bytesOf(value: Uint8Array | undefined, length: number, what: string, at: string): Buffer {
  if (!(value instanceof Uint8Array) || value.length !== length)
    throw new PipelineError(`${what} must be ${length} bytes`, at);
  return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

function addressOf(a: Address | Prefix, at: string): { family: 4 | 6; bytes: Buffer } {
  if (a?.family !== 4 && a?.family !== 6)
    throw new PipelineError('an address must be IPv4 or IPv6 (family 4 or 6)', at);
  return { family: a.family, bytes: bytesOf(a.bytes, ADDRESS_BYTES[a.family], 'an address', at) };
}

export function compileRoutes(
  t: RoutingTable,
  portMac: (port: number) => Buffer,
  where = 'table',
): NativeLpmTable {
  if (!t || !Array.isArray(t.nextHops) || !Array.isArray(t.routes))
    throw new PipelineError('a routing table needs nextHops and routes arrays', where);
  const nexthops = t.nextHops.map((n, i) => {
    const at = `${where}.nextHops[${i}]`;
    if (!Number.isInteger(n.port) || n.port < 0 || n.port > 0xfffe)
      throw new PipelineError(`port ${String(n.port)} is not a port id`, `${at}.port`);
    const mtu = n.mtu ?? 0; // 0: no limit
    if (
      n.mtu !== undefined &&
      (!Number.isInteger(mtu) || mtu < IPV4_MIN_MTU || mtu > IPV4_MAX_LENGTH)
    )
      throw new PipelineError(
        `mtu ${String(n.mtu)} is not a whole number of bytes ${IPV4_MIN_MTU}..${IPV4_MAX_LENGTH}`,
        `${at}.mtu`,
      );
    return {
      port: n.port,
      dstMac: bytesOf(n.mac, 6, 'a MAC', `${at}.mac`),
      srcMac:
        n.srcMac !== undefined ? bytesOf(n.srcMac, 6, 'a MAC', `${at}.srcMac`) : portMac(n.port),
      mtu,
    };
  });
  const seen = new Map<string, number>();
  const routes = t.routes.map((r, i) => {
    const at = `${where}.routes[${i}]`;
    const { family, bytes } = addressOf(r.prefix, `${at}.prefix`);
    const len = r.prefix.length;
    if (!Number.isInteger(len) || len < 0 || len > bytes.length * 8)
      throw new PipelineError(`length ${String(len)} is not 0-${bytes.length * 8}`, `${at}.prefix`);
    if (!Number.isInteger(r.nextHop) || r.nextHop < 0 || r.nextHop >= nexthops.length)
      throw new PipelineError(
        `nextHop ${String(r.nextHop)} is not an index into nextHops (0..${nexthops.length - 1})`,
        `${at}.nextHop`,
      );
    const key = `${family}/${bytes.toString('hex')}/${len}`;
    const dup = seen.get(key);
    if (dup !== undefined)
      throw new PipelineError(`prefix ${r.prefix.text} is also routes[${dup}]`, `${at}.prefix`);
    seen.set(key, i);
    return { family, addr: bytes, len, nexthop: r.nextHop };
  });
  const local4: Buffer[] = [];
  const local6: Buffer[] = [];
  (t.localAddresses ?? []).forEach((a, i) => {
    const { family, bytes } = addressOf(a, `${where}.localAddresses[${i}]`);
    (family === 4 ? local4 : local6).push(bytes);
  });
  return { routes, nexthops, local4, local6 };
}
