import { describe, expect, it } from 'vitest';
import { formatMac, MacError, parseMac } from './mac';

describe('MAC addresses (IEEE 802 canonical form)', () => {
  it('parses colon and hyphen forms, any case', () => {
    expect(parseMac('02:00:00:00:00:01')).toEqual(Uint8Array.of(2, 0, 0, 0, 0, 1));
    expect(parseMac('AA-bb-CC-dd-EE-ff')).toEqual(
      Uint8Array.of(0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff),
    );
  });
  it.each([
    '',
    '02:00:00:00:00',
    '02:00:00:00:00:01:02',
    '02:00-00:00:00:01',
    '2:0:0:0:0:1',
    '02:00:00:00:00:0g',
    '0200.0000.0001',
  ])('refuses %j', (text) => {
    expect(() => parseMac(text)).toThrow(MacError);
  });
  it('prints lowercase with colons, the first 6 bytes', () => {
    expect(formatMac(parseMac('AA-BB-CC-00-01-02'))).toBe('aa:bb:cc:00:01:02');
    expect(formatMac(Uint8Array.of(1, 2, 3, 4, 5, 6, 7))).toBe('01:02:03:04:05:06');
  });
});
