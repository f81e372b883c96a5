import { isIP } from 'node:net';
import { OvsError } from './errors';

/**
 * Where an OVS daemon listens, in OVS's own syntax (ovsdb-server --remote, ovs-vsctl
 * set-manager / set-controller, ovs-ofctl targets), active side: `unix:PATH` or
 * `tcp:HOST:PORT` (HOST an IPv4 address, a bracketed IPv6 one, or a DNS name).
 */
export type OvsRemote =
  { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number };

export class OvsRemoteError extends OvsError {}

const SYNTAX = 'use unix:<path> or tcp:<host>:<port> (an IPv6 host in brackets)';

export function parseOvsRemote(remote: string): OvsRemote {
  if (remote.startsWith('unix:')) {
    const path = remote.slice('unix:'.length);
    if (!path.startsWith('/'))
      throw new OvsRemoteError(`OVS remote "${remote}": the unix socket path must be absolute`, {
        remote,
      });
    return { kind: 'unix', path };
  }
  if (remote.startsWith('tcp:')) {
    const rest = remote.slice('tcp:'.length);
    const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(rest);
    const host = m?.[1] ?? m?.[2];
    const port = Number(m?.[3]);
    if (!m || !host || port < 1 || port > 65535)
      throw new OvsRemoteError(`OVS remote "${remote}" is not tcp:<host>:<port>; ${SYNTAX}`, {
        remote,
      });
    if (m[1] !== undefined && isIP(host) !== 6)
      throw new OvsRemoteError(`OVS remote "${remote}": [${host}] is not an IPv6 address`, {
        remote,
      });
    return { kind: 'tcp', host, port };
  }
  throw new OvsRemoteError(`OVS remote "${remote}" is not supported; ${SYNTAX}`, { remote });
}

export function formatOvsRemote(r: OvsRemote): string {
  if (r.kind === 'unix') return `unix:${r.path}`;
  return `tcp:${isIP(r.host) === 6 ? `[${r.host}]` : r.host}:${r.port}`;
}
