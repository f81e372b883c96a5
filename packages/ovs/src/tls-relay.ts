// ovs-ofctl speaks SSL itself but checks only that the switch's certificate is signed by the CA
// (--ca-cert); it has no option to require a name. When the switch must be a particular one
// (OvsTls.peerName: ovs-switch.<node>), ovs-ofctl is pointed at a unix socket of ours instead,
// in a fresh 0700 directory, and each connection it makes there is carried over a TLS
// connection that node:tls makes and verifies: the CA, and the name (checkPeerName). The check
// and the OpenFlow traffic are on the same connection, so nothing can be swapped in between;
// a switch with another name never sees a byte of ovs-ofctl's.
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { readFileSync } from 'node:fs';
import { checkPeerName, OvsRemoteError, type OvsTls } from './remote';

export interface RelayTarget {
  host: string;
  port: number;
  tls: OvsTls & { peerName: string };
}

/**
 * Runs `fn` with a `unix:` remote that reaches `target` over verified TLS. Resolves to what fn
 * resolves to; when the TLS side failed (the switch proved another name, or a CA we do not
 * trust), rejects with that failure instead of ovs-ofctl's vaguer one.
 */
export async function withVerifiedRelay<T>(
  target: RelayTarget,
  fn: (remote: string) => Promise<T>,
): Promise<T> {
  const { tls } = target;
  let files: { key: Buffer; cert: Buffer; ca: Buffer };
  try {
    files = {
      key: readFileSync(tls.privateKey),
      cert: readFileSync(tls.certificate),
      ca: readFileSync(tls.caCert),
    };
  } catch (err) {
    throw new OvsRemoteError(
      `cannot read the TLS files for the OpenFlow relay: ${(err as Error).message}`,
      {
        host: target.host,
      },
    );
  }
  const dir = await mkdtemp(join(tmpdir(), 'flowline-of-'));
  const path = join(dir, 'relay.sock');
  const open = new Set<Socket | TLSSocket>();
  let tlsError: Error | undefined;
  const server = createServer((local) => {
    open.add(local);
    local.pause();
    const remote = tlsConnect({
      host: target.host,
      port: target.port,
      ...files,
      checkServerIdentity: checkPeerName(tls.peerName),
    });
    open.add(remote);
    remote.once('secureConnect', () => {
      local.pipe(remote);
      remote.pipe(local);
      local.resume();
    });
    remote.on('error', (err) => {
      tlsError ??= err;
      local.destroy();
    });
    local.on('error', () => remote.destroy());
    local.on('close', () => {
      open.delete(local);
      remote.destroy();
    });
    remote.on('close', () => {
      open.delete(remote);
      local.end();
    });
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => resolve());
    });
    try {
      return await fn(`unix:${path}`);
    } catch (err) {
      if (tlsError)
        throw new OvsRemoteError(
          `OpenFlow over SSL to ${target.host}:${target.port}: ${tlsError.message}`,
          { host: target.host, port: target.port, expected: tls.peerName },
          { cause: err },
        );
      throw err;
    }
  } finally {
    for (const s of open) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(dir, { recursive: true, force: true });
  }
}
