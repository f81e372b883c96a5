import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { IpsecConfigError } from './errors';
import { KeyDirectory, parseHexKey } from './keys';

describe('key directory', () => {
  const top = mkdtempSync(join(tmpdir(), 'flowline-ipsec-keys-'));
  const dir = join(top, 'keys');
  // A mounted Secret: the keys are symlinks into a timestamped folder of the volume.
  mkdirSync(join(dir, '..2026_12_05'), { recursive: true });
  writeFileSync(
    join(dir, '..2026_12_05', 'site-b-in'),
    '0x000102030405060708090a0b0c0d0e0f10111213\n',
  );
  symlinkSync('..2026_12_05/site-b-in', join(dir, 'site-b-in'));
  writeFileSync(join(top, 'outside'), '00112233');
  symlinkSync('../outside', join(dir, 'escape'));
  writeFileSync(join(dir, 'big'), 'ab'.repeat(200));
  writeFileSync(join(dir, 'odd'), 'abc');
  mkdirSync(join(dir, 'sub'));
  afterAll(() => rmSync(top, { recursive: true, force: true }));
  const keys = new KeyDirectory(dir);
  const refusal = (name: string) => {
    try {
      keys.read(name, 'sa.encryption_key.key_ref');
    } catch (err) {
      expect(err).toBeInstanceOf(IpsecConfigError);
      expect((err as IpsecConfigError).field).toBe('sa.encryption_key.key_ref');
      return (err as IpsecConfigError).reason;
    }
    throw new Error(`${name} was read`);
  };

  it('reads a Secret key through its symlink, as hex text', () => {
    expect(keys.read('site-b-in', 'f').toString('hex')).toBe(
      '000102030405060708090a0b0c0d0e0f10111213',
    );
  });

  it('refuses names that could leave the directory or reach hidden entries', () => {
    expect(refusal('../outside')).toMatch(/must be 1-253 characters/);
    expect(refusal('..2026_12_05')).toMatch(/not starting with a dot/);
    expect(refusal('a/b')).toMatch(/must be 1-253/);
    expect(refusal('')).toMatch(/must be 1-253/);
  });

  it('refuses a symlink that resolves outside, a missing key, a folder, an oversized or bad file', () => {
    expect(refusal('escape')).toMatch(/resolves outside the key directory/);
    expect(refusal('missing')).toMatch(/no key "missing"/);
    expect(refusal('sub')).toMatch(/is not a file/);
    expect(refusal('big')).toMatch(/is 400 bytes, at most 256/);
    expect(refusal('odd')).toMatch(/hex text of whole bytes/);
  });

  it('without a directory, key_ref is refused with what to do instead', () => {
    expect(() => new KeyDirectory(undefined).read('k', 'f')).toThrow(/give the key inline/);
  });

  it('parses hex with or without 0x and white space', () => {
    expect(parseHexKey(' 0xABcd\n', 'f')).toEqual(Buffer.from([0xab, 0xcd]));
    expect(parseHexKey('abcd', 'f')).toEqual(Buffer.from([0xab, 0xcd]));
    expect(() => parseHexKey('0x', 'f')).toThrow(IpsecConfigError);
    expect(() => parseHexKey('zz', 'f')).toThrow(IpsecConfigError);
  });
});
