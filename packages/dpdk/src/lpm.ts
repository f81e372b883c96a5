/** LPM routing tables: TypeScript form, validation and translation to the native layout. */
import { PipelineError } from './errors';
import { parseIp, parsePrefix } from './ip';
import { parseMac } from './mac';

export interface NextHop {
  /** Output port id (Port.id). */
  port: number;
  /** Destination MAC written into forwarded packets. */
  mac: string;
  /** Source MAC; default the output port's own MAC. */
  srcMac?: string;
}

export interface Route {
  /** "10.1.0.0/16", "2001:db8::/32", "0.0.0.0/0" ... */
  prefix: string;
  /** Index into nextHops. */
  nextHop: number;
}

export interface RoutingTable {
  nextHops: NextHop[];
  routes: Route[];
  /** The NF's own addresses: packets to them are punted with reason "local". */
  localAddresses?: string[];
}

export interface NativeLpmTable {
  routes: { family: 4 | 6; addr: Buffer; len: number; nexthop: number }[];
  nexthops: { port: number; dstMac: Buffer; srcMac: Buffer }[];
  local4: Buffer[];
  local6: Buffer[];
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
    const wrapMac = (m: string, f: string): Buffer => {
      try {
        return parseMac(m);
      } catch (e) {
        throw new PipelineError((e as Error).message, `${at}.${f}`);
      }
    };
    return {
      port: n.port,
      dstMac: wrapMac(n.mac, 'mac'),
      srcMac: n.srcMac !== undefined ? wrapMac(n.srcMac, 'srcMac') : portMac(n.port),
    };
  });
  const seen = new Map<string, number>();
  const routes = t.routes.map((r, i) => {
    const at = `${where}.routes[${i}]`;
    const p = parsePrefix(r.prefix, `${at}.prefix`);
    if (!Number.isInteger(r.nextHop) || r.nextHop < 0 || r.nextHop >= nexthops.length)
      throw new PipelineError(
        `nextHop ${String(r.nextHop)} is not an index into nextHops (0..${nexthops.length - 1})`,
        `${at}.nextHop`,
      );
    const key = `${p.family}/${p.addr.toString('hex')}/${p.len}`;
    const dup = seen.get(key);
    if (dup !== undefined)
      throw new PipelineError(`prefix ${r.prefix} is also routes[${dup}]`, `${at}.prefix`);
    seen.set(key, i);
    return {
      family: p.family,
      addr: p.family === 4 ? p.addr.subarray(0, 4) : p.addr,
      len: p.len,
      nexthop: r.nextHop,
    };
  });
  const local4: Buffer[] = [];
  const local6: Buffer[] = [];
  (t.localAddresses ?? []).forEach((a, i) => {
    const ip = parseIp(a, `${where}.localAddresses[${i}]`);
    (ip.family === 4 ? local4 : local6).push(ip.bytes);
  });
  return { routes, nexthops, local4, local6 };
}
