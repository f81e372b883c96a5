import { X509Certificate, createPrivateKey } from 'node:crypto';
import { once } from 'node:events';
import { connect, createServer, type TLSSocket } from 'node:tls';
import { find, type Manifest } from './helm';

/** A kubernetes.io/tls Secret's files, decoded. */
export interface TlsFiles {
  'ca.crt': string;
  'tls.crt': string;
  'tls.key': string;
}

export function secretFiles(ms: Manifest[], name: string): TlsFiles {
  const s = find(ms, 'Secret', name) as unknown as { type: string; data: Record<string, string> };
  if (s.type !== 'kubernetes.io/tls') throw new Error(`Secret ${name} is of type ${s.type}`);
  return Object.fromEntries(
    Object.entries(s.data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]),
  ) as unknown as TlsFiles;
}

/**
 * The SPIFFE ID a certificate proves, read as packages/grpc-auth's identityOf reads it: its one
 * spiffe:// URI SAN, or, without any URI SAN, a spiffe:// subject CN.
 */
export function spiffeIdOf(pem: string): string | undefined {
  const cert = new X509Certificate(pem);
  const uris = (cert.subjectAltName ?? '')
    .split(/,\s*/)
    .filter((s) => s.startsWith('URI:spiffe://'))
    .map((s) => s.slice(4));
  if (uris.length > 1) throw new Error(`certificate carries ${uris.length} SPIFFE IDs`);
  if (uris.length === 1) return uris[0];
  const cn = /(?:^|\n)CN=(.*)/.exec(cert.subject)?.[1];
  return cn?.startsWith('spiffe://') ? cn : undefined;
}

/** What a leaf certificate is: its identity, issuer check, usages and key match. */
export function leafFacts(files: TlsFiles): {
  id: string | undefined;
  signedByCa: boolean;
  keyMatches: boolean;
  serverAndClientAuth: boolean;
  isCa: boolean;
} {
  const cert = new X509Certificate(files['tls.crt']);
  const ca = new X509Certificate(files['ca.crt']);
  const usages = cert.keyUsage ?? [];
  return {
    id: spiffeIdOf(files['tls.crt']),
    signedByCa: cert.checkIssued(ca) && cert.verify(ca.publicKey),
    keyMatches: cert.checkPrivateKey(createPrivateKey(files['tls.key'])),
    serverAndClientAuth:
      usages.includes('1.3.6.1.5.5.7.3.1') && usages.includes('1.3.6.1.5.5.7.3.2'),
    isCa: cert.ca,
  };
}

/**
 * A real mutual TLS handshake on loopback, as grpc-js does it (OpenSSL through node:tls): the
 * server requires a client certificate of its CA, the client verifies the server against its CA
 * (by certificate, not host name: pods are dialled by IP). Resolves with the SPIFFE ID each side
 * saw of the other, or with the error of the side that refused.
 */
export async function mtlsHandshake(
  server: TlsFiles,
  client: TlsFiles,
): Promise<{ ok: true; serverSaw?: string; clientSaw?: string } | { ok: false; error: string }> {
  let serverSaw: string | undefined;
  let serverError: string | undefined;
  const srv = createServer(
    {
      key: server['tls.key'],
      cert: server['tls.crt'],
      ca: server['ca.crt'],
      requestCert: true,
      rejectUnauthorized: true,
    },
    (sock: TLSSocket) => {
      const peer = sock.getPeerX509Certificate();
      serverSaw = peer ? spiffeIdOf(peer.toString()) : undefined;
      sock.end('ok');
    },
  );
  srv.on('tlsClientError', (e) => (serverError = e.message));
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address() as { port: number };
  try {
    const result = await new Promise<{ clientSaw?: string; error?: string }>((resolve) => {
      const sock = connect({
        host: '127.0.0.1',
        port,
        key: client['tls.key'],
        cert: client['tls.crt'],
        ca: client['ca.crt'],
        rejectUnauthorized: true,
        checkServerIdentity: () => undefined,
      });
      sock.on('secureConnect', () => {
        const peer = sock.getPeerX509Certificate();
        const clientSaw = peer ? spiffeIdOf(peer.toString()) : undefined;
        sock.on('data', () => {
          sock.end();
          resolve({ clientSaw });
        });
      });
      sock.on('error', (e) => resolve({ error: e.message }));
      sock.on('close', () =>
        resolve({ error: serverError ?? 'closed before the server answered' }),
      );
    });
    if (result.error !== undefined) return { ok: false, error: serverError ?? result.error };
    return { ok: true, serverSaw, clientSaw: result.clientSaw };
  } finally {
    srv.close();
  }
}
