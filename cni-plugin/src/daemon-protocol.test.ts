import { describe, expect, it } from 'vitest';
import {
  decodeRequest,
  decodeResponse,
  encodeRequest,
  encodeResponse,
  MAGIC,
  MAX_ENV_ENTRIES,
  ProtocolError,
  RequestDecoder,
} from './daemon-protocol';

const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};

describe('daemon protocol', () => {
  const request = {
    env: { CNI_COMMAND: 'ADD', CNI_ARGS: 'K8S_POD_NAME=a=b;X=é', EMPTY: '' },
    stdin: JSON.stringify({ cniVersion: '1.1.0', name: 'ünïcode', big: 'x'.repeat(200_000) }),
  };

  it('round-trips a request and a response byte for byte', () => {
    const wire = encodeRequest(request);
    expect(wire.subarray(0, 4).equals(MAGIC)).toBe(true);
    expect(decodeRequest(wire)).toEqual(request);
    expect(decodeResponse(encodeResponse(7, '{"code":7}'))).toEqual({
      exitCode: 7,
      stdout: '{"code":7}',
    });
    expect(decodeResponse(encodeResponse(0, ''))).toEqual({ exitCode: 0, stdout: '' });
  });

  it('waits for the rest of a request that arrives in pieces', () => {
    const wire = encodeRequest(request);
    for (const cut of [0, 3, 4, 7, 8, 20, wire.length - 1])
      expect(decodeRequest(wire.subarray(0, cut))).toBeUndefined();
    expect(decodeResponse(encodeResponse(1, 'abc').subarray(0, 13))).toBeUndefined();
  });

  it('decodes a request fed in pieces once: every byte parsed exactly once, however it is cut', () => {
    const wire = encodeRequest(request);
    for (const size of [1, 3, 4096]) {
      const decoder = new RequestDecoder();
      let got;
      let pieces = 0;
      let early = 0;
      for (let off = 0; off < wire.length; off += size) {
        if (got !== undefined) early++;
        got = decoder.push(wire.subarray(off, off + size));
        pieces++;
      }
      expect(early).toBe(0);
      expect(pieces).toBe(Math.ceil(wire.length / size));
      expect(got).toEqual(request);
      expect(decoder.parsedBytes).toBe(wire.length);
    }
    const decoder = new RequestDecoder();
    decoder.push(wire);
    expect(() => decoder.push(Buffer.from('x'))).toThrow(/after the request/);
  });

  it('keeps the value after the first "=" and skips entries without one, as getenv does', () => {
    const entry = (s: string): Buffer[] => [u32(Buffer.byteLength(s)), Buffer.from(s)];
    const wire = Buffer.concat([MAGIC, u32(2), ...entry('A=b=c'), ...entry('NOEQUALS'), u32(0)]);
    expect(decodeRequest(wire)).toEqual({ env: { A: 'b=c' }, stdin: '' });
  });

  it('refuses bytes that can never become a request', () => {
    expect(() => decodeRequest(Buffer.from('GET / HTTP/1.1\r\n'))).toThrow(ProtocolError);
    expect(() => decodeRequest(Buffer.concat([MAGIC, u32(MAX_ENV_ENTRIES + 1)]))).toThrow(
      /environment entries/,
    );
    expect(() => decodeRequest(Buffer.concat([MAGIC, u32(1), u32(0xffffffff)]))).toThrow(
      /field of/,
    );
    expect(() => decodeRequest(Buffer.concat([encodeRequest(request), Buffer.from('x')]))).toThrow(
      /after the request/,
    );
    expect(() => decodeResponse(Buffer.from('HTTP/1.1 200 OK'))).toThrow(ProtocolError);
  });
});
