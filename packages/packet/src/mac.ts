/** Text that is not a MAC address. */
export class MacError extends Error {
  constructor(
    readonly text: string,
    message: string,
  ) {
    super(message);
    this.name = 'MacError';
  }
}

// Six pairs of hex digits, all separated by ':' or all by '-' (IEEE 802 canonical form).
const MAC = /^[0-9a-fA-F]{2}([:-])[0-9a-fA-F]{2}(\1[0-9a-fA-F]{2}){4}$/;

/** Parses "02:00:00:00:00:01" (or "02-00-00-00-00-01") to 6 bytes. */
export function parseMac(text: string): Uint8Array {
  if (typeof text !== 'string' || !MAC.test(text))
    throw new MacError(
      String(text),
      `"${String(text)}" is not a MAC address like 02:00:00:00:00:01`,
    );
  return Uint8Array.from(text.split(/[:-]/), (h) => parseInt(h, 16));
}

export function formatMac(bytes: Uint8Array): string {
  return Array.from(bytes.subarray(0, 6), (b) => b.toString(16).padStart(2, '0')).join(':');
}

export const BROADCAST_MAC = 'ff:ff:ff:ff:ff:ff';
