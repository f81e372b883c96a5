import { readFileSync } from 'node:fs';
import { createConnection, isIP, type Socket } from 'node:net';
import { connect as tlsConnect, type PeerCertificate } from 'node:tls';
import { OvsConnectTimeoutError, OvsError } from './errors';

/**
 * Where an OVS daemon listens, in OVS's own syntax (ovsdb-server --remote, ovs-vsctl
 * set-manager / set-controller, ovs-ofctl targets), active side: `unix:PATH`,
 * `tcp:HOST:PORT` or `ssl:HOST:PORT` (HOST an IPv4 address, a bracketed IPv6 one, or a DNS
 * name).
 */
export type OvsRemote =
  { kind: 'unix'; path: string } | { kind: 'tcp' | 'ssl'; host: string; port: number };

/**
 * PEM files for ssl: remotes, as OVS uses them: our private key and certificate, and the CA
 * that signed the peer's. Both sides present certificates (OVS requires the client's).
 */
export interface OvsTls {
  privateKey: string;
  certificate: string;
  caCert: string;
  /**
   * The name the server's certificate must carry (a DNS subject alternative name, or the
   * subject CN when it has none), e.g. `switchName(node)`: which switch this is, beyond "signed
   * by the CA". OVS itself checks no names, so without it any certificate of the CA passes.
   * OVSDB checks it in the TLS handshake; OpenFlow (ovs-ofctl, which cannot) goes through a
   * relay that makes the verified connection itself (src/tls-relay.ts).
   */
  peerName?: string;
}

/** The name a node's switch certificate carries (CN and DNS SAN): `ovs-switch.<node>`. */
export function switchName(node: string): string {
  if (!/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(node))
    throw new OvsRemoteError(`node name "${node}" is not a Kubernetes node name (RFC 1123)`, {
      node,
    });
  return `ovs-switch.${node}`;
}

/** The names a certificate proves: its DNS subject alternative names, else its subject CN. */
export function certificateNames(
  cert: Pick<PeerCertificate, 'subjectaltname' | 'subject'>,
): string[] {
  const dns = (cert.subjectaltname ?? '')
    .split(/,\s*/)
    .filter((p) => p.startsWith('DNS:'))
    .map((p) => p.slice(4));
  if (dns.length) return dns;
  const cn = (cert.subject as Record<string, string | string[]> | undefined)?.CN;
  return typeof cn === 'string' ? [cn] : Array.isArray(cn) ? cn : [];
}

/**
 * A checkServerIdentity for node:tls: the certificate must name `expected` exactly (no
 * wildcards: a switch certificate names one node).
 */
export function checkPeerName(
  expected: string,
): (host: string, cert: PeerCertificate) => Error | undefined {
  return (_host, cert) => {
    const names = certificateNames(cert);
    if (names.some((n) => n.toLowerCase() === expected.toLowerCase())) return undefined;
    return new OvsRemoteError(
      `the switch's certificate names ${names.length ? names.join(', ') : 'nothing'}, not ${expected}: it is not that node's switch`,
      { expected, names },
    );
  };
}

export class OvsRemoteError extends OvsError {}

const SYNTAX = 'use unix:<path>, tcp:<host>:<port> or ssl:<host>:<port> (an IPv6 host in brackets)';

export function parseOvsRemote(remote: string): OvsRemote {
  if (remote.startsWith('unix:')) {
    const path = remote.slice('unix:'.length);
    if (!path.startsWith('/'))
      throw new OvsRemoteError(`OVS remote "${remote}": the unix socket path must be absolute`, {
        remote,
      });
    return { kind: 'unix', path };
  }
  const kind = remote.startsWith('tcp:') ? 'tcp' : remote.startsWith('ssl:') ? 'ssl' : undefined;
  if (kind) {
    const rest = remote.slice(4);
    const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(rest);
    const host = m?.[1] ?? m?.[2];
    const port = Number(m?.[3]);
    if (!m || !host || port < 1 || port > 65535)
      throw new OvsRemoteError(`OVS remote "${remote}" is not ${kind}:<host>:<port>; ${SYNTAX}`, {
        remote,
      });
    if (m[1] !== undefined && isIP(host) !== 6)
      throw new OvsRemoteError(`OVS remote "${remote}": [${host}] is not an IPv6 address`, {
        remote,
      });
    return { kind, host, port };
  }
  throw new OvsRemoteError(`OVS remote "${remote}" is not supported; ${SYNTAX}`, { remote });
}

export function formatOvsRemote(r: OvsRemote): string {
  if (r.kind === 'unix') return `unix:${r.path}`;
  return `${r.kind}:${isIP(r.host) === 6 ? `[${r.host}]` : r.host}:${r.port}`;
}

/** Reads an ssl: remote's PEM files: a missing one is an error naming it. */
export function readTls(tls: OvsTls, remote: string): { key: Buffer; cert: Buffer; ca: Buffer } {
  const read = (file: string, what: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new OvsRemoteError(
        `cannot read the ${what} ${file} for ${remote}: ${(err as Error).message}`,
        {
          remote,
          file,
        },
      );
    }
  };
  return {
    key: read(tls.privateKey, 'private key'),
    cert: read(tls.certificate, 'certificate'),
    ca: read(tls.caCert, 'CA certificate'),
  };
}

export interface OpenOvsSocketOptions {
  /**
   * Gives up after this long (destroying the socket) unless connected, and for ssl: the TLS
   * handshake and name check done, rejecting with OvsConnectTimeoutError. Without it only the
   * kernel bounds the connect (about two minutes to an address that drops SYNs) and nothing
   * bounds a TLS handshake the peer never completes.
   */
  timeoutMs?: number;
  /** Gives up at once when aborted (destroying the socket), rejecting with the abort's reason. */
  signal?: AbortSignal;
}

/**
 * Connects to an OVS remote (OVSDB's or a bridge's OpenFlow listener): resolves with the socket
 * once it is connected (for ssl:, once the TLS handshake and the name check passed).
 */
export function openOvsSocket(
  t: OvsRemote,
  tlsFiles?: { key: Buffer; cert: Buffer; ca: Buffer },
  peerName?: string,
  options: OpenOvsSocketOptions = {},
): Promise<Socket> {
  const { timeoutMs, signal } = options;
  const remote = formatOvsRemote(t);
  const cancelled = (): Error =>
    signal?.reason instanceof Error
      ? signal.reason
      : new OvsRemoteError(`connecting to ${remote} was cancelled`, { remote });
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(cancelled());
    const socket =
      t.kind === 'unix'
        ? createConnection({ path: t.path })
        : t.kind === 'tcp'
          ? createConnection({ host: t.host, port: t.port, noDelay: true })
          : tlsConnect({
              host: t.host,
              port: t.port,
              ...tlsFiles,
              // Not the host name (nodes are dialled by IP): the switch's own name when one
              // is expected (tls.peerName, e.g. ovs-switch.<node>); otherwise, as OVS's own
              // peers do, the CA alone.
              checkServerIdentity: peerName ? checkPeerName(peerName) : () => undefined,
            });
    let timer: NodeJS.Timeout | undefined;
    const settle = (): void => {
      clearTimeout(timer);
      socket.off('error', fail);
      signal?.removeEventListener('abort', onAbort);
    };
    function fail(err: Error): void {
      settle();
      // Whatever the abandoned socket still reports is no one's concern.
      socket.on('error', () => undefined);
      socket.destroy();
      reject(err);
    }
    const onAbort = (): void => fail(cancelled());
    socket.once('error', fail);
    signal?.addEventListener('abort', onAbort, { once: true });
    if (timeoutMs !== undefined && Number.isFinite(timeoutMs))
      timer = setTimeout(
        () => {
          const handshake = t.kind === 'ssl' && !socket.connecting;
          fail(
            new OvsConnectTimeoutError(
              handshake
                ? `the TLS handshake with ${remote} did not complete within ${timeoutMs} ms (the peer accepted the connection but did not finish TLS: is it an ssl: listener?)`
                : `connecting to ${remote} did not succeed within ${timeoutMs} ms (no answer: is the address reachable?)`,
              { remote, timeoutMs, phase: handshake ? 'tls-handshake' : 'connect' },
            ),
          );
        },
        Math.max(0, timeoutMs),
      );
    socket.once(t.kind === 'ssl' ? 'secureConnect' : 'connect', () => {
      settle();
      resolve(socket);
    });
  });
}
