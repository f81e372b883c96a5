import { isIP } from 'node:net';

import { PipelineError } from './errors';

export interface Prefix {
  family: 4 | 6;
  /** 16 bytes; an IPv4 address uses the first 4. */
  addr: Buffer;
  len: number;
}

/** Parses an IPv4 or IPv6 address to 4 or 16 bytes. */
export function parseIp(s: string, where = ''): { family: 4 | 6; bytes: Buffer } {
  const fam = isIP(s);
  if (fam === 4) return { family: 4, bytes: Buffer.from(s.split('.').map(Number)) };
  if (fam === 6) {
    let str = s;
    // an embedded IPv4 tail (::ffff:1.2.3.4) becomes two hex groups
    const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(str);
    if (v4) {
      const b = v4[1]!.split('.').map(Number);
      str =
        str.slice(0, -v4[1]!.length) +
        `${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
    }
    const [head, tail] = str.includes('::') ? str.split('::') : [str, undefined];
    const h = head ? head.split(':') : [];
    const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
    const groups =
      tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
    const out = Buffer.alloc(16);
    groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
    return { family: 6, bytes: out };
  }
  throw new PipelineError(`"${s}" is not an IPv4 or IPv6 address`, where);
}

/** Parses "10.0.0.0/8", "2001:db8::/32" or a bare address (a host prefix). */
export function parsePrefix(s: string, where = ''): Prefix {
  if (typeof s !== 'string')
    throw new PipelineError(`prefix must be a string, got ${typeof s}`, where);
  const [a, l, extra] = s.split('/');
  if (extra !== undefined) throw new PipelineError(`"${s}" is not a prefix`, where);
  const { family, bytes } = parseIp(a ?? '', where);
  const max = family === 4 ? 32 : 128;
  const len = l === undefined ? max : Number(l);
  if (!Number.isInteger(len) || len < 0 || len > max || (l !== undefined && !/^\d+$/.test(l)))
    throw new PipelineError(`prefix length in "${s}" must be 0..${max}`, where);
  const addr = Buffer.alloc(16);
  bytes.copy(addr);
  // clear host bits so that equal prefixes compare equal
  for (let bit = len; bit < max; bit++) addr[bit >> 3]! &= ~(0x80 >> (bit & 7));
  return { family, addr, len };
}
