import {
  type InterfaceAddress,
  PrefixError,
  parseInterfaceAddress,
  parseMac,
  prefixContains,
} from '@flowline/packet';
import { InvalidRouteError } from './errors';

/** A router interface: a dataplane port with its MAC and addresses. */
export interface RouterInterface {
  name: string;
  mac: string;
  addresses: InterfaceAddress[];
}

export function makeInterface(
  name: string,
  mac: string,
  addresses: string[],
  at: string,
): RouterInterface {
  try {
    parseMac(mac);
  } catch (err) {
    throw new InvalidRouteError(`${at}.mac`, (err as Error).message);
  }
  return {
    name,
    mac: mac.toLowerCase(),
    addresses: addresses.map((a, i) => {
      try {
        return parseInterfaceAddress(a);
      } catch (err) {
        if (err instanceof PrefixError)
          throw new InvalidRouteError(`${at}.addresses[${i}]`, err.message);
        throw err;
      }
    }),
  };
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
