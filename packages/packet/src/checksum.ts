/** Adds bytes into a ones'-complement sum (RFC 1071), 16 bits at a time, big-endian. */
export function sumWords(bytes: Uint8Array, sum = 0): number {
  let s = sum;
  const end = bytes.length & ~1;
  for (let i = 0; i < end; i += 2) s += (bytes[i]! << 8) | bytes[i + 1]!;
  if (bytes.length & 1) s += bytes[bytes.length - 1]! << 8;
  return s;
}

export function foldChecksum(sum: number): number {
  let s = sum;
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return ~s & 0xffff;
}

/** The Internet checksum of bytes (0 when bytes already carry a valid checksum). */
export function internetChecksum(bytes: Uint8Array, initial = 0): number {
  return foldChecksum(sumWords(bytes, initial));
}

/** The pseudo-header sum for TCP, UDP and ICMPv6 over IPv4 (RFC 793) or IPv6 (RFC 8200 §8.1). */
export function pseudoHeaderSum(
  src: Uint8Array,
  dst: Uint8Array,
  protocol: number,
  length: number,
): number {
  let s = sumWords(src) + sumWords(dst) + protocol;
  if (src.length === 16) s += Math.floor(length / 0x10000) + (length & 0xffff);
  else s += length;
  return s;
}
