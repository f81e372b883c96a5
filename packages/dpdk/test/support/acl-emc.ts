/**
 * The ACL stage's exact-match cache bucket of an IPv4 UDP/TCP flow, computed as
 * native/fl_stage_acl.c does (acl4_words, acl4_slot), so that a test can pick flows that share
 * a bucket. rte_hash_crc_8byte is the SSE4.2 CRC32C instruction: no inversion, bytes of the
 * little-endian 64-bit word in order.
 */
const CRC32C_POLY = 0x82f63b78; // reflected Castagnoli

const table = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ CRC32C_POLY : c >>> 1;
  return c >>> 0;
});

function crc32c(bytes: Uint8Array, init: number): number {
  let c = init >>> 0;
  for (const b of bytes) c = ((table[(c ^ b) & 0xff] ?? 0) ^ (c >>> 8)) >>> 0;
  return c;
}

/** The cache's size in entries (two to a bucket), as ACL_EMC_ENTRIES. */
export const ACL_EMC_ENTRIES = 8192;

/** The index of the first entry of the flow's bucket (the record keeps ports in network order). */
export function aclEmcBucket(f: {
  src: string;
  dst: string;
  protocol: number;
  sport: number;
  dport: number;
}): number {
  const ip = (a: string): number[] => a.split('.').map(Number);
  const w0 = Uint8Array.from([
    f.sport >> 8,
    f.sport & 255,
    f.dport >> 8,
    f.dport & 255,
    ...ip(f.src),
  ]);
  const w1 = Uint8Array.from([...ip(f.dst), f.protocol, 0, 0, 0]);
  return crc32c(w1, crc32c(w0, 0)) & (ACL_EMC_ENTRIES - 2);
}
