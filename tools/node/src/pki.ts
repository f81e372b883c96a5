// The node's certificates (issue 16): `flowline up` makes a CA under the state dir and issues the
// chain controller's and the operator's certificates from it; each pod gets its NF certificate
// when it starts. Every gRPC listener on the node is then mutual TLS, and the CLI, which runs as
// the operator, finds its certificate here without flags.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { LocalPki, type TlsFiles, type TransportSecurity } from '@flowline/grpc-auth';

export const pkiDir = (stateDir: string): string => join(stateDir, 'pki');

export const nodePki = (stateDir: string, trustDomain?: string): LocalPki =>
  new LocalPki(pkiDir(stateDir), trustDomain);

/** Where the operator's certificate of a node that `flowline up` made is (what the CLI presents). */
export function operatorTlsFiles(stateDir: string): TlsFiles {
  const dir = pkiDir(stateDir);
  return {
    caFile: join(dir, 'ca.pem'),
    certFile: join(dir, 'operator.pem'),
    keyFile: join(dir, 'operator.key'),
  };
}

export function removePodCertificate(stateDir: string, namespace: string, name: string): void {
  for (const ext of ['pem', 'key'])
    rmSync(join(pkiDir(stateDir), `nf.${namespace}.${name}.${ext}`), { force: true });
}

/** The environment every Flowline process reads its transport security from. */
export function securityEnv(sec: TransportSecurity, trustDomain: string): Record<string, string> {
  if (sec.insecure) return { FLOWLINE_INSECURE: '1', FLOWLINE_TRUST_DOMAIN: trustDomain };
  return {
    FLOWLINE_TLS_CA: sec.caFile,
    FLOWLINE_TLS_CERT: sec.certFile,
    FLOWLINE_TLS_KEY: sec.keyFile,
    FLOWLINE_TRUST_DOMAIN: trustDomain,
  };
}
