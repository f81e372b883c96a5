/**
 * IPv4 and IPv6 addresses and prefixes: the one parser and printer of the repository.
 * Input forms are RFC 4291 section 2.2 (IPv6) and dotted-quad (IPv4); output is RFC 5952.
 */

/** A parsed address: 4 bytes (IPv4) or 16 bytes (IPv6), network order. */
export interface Address {
  family: 4 | 6;
  bytes: Uint8Array;
}

export interface Prefix {
  family: 4 | 6;
  /** Network address, 4 or 16 bytes, host bits zero. */
  bytes: Uint8Array;
  length: number;
  /** Canonical text, e.g. "fd00::/8" (RFC 5952). */
  text: string;
}

/** Text that is not an IPv4 or IPv6 address. */
export class AddressError extends Error {
  constructor(
    readonly text: string,
    message: string,
  ) {
    super(message);
    this.name = 'AddressError';
  }
}

/** Text that is not a prefix (or an interface address with its prefix length). */
export class PrefixError extends AddressError {
  override name = 'PrefixError';
}

const DOTTED_QUAD = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const HEXTET = /^[0-9a-fA-F]{1,4}$/;

/** Dotted-quad IPv4; a leading zero is refused (inet_aton would read 010 as octal 8). */
function ipv4Bytes(text: string): Uint8Array | undefined {
  const m = DOTTED_QUAD.exec(text);
  if (!m) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const octet = m[i + 1]!;
    if (octet.length > 1 && octet[0] === '0') return undefined;
    const value = Number(octet);
    if (value > 255) return undefined;
    out[i] = value;
  }
  return out;
}

/**
 * RFC 4291 section 2.2: eight hextets of 1-4 hex digits; one "::" for one or more zero
 * hextets; the last 32 bits may be dotted-quad. No zone index (RFC 4007 "%eth0"): a zone is
 * not part of an address a prefix or a rule can hold.
 */
function ipv6Bytes(text: string): Uint8Array | undefined {
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const compressed = halves.length === 2;
  // Each side of "::" as 16-bit words; only the very last part may be dotted-quad.
  const sides: number[][] = [];
  for (const [side, half] of halves.entries()) {
    const parts = half === '' ? [] : half.split(':');
    const words: number[] = [];
    for (const [i, part] of parts.entries()) {
      const lastOfAddress = i === parts.length - 1 && (side === 1 || !compressed);
      const v4 = lastOfAddress && part.includes('.') ? ipv4Bytes(part) : undefined;
      if (v4) words.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      else if (HEXTET.test(part)) words.push(parseInt(part, 16));
      else return undefined;
    }
    sides.push(words);
  }
  const [before = [], after = []] = sides;
  const given = before.length + after.length;
  // Without "::" all eight; with it, "::" stands for at least one zero hextet.
  if (compressed ? given > 7 : given !== 8) return undefined;
  const words = [...before, ...Array<number>(8 - given).fill(0), ...after];
  const out = new Uint8Array(16);
  words.forEach((w, i) => {
    out[i * 2] = w >> 8;
    out[i * 2 + 1] = w & 0xff;
  });
  return out;
}

function tryAddress(text: string): Address | undefined {
  if (typeof text !== 'string') return undefined;
  const v4 = ipv4Bytes(text);
  if (v4) return { family: 4, bytes: v4 };
  const v6 = text.includes(':') ? ipv6Bytes(text) : undefined;
  return v6 ? { family: 6, bytes: v6 } : undefined;
}

/** Parses an IPv4 or IPv6 address ("192.0.2.1", "2001:db8::1", "::ffff:192.0.2.1"). */
export function parseAddress(text: string): Address {
  const addr = tryAddress(text);
  if (addr) return addr;
  throw new AddressError(
    String(text),
    `"${String(text)}" is not an IPv4 or IPv6 address such as 192.0.2.1 or 2001:db8::1`,
  );
}

function maskBytes(bytes: Uint8Array, length: number): Uint8Array {
  return bytes.map((b, i) => {
    const keep = Math.max(0, Math.min(8, length - i * 8));
    return b & ((0xff << (8 - keep)) & 0xff);
  });
}

function hasHostBits(bytes: Uint8Array, length: number): boolean {
  for (let i = length >> 3; i < bytes.length; i++) {
    const keep = Math.max(0, length - i * 8);
    if (bytes[i]! & (0xff >> keep)) return true;
  }
  return false;
}

/** "addr" or "addr/len": the address, and the length when one is given. */
function splitPrefix(text: string): { addr: Address; length?: number } {
  const parts = typeof text === 'string' ? text.split('/') : [];
  const addr = parts.length === 1 || parts.length === 2 ? tryAddress(parts[0]!) : undefined;
  if (!addr)
    throw new PrefixError(
      String(text),
      `"${String(text)}" is not an IPv4 or IPv6 prefix such as 10.0.0.0/8 or fd00::/8`,
    );
  const max = addr.family === 4 ? 32 : 128;
  const len = parts[1];
  if (len === undefined) return { addr };
  if (!/^\d{1,3}$/.test(len))
    throw new PrefixError(text, `"${text}" has a bad prefix length: "${len}" is not 0-${max}`);
  if (Number(len) > max)
    throw new PrefixError(text, `"${text}" has a bad prefix length: ${len} is over ${max}`);
  return { addr, length: Number(len) };
}

/** Parses "10.0.0.0/8" or "fd00::/8" (a bare address is a /32 or /128). Host bits must be zero. */
export function parsePrefix(text: string): Prefix {
  const { addr, length = addr.family === 4 ? 32 : 128 } = splitPrefix(text);
  const { family, bytes } = addr;
  if (hasHostBits(bytes, length)) {
    const suggestion = `${formatAddress(maskBytes(bytes, length), family)}/${length}`;
    throw new PrefixError(text, `"${text}" has host bits set; did you mean ${suggestion}?`);
  }
  return { family, bytes, length, text: `${formatAddress(bytes, family)}/${length}` };
}

/** The IPv4-mapped prefix ::ffff:0:0/96 (RFC 4291 section 2.5.5.2). */
const V4_MAPPED = Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);

/**
 * RFC 5952: lowercase, no leading zeros, the longest run of two or more zero hextets as "::"
 * (the first of equal runs), and IPv4-mapped addresses in mixed notation (section 5).
 */
export function formatAddress(bytes: Uint8Array, family: 4 | 6): string {
  if (family === 4) return Array.from(bytes.subarray(0, 4)).join('.');
  if (V4_MAPPED.every((b, i) => bytes[i] === b))
    return `::ffff:${formatAddress(bytes.subarray(12, 16), 4)}`;
  const hextets = Array.from({ length: 8 }, (_, i) =>
    ((bytes[i * 2]! << 8) | bytes[i * 2 + 1]!).toString(16),
  );
  let best = { start: -1, len: 0 };
  for (let i = 0; i < 8;) {
    if (hextets[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && hextets[j] === '0') j++;
    if (j - i > best.len && j - i > 1) best = { start: i, len: j - i };
    i = j;
  }
  if (best.start < 0) return hextets.join(':');
  return `${hextets.slice(0, best.start).join(':')}::${hextets.slice(best.start + best.len).join(':')}`;
}

/** An interface address with its subnet, e.g. "10.0.0.1/24": host bits are the point here. */
export interface InterfaceAddress {
  family: 4 | 6;
  /** The address itself, e.g. "10.0.0.1". */
  address: string;
  bytes: Uint8Array;
  /** Its connected subnet, e.g. 10.0.0.0/24. */
  subnet: Prefix;
}

export function parseInterfaceAddress(text: string): InterfaceAddress {
  const { addr, length = addr.family === 4 ? 32 : 128 } = splitPrefix(text);
  const { family, bytes } = addr;
  return {
    family,
    address: formatAddress(bytes, family),
    bytes,
    subnet: addressPrefix(bytes, length),
  };
}

/**
 * The prefix of `length` bits that holds an address (4 or 16 bytes): its host bits cleared, its
 * text canonical, so it is the key parsePrefix gives the same prefix. A longest-prefix match asks
 * it once per prefix length in use.
 */
export function addressPrefix(bytes: Uint8Array, length: number): Prefix {
  const family: 4 | 6 = bytes.length === 4 ? 4 : 6;
  const subnet = maskBytes(bytes, length);
  return { family, bytes: subnet, length, text: `${formatAddress(subnet, family)}/${length}` };
}

/** Whether an address (4 or 16 bytes) lies inside a prefix of its family. */
export function prefixContains(prefix: Prefix, bytes: Uint8Array): boolean {
  if (bytes.length !== prefix.bytes.length) return false;
  const masked = maskBytes(bytes, prefix.length);
  return masked.every((b, i) => b === prefix.bytes[i]);
}
