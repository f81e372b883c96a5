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

type Field = 'magic' | 'count' | 'entryLength' | 'entry' | 'stdinLength' | 'stdin' | 'done';

/**
 * Decodes a request as its bytes arrive, chunk by chunk: each byte is examined once (a field is
 * copied out only when it is whole, and from as many chunks as it spans), so a request in many
 * small chunks costs what it costs in one. `parsedBytes` counts the bytes the parser consumed.
 */
export class RequestDecoder {
  private readonly chunks: Buffer[] = [];
  private head = 0;
  private buffered = 0;
  private received = 0;
  private field: Field = 'magic';
  private need = 4;
  private entriesLeft = 0;
  private readonly env: Record<string, string> = {};
  private request: DaemonRequest | undefined;
  /** Bytes consumed by the parser: at the end, the request's length, however it was chunked. */
  parsedBytes = 0;

  /** The request once it is whole (undefined before); a ProtocolError for bytes that can never be one. */
  push(chunk: Buffer): DaemonRequest | undefined {
    if (this.field === 'done') throw new ProtocolError(`${chunk.length} bytes after the request`);
    this.received += chunk.length;
    if (this.received > MAX_REQUEST_BYTES)
      throw new ProtocolError(`request larger than ${MAX_REQUEST_BYTES} bytes`);
    if (chunk.length > 0) this.chunks.push(chunk);
    this.buffered += chunk.length;
    while (!this.done() && this.buffered >= this.need) this.step(this.take(this.need));
    if (!this.done()) return undefined;
    if (this.buffered > 0) throw new ProtocolError(`${this.buffered} bytes after the request`);
    return this.request;
  }

  private done(): boolean {
    return this.field === 'done';
  }

  /** Takes the next n buffered bytes: a view when one chunk holds them, else one copy. */
  private take(n: number): Buffer {
    this.buffered -= n;
    this.parsedBytes += n;
    const first = this.chunks[this.head];
    if (first && first.length >= n) {
      this.consume(first, n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    for (let c = this.chunks[this.head]; c && off < n; c = this.chunks[this.head]) {
      const k = Math.min(c.length, n - off);
      c.copy(out, off, 0, k);
      off += k;
      this.consume(c, k);
    }
    return out;
  }

  /** Drops k bytes of the head chunk c (an index moves on: no array shifting per chunk). */
  private consume(c: Buffer, k: number): void {
    if (k < c.length) {
      this.chunks[this.head] = c.subarray(k);
      return;
    }
    this.head++;
    if (this.head === this.chunks.length) {
      this.chunks.length = 0;
      this.head = 0;
    }
  }

  private length(b: Buffer): number {
    const n = b.readUInt32BE(0);
    if (n > MAX_REQUEST_BYTES) throw new ProtocolError(`field of ${n} bytes`);
    return n;
  }

  private step(b: Buffer): void {
    switch (this.field) {
      case 'magic':
        if (!b.equals(MAGIC)) throw new ProtocolError('request does not start with FLC1');
        this.field = 'count';
        this.need = 4;
        return;
      case 'count':
        this.entriesLeft = b.readUInt32BE(0);
        if (this.entriesLeft > MAX_ENV_ENTRIES)
          throw new ProtocolError(
            `${this.entriesLeft} environment entries (at most ${MAX_ENV_ENTRIES})`,
          );
        this.field = this.entriesLeft > 0 ? 'entryLength' : 'stdinLength';
        this.need = 4;
        return;
      case 'entryLength':
        this.need = this.length(b);
        this.field = 'entry';
        return;
      case 'entry': {
        const s = b.toString('utf8');
        const eq = s.indexOf('=');
        // Entries without "=" exist in hand-built environments; execve keeps them, getenv ignores them.
        if (eq > 0) this.env[s.slice(0, eq)] = s.slice(eq + 1);
        this.field = --this.entriesLeft > 0 ? 'entryLength' : 'stdinLength';
        this.need = 4;
        return;
      }
      case 'stdinLength':
        this.need = this.length(b);
        this.field = 'stdin';
        return;
      case 'stdin':
        this.request = { env: this.env, stdin: b.toString('utf8') };
        this.field = 'done';
        this.need = 0;
        return;
      case 'done':
        return;
    }
  }
}

/**
 * Decodes a whole request held in one buffer: undefined while incomplete, a ProtocolError for
 * bytes that can never become a request.
 */
export function decodeRequest(buf: Buffer): DaemonRequest | undefined {
  return new RequestDecoder().push(buf);
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
