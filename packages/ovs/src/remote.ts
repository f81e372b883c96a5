import { isIP } from 'node:net';
import { OvsError } from './errors';

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
