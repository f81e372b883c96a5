import * as grpc from '@grpc/grpc-js';
import {
  anyAuthenticated,
  authorizationInterceptor,
  certificatesLoaded,
  channelCredentials,
  controllerId,
  ensureLocalCa,
  issueCertificate,
  nfId,
  operatorId,
  serverCredentials,
  type TlsFiles,
  type TransportSecurity,
} from '@flowline/grpc-auth';
import { HealthService, chainV1 } from '@flowline/proto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const quiet = { warn: () => undefined };

/**
 * The certificates of a test run, issued by @flowline/grpc-auth's local CA in a temp dir: the
 * controller's, the operator's, NFs', and (from a second CA) a rogue one.
 */
export class TestPki {
  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
    ensureLocalCa(join(dir, 'ca'));
  }

  private issue(file: string, id: string): TlsFiles {
    return issueCertificate(join(this.dir, 'ca'), file, id);
  }

  controller(): TlsFiles {
    return this.issue('controller', controllerId());
  }

  operator(): TlsFiles {
    return this.issue('operator', operatorId());
  }

  nf(namespace: string, name: string): TlsFiles {
    return this.issue(`nf-${namespace}-${name}`, nfId(namespace, name));
  }

  /** The operator's identity, but signed by another CA (what a self-made certificate is). */
  selfSigned(): TlsFiles {
    const other = join(this.dir, 'other-ca');
    const files = issueCertificate(other, 'operator', operatorId());
    // Trusts the real CA, so that the client gets as far as presenting its certificate.
    return { ...files, caFile: join(this.dir, 'ca', 'ca.pem') };
  }

  /** A ChainService client presenting `files` (none: TLS without a client certificate). */
  chainClient(address: string, files?: TlsFiles): chainV1.ChainServiceClient {
    const creds = files
      ? channelCredentials(files, controllerId())
      : grpc.credentials.createSsl(readFileSync(join(this.dir, 'ca', 'ca.pem')), null, null, {
          checkServerIdentity: () => undefined,
        });
    return new (chainV1.loadChainV1().ChainService)(address, creds);
  }
}

/** grpc.health.v1 as an NF serves it on its main port: mutual TLS, open to any authenticated peer. */
export async function startNfHealth(
  address: string,
  security: TransportSecurity,
  health = new HealthService({ '': 'SERVING' }),
): Promise<{ server: grpc.Server; health: HealthService; address: string }> {
  const server = new grpc.Server({
    interceptors: [
      authorizationInterceptor(
        { '/grpc.health.v1.Health/*': anyAuthenticated },
        { insecure: security.insecure === true },
      ),
    ],
  });
  health.addTo(server);
  await certificatesLoaded(security);
  const port = await new Promise<number>((res, rej) =>
    server.bindAsync(address, serverCredentials(security, quiet, 'nf health'), (e, p) =>
      e ? rej(e) : res(p),
    ),
  );
  return {
    server,
    health,
    address: address.startsWith('unix:') ? address : address.replace(/:\d+$/, `:${port}`),
  };
}
