/**
 * Key material by reference: a file in the gateway's key directory, as a Kubernetes Secret
 * mounted as a volume lays it out (one file per key, possibly a symlink into the volume's
 * timestamped folder). The name comes from an API call, so it is bounded and checked, the file
 * is resolved and must stay inside the directory, and its size is bounded before it is read.
 * Keys are hex text, as `ip xfrm state` and swanctl take them. Nothing here logs key material.
 */
import { closeSync, constants, fstatSync, openSync, readSync, realpathSync } from 'node:fs';
import { sep } from 'node:path';
import { IpsecConfigError } from './errors';

/** 1-253 characters of a Secret's key name, not starting with a dot (no "..", no hidden data). */
const KEY_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,252}$/;
/** Hex text of the longest key (36 bytes: AES-256 + salt) with room for "0x" and newlines. */
const MAX_KEY_FILE = 256;

/** Parses hex key text ("0x" optional, surrounding white space ignored). */
export function parseHexKey(text: string, field: string): Buffer {
  const hex = text.trim().replace(/^0x/i, '');
  if (hex.length === 0 || hex.length % 2 !== 0 || !/^[0-9a-fA-F]+$/.test(hex))
    throw new IpsecConfigError(field, 'must be hex text of whole bytes (e.g. 0x0123...)');
  return Buffer.from(hex, 'hex');
}

export class KeyDirectory {
  private readonly root: string;

  /** dir: the key directory; undefined when the gateway takes keys only inline. */
  constructor(dir: string | undefined) {
    this.root = dir === undefined ? '' : realpathSync(dir);
  }

  /** The key named `name`, read now; `field` names the request field in errors. */
  read(name: string, field: string): Buffer {
    if (!this.root)
      throw new IpsecConfigError(field, 'this gateway has no key directory: give the key inline');
    if (!KEY_NAME.test(name))
      throw new IpsecConfigError(
        field,
        `"${name.slice(0, 64)}" must be 1-253 characters of [A-Za-z0-9._-], not starting with a dot`,
      );
    let real: string;
    try {
      real = realpathSync(`${this.root}${sep}${name}`);
    } catch {
      throw new IpsecConfigError(field, `no key "${name}" in the key directory`);
    }
    // A mounted Secret's entries are symlinks into the volume: they may point anywhere the
    // volume's writer chose, so the target must still be inside the directory.
    if (!real.startsWith(`${this.root}${sep}`))
      throw new IpsecConfigError(field, `key "${name}" resolves outside the key directory`);
    // Resolved already: a symlink in its place now would be a swap after the check.
    let fd: number;
    try {
      fd = openSync(real, constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch (err) {
      throw new IpsecConfigError(
        field,
        `key "${name}" could not be opened: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
      );
    }
    try {
      const st = fstatSync(fd);
      if (!st.isFile()) throw new IpsecConfigError(field, `key "${name}" is not a file`);
      if (st.size > MAX_KEY_FILE)
        throw new IpsecConfigError(
          field,
          `key "${name}" is ${st.size} bytes, at most ${MAX_KEY_FILE}`,
        );
      const buf = Buffer.alloc(st.size);
      const n = readSync(fd, buf, 0, st.size, 0);
      const key = parseHexKey(buf.subarray(0, n).toString('latin1'), field);
      buf.fill(0);
      return key;
    } finally {
      closeSync(fd);
    }
  }
}
