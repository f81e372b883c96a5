/**
 * The address and prefix parser, driven by the RFCs' own examples: RFC 4291 section 2.2 (text
 * forms of IPv6 addresses) and 2.3 (prefixes), RFC 5952 section 4 (the one canonical output)
 * and section 5 (IPv4-mapped addresses in mixed notation).
 */
import { describe, expect, it } from 'vitest';
import {
  AddressError,
  addressPrefix,
  formatAddress,
  parseAddress,
  parseInterfaceAddress,
  parsePrefix,
  prefixContains,
  PrefixError,
} from './ip';

const hex = (text: string): string => Buffer.from(parseAddress(text).bytes).toString('hex');
const canonical = (text: string): string => {
  const a = parseAddress(text);
  return formatAddress(a.bytes, a.family);
};

describe('IPv4 addresses', () => {
  it('parses dotted-quad', () => {
    expect(parseAddress('192.0.2.1')).toEqual({ family: 4, bytes: Uint8Array.of(192, 0, 2, 1) });
    expect(hex('0.0.0.0')).toBe('00000000');
    expect(hex('255.255.255.255')).toBe('ffffffff');
  });
  it.each([
    '',
    '1.2.3',
    '1.2.3.4.5',
    '256.0.0.1',
    '1.2.3.-1',
    '01.2.3.4', // octal to inet_aton: refused rather than read two ways
    '0x1.2.3.4',
    '1.2.3.4 ',
    '1..2.3',
  ])('refuses %j', (text) => {
    expect(() => parseAddress(text)).toThrow(AddressError);
  });
});

describe('IPv6 addresses: the text forms of RFC 4291 section 2.2', () => {
  it('form 1, x:x:x:x:x:x:x:x, leading zeros optional, any case', () => {
    expect(hex('ABCD:EF01:2345:6789:ABCD:EF01:2345:6789')).toBe('abcdef0123456789abcdef0123456789');
    expect(hex('2001:DB8:0:0:8:800:200C:417A')).toBe('20010db80000000000080800200c417a');
    expect(hex('2001:0db8:0000:0000:0008:0800:200c:417a')).toBe(
      hex('2001:DB8:0:0:8:800:200C:417A'),
    );
  });
  it('form 2, "::" for one or more groups of zeros', () => {
    expect(hex('2001:DB8::8:800:200C:417A')).toBe('20010db80000000000080800200c417a');
    expect(hex('FF01::101')).toBe('ff010000000000000000000000000101');
    expect(hex('::1')).toBe('00000000000000000000000000000001');
    expect(hex('::')).toBe('00000000000000000000000000000000');
    expect(hex('1:2:3:4:5:6:7::')).toBe('00010002000300040005000600070000');
    expect(hex('::2:3:4:5:6:7:8')).toBe('00000002000300040005000600070008');
  });
  it('form 3, x:x:x:x:x:x:d.d.d.d, IPv4-mapped and IPv4-compatible', () => {
    expect(hex('0:0:0:0:0:0:13.1.68.3')).toBe('0000000000000000000000000d014403');
    expect(hex('0:0:0:0:0:FFFF:129.144.52.38')).toBe('00000000000000000000ffff81903426');
    expect(hex('::13.1.68.3')).toBe('0000000000000000000000000d014403');
    expect(hex('::FFFF:129.144.52.38')).toBe('00000000000000000000ffff81903426');
    expect(parseAddress('::ffff:1.2.3.4').family).toBe(6);
  });
  it.each([
    '1:2:3:4:5:6:7', // seven groups, no "::"
    '1:2:3:4:5:6:7:8:9',
    '1::2:3:4:5:6:7:8', // "::" must stand for at least one group
    '1::2::3', // "::" at most once
    ':::',
    ':1::',
    '1::2:',
    ':1:2:3:4:5:6:7:8',
    '12345::', // a group is at most four digits
    'g::1',
    '1:2:3:4:5:6:7:8 ',
    'fe80::1%eth0', // a zone index (RFC 4007) is no part of an address here
    '::1.2.3', // the IPv4 part must be a whole dotted-quad
    '::256.0.0.1',
    '::01.2.3.4',
    '1.2.3.4::', // and must come last
    '::1.2.3.4:5',
    '1:2:3:4:5:6:7:1.2.3.4', // 7 groups + 32 bits is 144 bits
    '[::1]',
  ])('refuses %j', (text) => {
    expect(() => parseAddress(text)).toThrow(AddressError);
  });
});

describe('canonical text: RFC 5952', () => {
  it.each([
    // 4.1: leading zeros suppressed
    ['2001:0db8::0001', '2001:db8::1'],
    // 4.2.1: "::" shortens as much as possible
    ['2001:db8:0:0:0:0:2:1', '2001:db8::2:1'],
    // 4.2.2: one zero group is not shortened
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    // 4.2.3: the longest run, the first of equal runs
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    // 4.3: lowercase
    ['2001:DB8::ABCD', '2001:db8::abcd'],
    ['0:0:0:0:0:0:0:0', '::'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['1:0:0:0:0:0:0:0', '1::'],
    // 5: IPv4-mapped addresses in mixed notation, however they were written
    ['::ffff:c000:0201', '::ffff:192.0.2.1'],
    ['0:0:0:0:0:FFFF:129.144.52.38', '::ffff:129.144.52.38'],
    // the deprecated IPv4-compatible form has no well-known prefix to tell it by: hex
    ['::13.1.68.3', '::d01:4403'],
    ['192.0.2.1', '192.0.2.1'],
  ])('%s is written %s', (text, expected) => {
    expect(canonical(text)).toBe(expected);
  });
});

describe('prefixes: RFC 4291 section 2.3', () => {
  it('accepts the legal ways to write 2001:db8:0:cd30::/60, canonically', () => {
    for (const text of [
      '2001:0DB8:0000:CD30:0000:0000:0000:0000/60',
      '2001:0DB8::CD30:0:0:0:0/60',
      '2001:0DB8:0:CD30::/60',
    ])
      expect(parsePrefix(text)).toMatchObject({
        family: 6,
        length: 60,
        text: '2001:db8:0:cd30::/60',
      });
  });
  it('refuses the illegal ones', () => {
    // trailing zeros dropped within a group: not an address
    expect(() => parsePrefix('2001:0DB8:0:CD3/60')).toThrow(/not an IPv4 or IPv6 prefix/);
    // the address left of "/" expands to 2001:db8::cd30: host bits, with the network suggested
    expect(() => parsePrefix('2001:0DB8::CD30/60')).toThrow(
      /host bits set; did you mean 2001:db8::\/60\?/,
    );
    expect(() => parsePrefix('2001:0DB8::CD3/60')).toThrow(PrefixError);
  });
  it('parses IPv4 and bare addresses as host prefixes', () => {
    expect(parsePrefix('10.0.0.0/8')).toMatchObject({ family: 4, length: 8, text: '10.0.0.0/8' });
    expect(parsePrefix('192.0.2.7')).toMatchObject({ length: 32, text: '192.0.2.7/32' });
    expect(parsePrefix('fd00::1').text).toBe('fd00::1/128');
    expect(parsePrefix('0.0.0.0/0').text).toBe('0.0.0.0/0');
    expect(parsePrefix('::/0').text).toBe('::/0');
    expect(parsePrefix('::ffff:10.0.0.0/104').text).toBe('::ffff:10.0.0.0/104');
  });
  it('refuses host bits, suggesting the network', () => {
    expect(() => parsePrefix('10.1.2.3/8')).toThrow(/did you mean 10\.0\.0\.0\/8/);
    expect(() => parsePrefix('fd00::1/64')).toThrow(/did you mean fd00::\/64/);
    expect(() => parsePrefix('2001:db8:ffff::/33')).toThrow(/did you mean 2001:db8:8000::\/33/);
    // the first host bit alone, and the last network bit (allowed)
    expect(() => parsePrefix('10.128.0.0/8')).toThrow(/did you mean 10\.0\.0\.0\/8/);
    expect(() => parsePrefix('2001:db8:8000::/32')).toThrow(/did you mean 2001:db8::\/32/);
    expect(() => parsePrefix('0.0.0.1/31')).toThrow(/did you mean 0\.0\.0\.0\/31/);
    expect(parsePrefix('10.128.0.0/9').text).toBe('10.128.0.0/9');
    expect(parsePrefix('0.0.0.1/32').text).toBe('0.0.0.1/32');
  });
  it.each([
    ['10.0.0.0/33', /bad prefix length: 33 is over 32/],
    ['::/129', /bad prefix length: 129 is over 128/],
    ['10.0.0.0/', /bad prefix length/],
    ['10.0.0.0/x', /bad prefix length: "x" is not 0-32/],
    ['10.0.0.0/-1', /bad prefix length/],
    ['10.0.0.0/8/8', /not an IPv4 or IPv6 prefix/],
    ['/8', /not an IPv4 or IPv6 prefix/],
    ['banana', /not an IPv4 or IPv6 prefix/],
    ['fe80::%eth0/64', /not an IPv4 or IPv6 prefix/],
  ])('refuses %s', (text, reason) => {
    expect(() => parsePrefix(text)).toThrow(PrefixError);
    expect(() => parsePrefix(text)).toThrow(reason);
  });
});

describe('interface addresses', () => {
  it('keeps the host part and derives the connected subnet', () => {
    const a = parseInterfaceAddress('10.0.1.7/24');
    expect(a).toMatchObject({
      family: 4,
      address: '10.0.1.7',
      subnet: { text: '10.0.1.0/24', length: 24 },
    });
    expect(prefixContains(a.subnet, a.bytes)).toBe(true);
    expect(prefixContains(a.subnet, parseInterfaceAddress('10.0.2.1').bytes)).toBe(false);
    expect(prefixContains(a.subnet, parseAddress('fd00::1').bytes)).toBe(false);
    expect(parseInterfaceAddress('FD00::1/64')).toMatchObject({
      address: 'fd00::1',
      subnet: { text: 'fd00::/64' },
    });
    expect(() => parseInterfaceAddress('10.0.0.1/40')).toThrow(/bad prefix length/);
    expect(() => parseInterfaceAddress('10.0.0.256/24')).toThrow(PrefixError);
  });
});

describe('the prefix of a length that holds an address', () => {
  it('clears the host bits and writes the text parsePrefix would, for each family', () => {
    const v4 = parseAddress('10.1.2.3').bytes;
    expect(addressPrefix(v4, 16)).toEqual(parsePrefix('10.1.0.0/16'));
    expect(addressPrefix(v4, 23)).toEqual(parsePrefix('10.1.2.0/23'));
    expect(addressPrefix(v4, 32)).toEqual(parsePrefix('10.1.2.3/32'));
    expect(addressPrefix(v4, 0)).toEqual(parsePrefix('0.0.0.0/0'));
    const v6 = parseAddress('2001:db8:aa:bbff::1').bytes;
    expect(addressPrefix(v6, 57)).toEqual(parsePrefix('2001:db8:aa:bb80::/57'));
    expect(addressPrefix(v6, 0).text).toBe('::/0');
    expect(v4).toEqual(parseAddress('10.1.2.3').bytes); // the address itself is left alone
  });
});
