/**
 * The one 5-tuple match of Flowline: what a firewall rule (flowline.firewall.v1.Rule) and a
 * chain classifier (flowline.chain.v1.Classifier) select, validated once, here. The fields are
 * flowline.match.v1.Match's (packages/proto/proto/flowline/match/v1/match.proto).
 */
import { parsePrefix, type Prefix, PrefixError } from './ip';
import {
  formatProtocol,
  parseProtocol,
  PORT_PROTOCOLS,
  PROTOCOLS,
  ProtocolError,
} from './protocol';

/** A port range as the APIs carry it (flowline.match.v1.PortRange): 0-0 means any port. */
export interface PortRangeFields {
  first?: number | null;
  last?: number | null;
}

/** A match as the APIs carry it: the fields of flowline.match.v1.Match, all optional. */
export interface MatchFields {
  /** 0 (from the prefixes, or both), 4 or 6. */
  ipVersion?: number | null;
  srcPrefix?: string | null;
  dstPrefix?: string | null;
  /** "", "any", a name of PROTOCOLS or a number 0-255. */
  protocol?: string | null;
  srcPorts?: PortRangeFields | null;
  dstPorts?: PortRangeFields | null;
}

/** A validated match; an absent field matches everything. */
export interface Match {
  /**
   * The IP versions it matches: one when a prefix, ip_version, icmp or icmpv6 says which,
   * else both.
   */
  families: (4 | 6)[];
  src?: Prefix;
  dst?: Prefix;
  /** IP protocol number. */
  protocol?: number;
  /** Inclusive; only with tcp, udp or sctp. */
  srcPorts?: [number, number];
  dstPorts?: [number, number];
}

/** A bad match field, named by its path (rules[3].dst_ports) and what to fix. */
export class MatchError extends Error {
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(`${field}: ${reason}`);
    this.name = 'MatchError';
  }
}

const PORTS_NEED = 'ports need protocol tcp, udp or sctp';

/**
 * Parses a port range: undefined for any (no range, 0-0 or 0-65535), else [first, last] within
 * 0-65535. `protocol` is the match's: ports are refused without tcp, udp or sctp.
 */
export function parsePortRange(
  range: PortRangeFields | null | undefined,
  field: string,
  protocol: number | undefined,
): [number, number] | undefined {
  const first = Number(range?.first ?? 0);
  const last = Number(range?.last ?? 0);
  if (first === 0 && last === 0) return undefined;
  if (protocol === undefined || !PORT_PROTOCOLS.has(protocol))
    throw new MatchError(field, PORTS_NEED);
  const port = (n: number): boolean => Number.isInteger(n) && n >= 0 && n <= 65535;
  if (!port(first) || !port(last))
    throw new MatchError(field, `ports must be 0-65535 (got ${first}-${last})`);
  if (first > last) throw new MatchError(field, `first (${first}) is after last (${last})`);
  return first === 0 && last === 65535 ? undefined : [first, last];
}

const path = (at: string, field: string): string => (at ? `${at}.${field}` : field);

function prefixAt(text: string | null | undefined, field: string): Prefix | undefined {
  if (!text) return undefined;
  try {
    return parsePrefix(text);
  } catch (err) {
    throw err instanceof PrefixError ? new MatchError(field, err.message) : err;
  }
}

/**
 * Validates a match; `at` is the path of the message holding its fields ("rule_set.rules[2]",
 * "spec.classifier"), and errors name the field under it with the API's names (src_prefix,
 * dst_ports, ...).
 */
export function validateMatch(fields: MatchFields, at: string): Match {
  const src = prefixAt(fields.srcPrefix, path(at, 'src_prefix'));
  const dst = prefixAt(fields.dstPrefix, path(at, 'dst_prefix'));
  if (src && dst && src.family !== dst.family)
    throw new MatchError(
      path(at, 'dst_prefix'),
      `is IPv${dst.family} but src_prefix is IPv${src.family}`,
    );
  const version = Number(fields.ipVersion ?? 0);
  if (version !== 0 && version !== 4 && version !== 6)
    throw new MatchError(path(at, 'ip_version'), `must be 0, 4 or 6 (got ${version})`);
  const prefixFamily = (src ?? dst)?.family;
  if (version !== 0 && prefixFamily !== undefined && version !== prefixFamily)
    throw new MatchError(
      path(at, 'ip_version'),
      `is ${version} but the prefixes are IPv${prefixFamily}`,
    );
  let protocol: number | undefined;
  try {
    protocol = parseProtocol(fields.protocol ?? '');
  } catch (err) {
    throw err instanceof ProtocolError ? new MatchError(path(at, 'protocol'), err.message) : err;
  }
  const family = prefixFamily ?? (version === 0 ? undefined : version);
  if (protocol === PROTOCOLS.icmp && family === 6)
    throw new MatchError(path(at, 'protocol'), 'icmp is IPv4; use icmpv6 for IPv6');
  if (protocol === PROTOCOLS.icmpv6 && family === 4)
    throw new MatchError(path(at, 'protocol'), 'icmpv6 is IPv6; use icmp for IPv4');
  const only =
    protocol === PROTOCOLS.icmp
      ? 4
      : protocol === PROTOCOLS.icmpv6
        ? 6
        : (family as 4 | 6 | undefined);
  const srcPorts = parsePortRange(fields.srcPorts, path(at, 'src_ports'), protocol);
  const dstPorts = parsePortRange(fields.dstPorts, path(at, 'dst_ports'), protocol);
  return {
    families: only ? [only] : [4, 6],
    ...(src ? { src } : {}),
    ...(dst ? { dst } : {}),
    ...(protocol !== undefined ? { protocol } : {}),
    ...(srcPorts ? { srcPorts } : {}),
    ...(dstPorts ? { dstPorts } : {}),
  };
}

/** Back to the API's fields (the firewall's ListRules): canonical text, 0-0 for any port. */
export function matchFields(match: Match): {
  ipVersion: number;
  srcPrefix: string;
  dstPrefix: string;
  protocol: string;
  srcPorts: { first: number; last: number };
  dstPorts: { first: number; last: number };
} {
  const range = (r: [number, number] | undefined) => ({ first: r?.[0] ?? 0, last: r?.[1] ?? 0 });
  return {
    ipVersion: match.families.length === 1 ? match.families[0]! : 0,
    srcPrefix: match.src?.text ?? '',
    dstPrefix: match.dst?.text ?? '',
    protocol: formatProtocol(match.protocol),
    srcPorts: range(match.srcPorts),
    dstPorts: range(match.dstPorts),
  };
}
