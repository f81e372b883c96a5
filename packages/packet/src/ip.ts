import { isIPv4, isIPv6 } from 'node:net';

export interface Prefix {
  family: 4 | 6;
  /** Network address, 4 or 16 bytes, host bits zero. */
  bytes: Uint8Array;
  length: number;
  text: string;
}

export class PrefixError extends Error {}

function ipv4Bytes(addr: string): Uint8Array {
  return Uint8Array.from(addr.split('.').map(Number));
}

function ipv6Bytes(addr: string): Uint8Array {
  // Embedded IPv4 (::ffff:1.2.3.4) becomes two hextets first.
  let text = addr;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const b = ipv4Bytes(v4[1]!);
    text =
      text.slice(0, -v4[1]!.length) +
      `${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const headParts = head ? head.split(':') : [];
  const tailParts = tail ? tail.split(':') : [];
  const fill = tail === undefined ? 0 : 8 - headParts.length - tailParts.length;
  const parts = [...headParts, ...Array<string>(fill).fill('0'), ...tailParts];
  const out = new Uint8Array(16);
  parts.forEach((p, i) => {
    const v = parseInt(p, 16);
    out[i * 2] = v >> 8;
    out[i * 2 + 1] = v & 0xff;
  });
  return out;
}

/** Parses "10.0.0.0/8" or "fd00::/8" (a bare address is a /32 or /128). Host bits must be zero. */
export function parsePrefix(text: string): Prefix {
  const [addr = '', len] = text.split('/');
  const family = isIPv4(addr) ? 4 : isIPv6(addr) ? 6 : undefined;
  if (!family)
    throw new PrefixError(`"${text}" is not an IPv4 or IPv6 prefix such as 10.0.0.0/8 or fd00::/8`);
  const max = family === 4 ? 32 : 128;
  if (len !== undefined && !/^\d{1,3}$/.test(len))
    throw new PrefixError(`"${text}" has a bad prefix length`);
  const length = len === undefined ? max : Number(len);
  if (length > max) throw new PrefixError(`"${text}": prefix length ${length} is over ${max}`);
  const bytes = family === 4 ? ipv4Bytes(addr) : ipv6Bytes(addr);
  for (let bit = length; bit < max; bit++) {
    if (bytes[bit >> 3]! & (0x80 >> (bit & 7))) {
      const masked = formatAddress(maskBytes(bytes, length), family);
      throw new PrefixError(`"${text}" has host bits set; did you mean ${masked}/${length}?`);
    }
  }
  return { family, bytes, length, text: `${formatAddress(bytes, family)}/${length}` };
}

function maskBytes(bytes: Uint8Array, length: number): Uint8Array {
  return bytes.map((b, i) => {
    const keep = Math.max(0, Math.min(8, length - i * 8));
    return b & ((0xff << (8 - keep)) & 0xff);
  });
}

export function formatAddress(bytes: Uint8Array, family: 4 | 6): string {
  if (family === 4) return Array.from(bytes).join('.');
  const hextets = Array.from({ length: 8 }, (_, i) =>
    ((bytes[i * 2]! << 8) | bytes[i * 2 + 1]!).toString(16),
  );
  // Compress the longest run of zero hextets (RFC 5952).
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
  const [addr = '', len] = text.split('/');
  const host = parsePrefix(addr);
  const max = host.family === 4 ? 32 : 128;
  const length = len === undefined ? max : Number(len);
  if (len !== undefined && (!/^\d{1,3}$/.test(len) || length > max)) {
    throw new PrefixError(`"${text}" has a bad prefix length (0-${max})`);
  }
  const subnetBytes = maskBytes(host.bytes, length);
  return {
    family: host.family,
    address: formatAddress(host.bytes, host.family),
    bytes: host.bytes,
    subnet: {
      family: host.family,
      bytes: subnetBytes,
      length,
      text: `${formatAddress(subnetBytes, host.family)}/${length}`,
    },
  };
}

/** Whether an address (4 or 16 bytes) lies inside a prefix of its family. */
export function prefixContains(prefix: Prefix, bytes: Uint8Array): boolean {
  if (bytes.length !== prefix.bytes.length) return false;
  const masked = maskBytes(bytes, prefix.length);
  return masked.every((b, i) => b === prefix.bytes[i]);
}
