/**
 * The framing between the native `flowline` executable (shim/flowline.c) and the resident
 * plugin daemon: one request and one response per connection. Integers are u32 big-endian.
 *
 *   request:  "FLC1" envCount { len "KEY=VALUE" }*envCount stdinLen stdin
 *   response: "FLC1" exitCode stdoutLen stdout
 */

export const MAGIC = Buffer.from('FLC1', 'latin1');
/** Bounds one request: environments are a few KiB, configs with a prevResult some hundred. */
export const MAX_REQUEST_BYTES = 16 << 20;
export const MAX_ENV_ENTRIES = 4096;

export interface DaemonRequest {
  env: Record<string, string>;
  stdin: string;
}

export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
}

export function encodeRequest(req: DaemonRequest): Buffer {
  const parts: Buffer[] = [MAGIC];
  const entries = Object.entries(req.env);
  parts.push(u32(entries.length));
  for (const [k, v] of entries) {
    const b = Buffer.from(`${k}=${v}`, 'utf8');
    parts.push(u32(b.length), b);
  }
  const stdin = Buffer.from(req.stdin, 'utf8');
  parts.push(u32(stdin.length), stdin);
  return Buffer.concat(parts);
}

/**
 * Decodes a request from the bytes received so far: undefined while incomplete, a ProtocolError
 * for bytes that can never become a request.
 */
export function decodeRequest(buf: Buffer): DaemonRequest | undefined {
  if (buf.length > MAX_REQUEST_BYTES)
    throw new ProtocolError(`request larger than ${MAX_REQUEST_BYTES} bytes`);
  const r = new Reader(buf);
  const magic = r.bytes(4);
  if (!magic) return undefined;
  if (!magic.equals(MAGIC)) throw new ProtocolError('request does not start with FLC1');
  const count = r.u32();
  if (count === undefined) return undefined;
  if (count > MAX_ENV_ENTRIES)
    throw new ProtocolError(`${count} environment entries (at most ${MAX_ENV_ENTRIES})`);
  const env: Record<string, string> = {};
  for (let i = 0; i < count; i++) {
    const entry = r.sized();
    if (entry === undefined) return undefined;
    const s = entry.toString('utf8');
    const eq = s.indexOf('=');
    // Entries without "=" exist in hand-built environments; execve keeps them, getenv ignores them.
    if (eq > 0) env[s.slice(0, eq)] = s.slice(eq + 1);
  }
  const stdin = r.sized();
  if (stdin === undefined) return undefined;
  if (r.remaining() !== 0) throw new ProtocolError(`${r.remaining()} bytes after the request`);
  return { env, stdin: stdin.toString('utf8') };
}

export function encodeResponse(exitCode: number, stdout: string): Buffer {
  const out = Buffer.from(stdout, 'utf8');
  return Buffer.concat([MAGIC, u32(exitCode), u32(out.length), out]);
}

export function decodeResponse(buf: Buffer): { exitCode: number; stdout: string } | undefined {
  const r = new Reader(buf);
  const magic = r.bytes(4);
  if (!magic) return undefined;
  if (!magic.equals(MAGIC)) throw new ProtocolError('response does not start with FLC1');
  const exitCode = r.u32();
  if (exitCode === undefined) return undefined;
  const out = r.sized();
  if (out === undefined) return undefined;
  return { exitCode, stdout: out.toString('utf8') };
}

function u32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(n);
  return b;
}

class Reader {
  private offset = 0;
  constructor(private readonly buf: Buffer) {}
  remaining(): number {
    return this.buf.length - this.offset;
  }
  bytes(n: number): Buffer | undefined {
    if (this.remaining() < n) return undefined;
    const b = this.buf.subarray(this.offset, this.offset + n);
    this.offset += n;
    return b;
  }
  u32(): number | undefined {
    return this.bytes(4)?.readUInt32BE(0);
  }
  sized(): Buffer | undefined {
    const n = this.u32();
    if (n === undefined) return undefined;
    if (n > MAX_REQUEST_BYTES) throw new ProtocolError(`field of ${n} bytes`);
    return this.bytes(n);
  }
}
