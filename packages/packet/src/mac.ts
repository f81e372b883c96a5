export class MacError extends Error {}

const MAC = /^([0-9a-fA-F]{2})(:[0-9a-fA-F]{2}){5}$/;

export function parseMac(text: string): Uint8Array {
  if (!MAC.test(text)) throw new MacError(`"${text}" is not a MAC address like 02:00:00:00:00:01`);
  return Uint8Array.from(text.split(':').map((h) => parseInt(h, 16)));
}

export function formatMac(bytes: Uint8Array): string {
  return Array.from(bytes.subarray(0, 6), (b) => b.toString(16).padStart(2, '0')).join(':');
}

export const BROADCAST_MAC = 'ff:ff:ff:ff:ff:ff';
