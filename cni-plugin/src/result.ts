import { CniCode, CniError } from './errors';
import type { CniVersion } from './versions';

export interface Interface {
  name: string;
  mac?: string;
  mtu?: number;
  sandbox?: string;
  socketPath?: string;
  pciID?: string;
}
export interface IpConfig {
  address: string;
  gateway?: string;
  interface?: number;
}
export type Route = { dst: string; gw?: string } & Record<string, unknown>;
export type Dns = {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
};

/** A result in version-independent form; `formatResult` writes it for one cniVersion. */
export interface Result {
  interfaces: Interface[];
  ips: IpConfig[];
  routes: Route[];
  dns: Dns;
}

const fail = (field: string, why: string): CniError =>
  new CniError(CniCode.DecodeFailure, `failed to decode result: ${field} ${why}`, undefined, {
    field,
  });

/** Reads a result of any version from 0.3.0 on (prevResult, or an IPAM plugin's output). */
export function parseResult(raw: unknown, where = 'prevResult'): Result {
  if (typeof raw !== 'object' || raw === null) throw fail(where, 'is not an object');
  const r = raw as Record<string, unknown>;
  const list = (key: string): Record<string, unknown>[] => {
    const v = r[key];
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) throw fail(`${where}.${key}`, 'is not a list');
    return v as Record<string, unknown>[];
  };
  const interfaces = list('interfaces').map((i, n) => {
    if (typeof i?.name !== 'string') throw fail(`${where}.interfaces[${n}].name`, 'is missing');
    const out: Interface = { name: i.name };
    if (typeof i.mac === 'string') out.mac = i.mac;
    if (typeof i.mtu === 'number') out.mtu = i.mtu;
    if (typeof i.sandbox === 'string') out.sandbox = i.sandbox;
    if (typeof i.socketPath === 'string') out.socketPath = i.socketPath;
    if (typeof i.pciID === 'string') out.pciID = i.pciID;
    return out;
  });
  const ips = list('ips').map((ip, n) => {
    if (typeof ip?.address !== 'string') throw fail(`${where}.ips[${n}].address`, 'is missing');
    const out: IpConfig = { address: ip.address };
    if (typeof ip.gateway === 'string') out.gateway = ip.gateway;
    if (typeof ip.interface === 'number') out.interface = ip.interface;
    return out;
  });
  const routes = list('routes').map((rt, n) => {
    if (typeof rt?.dst !== 'string') throw fail(`${where}.routes[${n}].dst`, 'is missing');
    return { ...rt } as Route;
  });
  const dns = (typeof r.dns === 'object' && r.dns !== null ? r.dns : {}) as Dns;
  return { interfaces, ips, routes, dns };
}

const ipVersion = (address: string): '4' | '6' => (address.includes(':') ? '6' : '4');
const ROUTE_1_0 = ['dst', 'gw'];

/** Writes a result in the shape `cniVersion` defines (0.4.0: ips carry "version"; 1.1.0: socketPath, mtu). */
export function formatResult(result: Result, cniVersion: CniVersion): Record<string, unknown> {
  const v11 = cniVersion === '1.1.0';
  const interfaces = result.interfaces.map((i) => {
    const out: Record<string, unknown> = { name: i.name };
    if (i.mac) out.mac = i.mac;
    if (v11 && i.mtu !== undefined) out.mtu = i.mtu;
    out.sandbox = i.sandbox ?? '';
    if (v11 && i.socketPath) out.socketPath = i.socketPath;
    if (v11 && i.pciID) out.pciID = i.pciID;
    return out;
  });
  const ips = result.ips.map((ip) => {
    const out: Record<string, unknown> = {};
    if (cniVersion === '0.4.0') out.version = ipVersion(ip.address);
    out.address = ip.address;
    if (ip.gateway) out.gateway = ip.gateway;
    if (ip.interface !== undefined) out.interface = ip.interface;
    return out;
  });
  const routes = result.routes.map((rt) =>
    v11 ? { ...rt } : Object.fromEntries(Object.entries(rt).filter(([k]) => ROUTE_1_0.includes(k))),
  );
  const out: Record<string, unknown> = { cniVersion, interfaces, ips };
  if (routes.length > 0) out.routes = routes;
  if (Object.keys(result.dns).length > 0) out.dns = result.dns;
  return out;
}
