// An interface's MTU: the default, the bounds, IPv6's minimum, and the config's own check.
import { describe, expect, it } from 'vitest';
import { routerConfigSchema } from './config';
import { InvalidRouteError } from './errors';
import { DEFAULT_MTU, makeInterface } from './interfaces';

const MAC = '02:00:00:00:01:01';

function refusal(fn: () => unknown): InvalidRouteError {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(InvalidRouteError);
  return err as InvalidRouteError;
}

describe('interface MTU', () => {
  it('is 1500 unless given; 68 (IPv4 only) and 65535 are the bounds; 1280 with IPv6', () => {
    expect(DEFAULT_MTU).toBe(1500);
    expect(makeInterface('net1', MAC, ['10.0.1.1/24'], 'i').mtu).toBe(1500);
    expect(makeInterface('net1', MAC, ['10.0.1.1/24'], 'i', 68).mtu).toBe(68);
    expect(makeInterface('net1', MAC, ['2001:db8::1/64'], 'i', 1280).mtu).toBe(1280);
    expect(makeInterface('net1', MAC, ['2001:db8::1/64'], 'i', 65_535).mtu).toBe(65_535);
  });

  it('refuses an MTU out of bounds, naming the field', () => {
    for (const mtu of [67, 65_536, 1442.5]) {
      const err = refusal(() => makeInterface('net1', MAC, ['10.0.1.1/24'], 'interfaces[2]', mtu));
      expect(err.field).toBe('interfaces[2].mtu');
      expect(err.message).toBe(
        `interfaces[2].mtu: ${mtu} is not an MTU: a whole number of bytes 68..65535`,
      );
    }
  });

  it('refuses an MTU under 1280 on an interface with an IPv6 address, saying which', () => {
    const err = refusal(() =>
      makeInterface('net1', MAC, ['10.0.1.1/24', '2001:db8:1::1/64'], 'interfaces[0]', 1279),
    );
    expect(err.message).toBe(
      'interfaces[0].mtu: 1279 is under 1280, the smallest MTU of an IPv6 link (RFC 8200), and ' +
        'the interface has the IPv6 address 2001:db8:1::1: raise the MTU or drop the address',
    );
  });

  it('the config file: a whole number 68..65535, named by its path', () => {
    const issue = (mtu: unknown) => {
      const r = routerConfigSchema.safeParse({
        interfaces: [{ name: 'net1' }, { name: 'net2', mtu }],
      });
      return r.success
        ? undefined
        : { path: r.error.issues[0]!.path, message: r.error.issues[0]!.message };
    };
    expect(issue(1442)).toBeUndefined();
    expect(issue(67)).toEqual({
      path: ['interfaces', 1, 'mtu'],
      message: 'must be at least 68 bytes (the smallest IPv4 MTU, RFC 791)',
    });
    expect(issue(65_536)?.message).toBe('must be at most 65535 bytes (the largest IPv4 packet)');
    expect(issue('1500')?.message).toBe('must be a whole number of bytes');
    expect(issue(1500.5)?.message).toBe('must be a whole number of bytes');
  });
});
