/** The one match validator, and the protocol and port-range parsers it is made of. */
import { describe, expect, it } from 'vitest';
import { matchFields, MatchError, type MatchFields, parsePortRange, validateMatch } from './match';
import { formatProtocol, parseProtocol, ProtocolError } from './protocol';

describe('protocols', () => {
  it('reads names in any case, numbers 0-255, and any', () => {
    expect(['icmp', 'TCP', ' udp ', 'icmpv6', 'Sctp'].map(parseProtocol)).toEqual([
      1, 6, 17, 58, 132,
    ]);
    expect(parseProtocol('47')).toBe(47);
    expect(parseProtocol('0')).toBe(0);
    expect(parseProtocol('')).toBeUndefined();
    expect(parseProtocol('ANY')).toBeUndefined();
  });
  it.each(['gre', '256', '-1', '1.5', '0x6', 'tcp/udp', 'constructor', '__proto__', 'toString'])(
    'refuses %j',
    (text) => {
      expect(() => parseProtocol(text)).toThrow(ProtocolError);
    },
  );
  it('writes a number back as its name where it has one', () => {
    expect([6, 58, 47, undefined].map(formatProtocol)).toEqual(['tcp', 'icmpv6', '47', 'any']);
  });
});

describe('port ranges', () => {
  const tcp = 6;
  it('is any port for no range, 0-0 and 0-65535', () => {
    expect(parsePortRange(undefined, 'p', tcp)).toBeUndefined();
    expect(parsePortRange(null, 'p', undefined)).toBeUndefined();
    expect(parsePortRange({ first: 0, last: 0 }, 'p', undefined)).toBeUndefined();
    expect(parsePortRange({ first: 0, last: 65535 }, 'p', tcp)).toBeUndefined();
  });
  it('gives [first, last], inclusive', () => {
    expect(parsePortRange({ first: 80, last: 443 }, 'p', tcp)).toEqual([80, 443]);
    expect(parsePortRange({ first: 53, last: 53 }, 'p', 17)).toEqual([53, 53]);
    expect(parsePortRange({ first: 0, last: 1023 }, 'p', 132)).toEqual([0, 1023]);
    expect(parsePortRange({ first: 1024, last: 65535 }, 'p', tcp)).toEqual([1024, 65535]);
  });
  it.each([
    [{ first: 80, last: 80 }, undefined, /ports need protocol tcp, udp or sctp/],
    [{ first: 80, last: 80 }, 1, /ports need protocol tcp, udp or sctp/],
    [{ first: 90, last: 80 }, 6, /first \(90\) is after last \(80\)/],
    [{ first: 1, last: 65536 }, 6, /0-65535/],
    [{ first: 1.5, last: 2 }, 6, /0-65535/],
  ])('refuses %j with protocol %s', (range, protocol, reason) => {
    expect(() => parsePortRange(range, 'rules[3].dst_ports', protocol)).toThrow(reason);
    expect(() => parsePortRange(range, 'rules[3].dst_ports', protocol)).toThrow(
      /^rules\[3\]\.dst_ports: /,
    );
  });
});

describe('validateMatch', () => {
  it('matches everything, in both families, when no field is set', () => {
    expect(validateMatch({}, 'm')).toEqual({ families: [4, 6] });
    expect(validateMatch({ protocol: 'any', ipVersion: 0, srcPrefix: '' }, 'm')).toEqual({
      families: [4, 6],
    });
  });
  it('validates a whole 5-tuple', () => {
    const m = validateMatch(
      {
        srcPrefix: '10.0.0.0/8',
        dstPrefix: '192.0.2.1',
        protocol: 'TCP',
        srcPorts: { first: 1024, last: 65535 },
        dstPorts: { first: 80, last: 443 },
      },
      'm',
    );
    expect(m).toMatchObject({
      families: [4],
      src: { text: '10.0.0.0/8' },
      dst: { text: '192.0.2.1/32' },
      protocol: 6,
      srcPorts: [1024, 65535],
      dstPorts: [80, 443],
    });
  });
  it('takes the family from a prefix, ip_version, icmp or icmpv6', () => {
    const families = (f: MatchFields) => validateMatch(f, 'm').families;
    expect(families({ dstPrefix: 'fd00::/8' })).toEqual([6]);
    expect(families({ ipVersion: 4 })).toEqual([4]);
    expect(families({ ipVersion: 6, protocol: 'udp' })).toEqual([6]);
    expect(families({ protocol: 'udp' })).toEqual([4, 6]);
    expect(families({ protocol: 'icmp' })).toEqual([4]);
    expect(families({ protocol: 'icmpv6' })).toEqual([6]);
    expect(families({ protocol: 'icmpv6', srcPrefix: '::/0' })).toEqual([6]);
  });
  it.each<[MatchFields, string, RegExp]>([
    [{ srcPrefix: '10.0.0.1/24' }, 'rules[3].src_prefix', /did you mean 10\.0\.0\.0\/24/],
    [{ dstPrefix: 'banana' }, 'rules[3].dst_prefix', /not an IPv4 or IPv6 prefix/],
    [
      { srcPrefix: '10.0.0.0/8', dstPrefix: 'fd00::/8' },
      'rules[3].dst_prefix',
      /IPv6 but src_prefix is IPv4/,
    ],
    [{ ipVersion: 5 }, 'rules[3].ip_version', /must be 0, 4 or 6/],
    [
      { ipVersion: 6, dstPrefix: '10.0.0.0/8' },
      'rules[3].ip_version',
      /is 6 but the prefixes are IPv4/,
    ],
    [{ protocol: 'gre2' }, 'rules[3].protocol', /"gre2" is not any, icmp, tcp, udp, icmpv6, sctp/],
    [{ protocol: 'icmp', ipVersion: 6 }, 'rules[3].protocol', /icmp is IPv4; use icmpv6/],
    [
      { protocol: 'icmpv6', srcPrefix: '10.0.0.0/8' },
      'rules[3].protocol',
      /icmpv6 is IPv6; use icmp/,
    ],
    [{ dstPorts: { first: 80, last: 80 } }, 'rules[3].dst_ports', /ports need protocol/],
    [
      { protocol: 'icmp', srcPorts: { first: 1, last: 1 } },
      'rules[3].src_ports',
      /ports need protocol/,
    ],
    [{ protocol: 'udp', srcPorts: { first: 9, last: 8 } }, 'rules[3].src_ports', /after last/],
  ])('refuses %j, naming %s', (fields, field, reason) => {
    let error: unknown;
    try {
      validateMatch(fields, 'rules[3]');
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(MatchError);
    expect((error as MatchError).field).toBe(field);
    expect((error as MatchError).reason).toMatch(reason);
  });
  it('names a top-level field without a leading dot', () => {
    expect(() => validateMatch({ ipVersion: 7 }, '')).toThrow(/^ip_version: /);
  });
  it('writes a match back in the API fields, canonically', () => {
    const fields = matchFields(
      validateMatch(
        { srcPrefix: 'FD00:0::/8', protocol: '17', dstPorts: { first: 53, last: 53 } },
        'm',
      ),
    );
    expect(fields).toEqual({
      ipVersion: 6,
      srcPrefix: 'fd00::/8',
      dstPrefix: '',
      protocol: 'udp',
      srcPorts: { first: 0, last: 0 },
      dstPorts: { first: 53, last: 53 },
    });
    expect(matchFields(validateMatch({}, 'm'))).toMatchObject({ ipVersion: 0, protocol: 'any' });
  });
});
