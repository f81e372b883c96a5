import {
  IPV4_MAX_LENGTH,
  IPV4_MIN_MTU,
  IPV6_MIN_MTU,
  type InterfaceAddress,
  PrefixError,
  parseInterfaceAddress,
  parseMac,
  prefixContains,
} from '@flowline/packet';
import { InvalidRouteError } from './errors';

/** An interface's MTU when its config gives none (Ethernet's). */
export const DEFAULT_MTU = 1500;

/** A router interface: a dataplane port with its MAC, addresses and MTU. */
export interface RouterInterface {
  name: string;
  mac: string;
  addresses: InterfaceAddress[];
  /**
   * The largest IP packet sent out of it, bytes (IPv4 total length, IPv6 header + payload):
   * longer ones get ICMP fragmentation needed / packet too big, or are fragmented (IPv4, no DF).
   */
  mtu: number;
}

export function makeInterface(
  name: string,
  mac: string,
  addresses: string[],
  at: string,
  mtu: number = DEFAULT_MTU,
): RouterInterface {
  try {
    parseMac(mac);
  } catch (err) {
    throw new InvalidRouteError(`${at}.mac`, (err as Error).message);
  }
  const parsed = addresses.map((a, i) => {
    try {
      return parseInterfaceAddress(a);
    } catch (err) {
      if (err instanceof PrefixError)
        throw new InvalidRouteError(`${at}.addresses[${i}]`, err.message);
      throw err;
    }
  });
  if (!Number.isInteger(mtu) || mtu < IPV4_MIN_MTU || mtu > IPV4_MAX_LENGTH)
    throw new InvalidRouteError(
      `${at}.mtu`,
      `${mtu} is not an MTU: a whole number of bytes ${IPV4_MIN_MTU}..${IPV4_MAX_LENGTH}`,
    );
  const v6 = parsed.find((a) => a.family === 6);
  if (v6 && mtu < IPV6_MIN_MTU)
    throw new InvalidRouteError(
      `${at}.mtu`,
      `${mtu} is under ${IPV6_MIN_MTU}, the smallest MTU of an IPv6 link (RFC 8200), and the ` +
        `interface has the IPv6 address ${v6.address}: raise the MTU or drop the address`,
    );
  return { name, mac: mac.toLowerCase(), addresses: parsed, mtu };
}

/** The interface whose connected subnet holds an address, with the matching local address. */
export function connectedInterface(
  interfaces: readonly RouterInterface[],
  bytes: Uint8Array,
  only?: string,
): { iface: RouterInterface; local: InterfaceAddress } | undefined {
  for (const iface of interfaces) {
    if (only && iface.name !== only) continue;
    for (const local of iface.addresses) {
      if (prefixContains(local.subnet, bytes)) return { iface, local };
    }
  }
  return undefined;
}

/** The interface's own address of a family (for ICMP errors and probes sent from it). */
export function localAddress(iface: RouterInterface, family: 4 | 6): InterfaceAddress | undefined {
  return iface.addresses.find((a) => a.family === family);
}
