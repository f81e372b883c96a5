import { DpdkError } from './errors';

/** Parses "aa:bb:cc:dd:ee:ff" (or '-' separated) into 6 bytes. */
export function parseMac(mac: string): Buffer {
  if (typeof mac !== 'string' || !/^([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}$/.test(mac))
    throw new DpdkError(`MAC address "${String(mac)}" is not aa:bb:cc:dd:ee:ff`, 'mac');
  return Buffer.from(mac.replace(/[:-]/g, ''), 'hex');
}

export function formatMac(b: Uint8Array): string {
  return [...b.subarray(0, 6)].map((x) => x.toString(16).padStart(2, '0')).join(':');
}
