/** IP protocol numbers by the names the APIs accept (IANA "Assigned Internet Protocol Numbers"). */
export const PROTOCOLS = { icmp: 1, tcp: 6, udp: 17, icmpv6: 58, sctp: 132 } as const;

const BY_NAME: Readonly<Record<string, number>> = PROTOCOLS;

/** The protocols whose headers carry ports, so a match may name port ranges. */
export const PORT_PROTOCOLS: ReadonlySet<number> = new Set([
  PROTOCOLS.tcp,
  PROTOCOLS.udp,
  PROTOCOLS.sctp,
]);

/** Text that is not a protocol name or number. */
export class ProtocolError extends Error {
  constructor(
    readonly text: string,
    message: string,
  ) {
    super(message);
    this.name = 'ProtocolError';
  }
}

/**
 * Parses a protocol as the APIs write it: "" or "any" (undefined: every protocol), a name of
 * PROTOCOLS in any case, or a decimal number 0-255.
 */
export function parseProtocol(text: string): number | undefined {
  const t = String(text).trim().toLowerCase();
  if (t === '' || t === 'any') return undefined;
  // Own names only: "constructor" or "__proto__" are properties of every object, not protocols.
  const named = Object.hasOwn(BY_NAME, t) ? BY_NAME[t] : undefined;
  if (named !== undefined) return named;
  if (/^\d{1,3}$/.test(t) && Number(t) <= 255) return Number(t);
  throw new ProtocolError(
    String(text),
    `"${String(text)}" is not any, ${Object.keys(PROTOCOLS).join(', ')} or a protocol number 0-255`,
  );
}

/** The name of a protocol number, or the number as text ("any" for undefined). */
export function formatProtocol(protocol: number | undefined): string {
  if (protocol === undefined) return 'any';
  return Object.keys(BY_NAME).find((name) => BY_NAME[name] === protocol) ?? String(protocol);
}
