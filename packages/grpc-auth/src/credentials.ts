// Transport security for a listener or a client: mutual TLS from three PEM files (CA, certificate,
// key), re-read from disk every refresh interval so that replacing a Kubernetes Secret (or
// `flowline up` re-issuing) rotates certificates without a restart; or plaintext, only when
// configured explicitly, and then with a warning.
import { accessSync, constants } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import type { PeerCertificate } from 'node:tls';
import { GrpcAuthError } from './errors';
import { identityOf } from './identity';

export interface TlsFiles {
  caFile: string;
  certFile: string;
  keyFile: string;
}

/** How a listener or client secures its transport. */
export type TransportSecurity =
  | { insecure: true }
  | (TlsFiles & {
      insecure?: false;
      /** How often certificate files are re-read (default 60 s). */
      refreshIntervalMs?: number;
    });

/** What the package logs through (a @flowline/telemetry Logger fits). */
export interface SecurityLog {
  warn(msg: string, fields?: Record<string, unknown>): void;
}

export const DEFAULT_REFRESH_MS = 60_000;

/** Reads the usual settings: FLOWLINE_TLS_{CA,CERT,KEY} files, or FLOWLINE_INSECURE=1. */
export function transportSecurityFromEnv(
  env: NodeJS.ProcessEnv = process.env,
): TransportSecurity | undefined {
  if (env.FLOWLINE_INSECURE === '1' || env.FLOWLINE_INSECURE === 'true') return { insecure: true };
  const caFile = env.FLOWLINE_TLS_CA;
  const certFile = env.FLOWLINE_TLS_CERT;
  const keyFile = env.FLOWLINE_TLS_KEY;
  if (caFile === undefined && certFile === undefined && keyFile === undefined) return undefined;
  if (!caFile || !certFile || !keyFile)
    throw new GrpcAuthError(
      'FLOWLINE_TLS_CA, FLOWLINE_TLS_CERT and FLOWLINE_TLS_KEY must be given together',
      { field: !caFile ? 'FLOWLINE_TLS_CA' : !certFile ? 'FLOWLINE_TLS_CERT' : 'FLOWLINE_TLS_KEY' },
    );
  return { caFile, certFile, keyFile };
}

function checkReadable(files: TlsFiles): void {
  for (const [field, path] of Object.entries(files)) {
    try {
      accessSync(path, constants.R_OK);
    } catch (err) {
      throw new GrpcAuthError(`${field} ${path} cannot be read: ${(err as Error).message}`, {
        field,
        path,
      });
    }
  }
}

// One watcher per set of files: every server and client using the same files shares its timer.
const providers = new Map<string, grpc.experimental.FileWatcherCertificateProvider>();

function providerFor(
  sec: Exclude<TransportSecurity, { insecure: true }>,
): grpc.experimental.FileWatcherCertificateProvider {
  checkReadable({ caFile: sec.caFile, certFile: sec.certFile, keyFile: sec.keyFile });
  const refreshIntervalMs = sec.refreshIntervalMs ?? DEFAULT_REFRESH_MS;
  const key = JSON.stringify([sec.caFile, sec.certFile, sec.keyFile, refreshIntervalMs]);
  let p = providers.get(key);
  if (!p) {
    p = new grpc.experimental.FileWatcherCertificateProvider({
      caCertificateFile: sec.caFile,
      certificateFile: sec.certFile,
      privateKeyFile: sec.keyFile,
      refreshIntervalMs,
    });
    providers.set(key, p);
  }
  return p;
}

/**
 * Credentials for a listener: mutual TLS requiring a client certificate signed by the CA (a
 * client without one fails the handshake), or plaintext with a warning naming the listener.
 */
export function serverCredentials(
  sec: TransportSecurity,
  log: SecurityLog,
  listener: string,
): grpc.ServerCredentials {
  if (sec.insecure) {
    log.warn('gRPC listener without TLS: any peer that reaches it may call it', {
      listener,
      security: 'insecure (explicitly configured)',
    });
    return grpc.ServerCredentials.createInsecure();
  }
  const provider = providerFor(sec);
  return grpc.experimental.createCertificateProviderServerCredentials(provider, provider, true);
}

/**
 * Resolves once the certificate files behind `sec` are in memory. grpc-js reads them
 * asynchronously (on libuv's thread pool) after a server binds, and until then it drops every
 * connection it accepts: a listener that says it is serving before this resolves refuses its
 * first clients whenever the pool is busy. Await it before binding. Rejects when a file cannot be
 * read or the read takes longer than `timeoutMs`. Plaintext resolves at once.
 */
export async function certificatesLoaded(
  sec: TransportSecurity,
  timeoutMs = 10_000,
): Promise<void> {
  if (sec.insecure) return;
  const provider = providerFor(sec);
  let identity: unknown;
  let ca: unknown;
  let settle: (err?: Error) => void = () => undefined;
  const done = new Promise<void>((resolve, reject) => {
    settle = (err) => (err ? reject(err) : resolve());
  });
  const check = () => {
    if (identity === null || ca === null)
      settle(
        new GrpcAuthError(
          `certificate files could not be read: ${identity === null ? `${sec.certFile} / ${sec.keyFile}` : sec.caFile}`,
          { field: identity === null ? 'certFile' : 'caFile' },
        ),
      );
    else if (identity !== undefined && ca !== undefined) settle();
  };
  const onIdentity = (update: unknown) => {
    identity = update;
    check();
  };
  const onCa = (update: unknown) => {
    ca = update;
    check();
  };
  const timer = setTimeout(
    () =>
      settle(
        new GrpcAuthError(`certificate files not read within ${timeoutMs} ms`, {
          field: 'certFile',
          path: sec.certFile,
        }),
      ),
    timeoutMs,
  );
  provider.addIdentityCertificateListener(onIdentity);
  provider.addCaCertificateListener(onCa);
  try {
    await done;
  } finally {
    clearTimeout(timer);
    provider.removeIdentityCertificateListener(onIdentity);
    provider.removeCaCertificateListener(onCa);
  }
}

/** Which server a client accepts: one SPIFFE ID, or a test of the ID its certificate proves. */
export type ExpectedServer = string | ((identity: string) => boolean);

/**
 * Credentials for a client: its own certificate, the CA, and a check that the server proves the
 * expected identity (not the host name: pods are dialled by IP). Plaintext with a warning when
 * configured so.
 */
export function channelCredentials(
  sec: TransportSecurity,
  expected: ExpectedServer,
  log?: SecurityLog,
): grpc.ChannelCredentials {
  if (sec.insecure) {
    log?.warn('gRPC client without TLS: the server is not authenticated', {
      security: 'insecure (explicitly configured)',
    });
    return grpc.credentials.createInsecure();
  }
  const provider = providerFor(sec);
  return grpc.experimental.createCertificateProviderChannelCredentials(provider, provider, {
    checkServerIdentity: (_host: string, cert: PeerCertificate) => {
      let id: string;
      try {
        id = identityOf(cert);
      } catch (err) {
        return err as Error;
      }
      const ok = typeof expected === 'string' ? id === expected : expected(id);
      return ok
        ? undefined
        : new GrpcAuthError(
            `server proved identity ${id}, expected ${typeof expected === 'string' ? expected : 'another identity'}`,
            { identity: id },
          );
    },
  });
}
