import type { TlsFiles } from '@flowline/grpc-auth';
import { readFileSync } from 'node:fs';
import http2 from 'node:http2';
import { connect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';

/**
 * A server-streaming gRPC call read at the HTTP/2 level, so that a test can stop reading for
 * real: paused, it consumes nothing and the server's flow-control window runs out (grpc-js's
 * own client keeps reading the connection and queues messages it was not asked for). `decode`
 * turns each message's bytes into an object; `messages` holds those read so far. With `tls`,
 * over mutual TLS presenting that certificate (HTTP/2 by ALPN, as gRPC does).
 */
export class RawGrpcReader<T> {
  readonly messages: T[] = [];
  private readonly session: http2.ClientHttp2Session;
  private readonly stream: http2.ClientHttp2Stream;
  private pending = Buffer.alloc(0);

  constructor(
    socketPath: string,
    path: string,
    private readonly decode: (bytes: Buffer) => T,
    tls?: TlsFiles,
  ) {
    this.session = http2.connect(tls ? 'https://localhost' : 'http://localhost', {
      createConnection: () =>
        tls
          ? tlsConnect({
              path: socketPath,
              key: readFileSync(tls.keyFile),
              cert: readFileSync(tls.certFile),
              ca: readFileSync(tls.caFile),
              ALPNProtocols: ['h2'],
              // The server is the test's own; its identity is not what this reader checks.
              checkServerIdentity: () => undefined,
            })
          : connect(socketPath),
    });
    this.session.on('error', () => undefined);
    this.stream = this.session.request({
      ':method': 'POST',
      ':path': path,
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    this.stream.on('error', () => undefined);
    // One empty request message (no compression, length 0).
    this.stream.end(Buffer.from([0, 0, 0, 0, 0]));
    this.stream.pause();
  }

  /** Reads from now on, decoding every whole message. */
  resume(): void {
    this.stream.on('data', (chunk: Buffer) => {
      this.pending = Buffer.concat([this.pending, chunk]);
      while (this.pending.length >= 5) {
        const length = this.pending.readUInt32BE(1);
        if (this.pending.length < 5 + length) break;
        this.messages.push(this.decode(this.pending.subarray(5, 5 + length)));
        this.pending = this.pending.subarray(5 + length);
      }
    });
    this.stream.resume();
  }

  close(): void {
    this.stream.close(http2.constants.NGHTTP2_CANCEL);
    this.session.destroy();
  }
}
