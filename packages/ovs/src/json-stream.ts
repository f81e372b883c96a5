import { OvsdbProtocolError } from './errors';

/**
 * RFC 7047 sends JSON-RPC messages back to back on the stream, with no framing. This splitter
 * finds where each top-level JSON value ends by counting brackets outside of strings, so a
 * message split across reads, or several in one read, come out one by one.
 */
export class JsonStreamSplitter {
  private buffer = '';
  private depth = 0;
  private inString = false;
  private escaped = false;
  private scanned = 0;
  private static readonly MAX_MESSAGE = 64 * 1024 * 1024;

  /** Feeds bytes; returns the complete values they finished, parsed. */
  push(chunk: string): unknown[] {
    this.buffer += chunk;
    const out: unknown[] = [];
    let start = 0;
    for (let i = this.scanned; i < this.buffer.length; i++) {
      const c = this.buffer.charCodeAt(i);
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === 0x5c /* \ */) this.escaped = true;
        else if (c === 0x22 /* " */) this.inString = false;
        continue;
      }
      if (c === 0x22) this.inString = true;
      else if (c === 0x7b /* { */ || c === 0x5b /* [ */) this.depth++;
      else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
        this.depth--;
        if (this.depth < 0) throw new OvsdbProtocolError('unbalanced JSON from OVSDB server');
        if (this.depth === 0) {
          const text = this.buffer.slice(start, i + 1);
          try {
            out.push(JSON.parse(text));
          } catch (err) {
            throw new OvsdbProtocolError(
              `OVSDB server sent invalid JSON: ${text.slice(0, 200)}`,
              {},
              { cause: err },
            );
          }
          start = i + 1;
        }
      } else if (this.depth === 0 && c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) {
        throw new OvsdbProtocolError(
          `OVSDB server sent a non-object at top level: ${this.buffer.slice(i, i + 50)}`,
        );
      }
    }
    this.buffer = this.buffer.slice(start);
    this.scanned = this.buffer.length;
    if (this.buffer.length > JsonStreamSplitter.MAX_MESSAGE)
      throw new OvsdbProtocolError('OVSDB message larger than 64 MiB');
    return out;
  }
}
