import { type Prefix, PrefixError, parsePrefix } from '@flowline/packet';
import { InvalidRouteError, RouteExistsError, RouteNotFoundError } from './errors';
import { type RouterInterface, connectedInterface } from './interfaces';
import { checkRouteCount } from './limits';

/** A static route as the router keeps it. */
export interface StaticRoute {
  prefix: Prefix;
  /** Gateway address (same family), or undefined for a route straight out of `iface`. */
  nextHop?: { address: string; bytes: Uint8Array };
  iface: string;
}

export interface RouteInput {
  prefix?: string;
  nextHop?: string;
  iface?: string;
}

function prefixField(text: string | undefined, field: string): Prefix {
  if (!text) throw new InvalidRouteError(field, 'is required, e.g. 10.1.0.0/16 or fd00:1::/48');
  try {
    return parsePrefix(text);
  } catch (err) {
    if (err instanceof PrefixError) throw new InvalidRouteError(field, err.message);
    throw err;
  }
}

/**
 * Validates a static route against the router's interfaces: the gateway must share the
 * destination's family and lie in a connected subnet (of `interface` when one is given).
 */
export function validateRoute(
  input: RouteInput,
  interfaces: readonly RouterInterface[],
  at: string,
): StaticRoute {
  const prefix = prefixField(input.prefix, `${at}.prefix`);
  const ifaceName = input.iface ?? '';
  if (ifaceName && !interfaces.some((i) => i.name === ifaceName)) {
    throw new InvalidRouteError(
      `${at}.interface`,
      `"${ifaceName}" is not one of ${interfaces.map((i) => i.name).join(', ') || '(none)'}`,
    );
  }
  if (!input.nextHop) {
    if (!ifaceName)
      throw new InvalidRouteError(`${at}.next_hop`, 'give a next hop, an interface, or both');
    return { prefix, iface: ifaceName };
  }
  let gateway: Prefix;
  try {
    gateway = parsePrefix(input.nextHop);
  } catch (err) {
    throw new InvalidRouteError(`${at}.next_hop`, (err as Error).message);
  }
  if (gateway.length !== (gateway.family === 4 ? 32 : 128)) {
    throw new InvalidRouteError(
      `${at}.next_hop`,
      `"${input.nextHop}" must be an address, not a prefix`,
    );
  }
  if (gateway.family !== prefix.family) {
    throw new InvalidRouteError(
      `${at}.next_hop`,
      `is IPv${gateway.family} but prefix is IPv${prefix.family}`,
    );
  }
  const connected = connectedInterface(interfaces, gateway.bytes, ifaceName || undefined);
  if (!connected) {
    throw new InvalidRouteError(
      `${at}.next_hop`,
      `${gateway.text.replace(/\/\d+$/, '')} is not in a connected subnet${ifaceName ? ` of ${ifaceName}` : ''}; the router cannot reach it`,
    );
  }
  return {
    prefix,
    nextHop: { address: gateway.text.replace(/\/\d+$/, ''), bytes: gateway.bytes },
    iface: connected.iface.name,
  };
}

/** Static routes by prefix; at most one per prefix. */
export class StaticRoutes {
  private readonly routes = new Map<string, StaticRoute>();

  list(): StaticRoute[] {
    return [...this.routes.values()];
  }

  get size(): number {
    return this.routes.size;
  }

  /** The table with `route` added; does not change this one (so a failed apply changes nothing). */
  withAdded(route: StaticRoute): StaticRoute[] {
    if (this.routes.has(route.prefix.text)) throw new RouteExistsError(route.prefix.text);
    checkRouteCount(this.routes.size + 1);
    return [...this.routes.values(), route];
  }

  withDeleted(prefixText: string, interfaces: readonly RouterInterface[]): StaticRoute[] {
    const prefix = prefixField(prefixText, 'prefix');
    if (!this.routes.has(prefix.text)) {
      const connected = interfaces.some((i) =>
        i.addresses.some((a) => a.subnet.text === prefix.text),
      );
      throw new RouteNotFoundError(prefix.text, connected);
    }
    return [...this.routes.values()].filter((r) => r.prefix.text !== prefix.text);
  }

  replaceAll(routes: StaticRoute[]): void {
    this.routes.clear();
    for (const r of routes) this.routes.set(r.prefix.text, r);
  }
}
