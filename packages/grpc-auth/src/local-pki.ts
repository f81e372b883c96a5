// A small CA for one machine: `flowline up` and the tests issue the controller's, the operator's
// and each NF's certificates from it. In a cluster cert-manager (or the chart) does this job.
// Keys are EC P-256 made by the openssl command line (Debian's openssl package), written to a
// temporary folder and renamed into place, so a crash never leaves a key without its certificate.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import type { TlsFiles } from './credentials';
import { GrpcAuthError } from './errors';
import { DEFAULT_TRUST_DOMAIN, controllerId, nfId, operatorId } from './identity';

const CA_CERT = 'ca.pem';
const CA_KEY = 'ca.key';

function openssl(args: string[], cwd: string): void {
  try {
    execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    throw new GrpcAuthError(`openssl ${args[0]} failed: ${stderr || (err as Error).message}`, {
      args,
    });
  }
}

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** Makes the CA in `dir` unless it is there; returns the CA certificate's path. */
export function ensureLocalCa(dir: string, commonName = 'Flowline local CA', days = 3650): string {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const caFile = join(dir, CA_CERT);
  if (existsSync(caFile) && existsSync(join(dir, CA_KEY))) return caFile;
  const work = mkdtempSync(join(dir, '.ca-'));
  try {
    openssl(
      [
        'req',
        '-x509',
        '-new',
        ...EC_KEY,
        '-keyout',
        CA_KEY,
        '-out',
        CA_CERT,
        '-days',
        String(days),
        '-subj',
        `/O=Flowline/CN=${commonName}`,
        '-addext',
        'basicConstraints=critical,CA:TRUE,pathlen:0',
        '-addext',
        'keyUsage=critical,keyCertSign,cRLSign',
      ],
      work,
    );
    chmodSync(join(work, CA_KEY), 0o600);
    renameSync(join(work, CA_KEY), join(dir, CA_KEY));
    renameSync(join(work, CA_CERT), caFile);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return caFile;
}

export interface IssueOptions {
  /** DNS names beside the SPIFFE ID (e.g. localhost); the SPIFFE ID is what peers check. */
  dnsNames?: string[];
  days?: number;
}

/**
 * Issues `<name>.pem` and `<name>.key` in `dir` from its CA, for the SPIFFE ID `spiffeId`
 * (client and server use). Re-issuing replaces both; a server reading them picks them up.
 */
export function issueCertificate(
  dir: string,
  name: string,
  spiffeId: string,
  options: IssueOptions = {},
): TlsFiles {
  if (!/^[a-z0-9][-a-z0-9.]*$/.test(name))
    throw new GrpcAuthError(`certificate name "${name}" must be a lower-case file name`, {
      field: 'name',
    });
  if (!spiffeId.startsWith('spiffe://') || /[,\s]/.test(spiffeId))
    throw new GrpcAuthError(`"${spiffeId}" is not a SPIFFE ID`, { field: 'spiffeId' });
  const caFile = ensureLocalCa(dir);
  const work = mkdtempSync(join(dir, '.issue-'));
  try {
    const sans = [`URI:${spiffeId}`, ...(options.dnsNames ?? []).map((d) => `DNS:${d}`)];
    writeFileSync(
      join(work, 'ext.cnf'),
      [
        `subjectAltName=${sans.join(',')}`,
        'basicConstraints=critical,CA:FALSE',
        'keyUsage=critical,digitalSignature,keyEncipherment',
        'extendedKeyUsage=serverAuth,clientAuth',
        '',
      ].join('\n'),
    );
    openssl(
      [
        'req',
        '-new',
        ...EC_KEY,
        '-keyout',
        'key.pem',
        '-out',
        'req.csr',
        '-subj',
        `/O=Flowline/CN=${name}`,
      ],
      work,
    );
    openssl(
      [
        'x509',
        '-req',
        '-in',
        'req.csr',
        '-CA',
        caFile,
        '-CAkey',
        join(dir, CA_KEY),
        '-set_serial',
        `0x${randomBytes(16).toString('hex')}`,
        '-days',
        String(options.days ?? 825),
        '-extfile',
        'ext.cnf',
        '-out',
        'cert.pem',
      ],
      work,
    );
    chmodSync(join(work, 'key.pem'), 0o600);
    const certFile = join(dir, `${name}.pem`);
    const keyFile = join(dir, `${name}.key`);
    // Key first: a reader that sees the new certificate also finds its key.
    renameSync(join(work, 'key.pem'), keyFile);
    renameSync(join(work, 'cert.pem'), certFile);
    return { caFile, certFile, keyFile };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * A local CA and the certificates of one node's identities (the local node runtime, and tests
 * that run NFs and the controller as processes): issued on first use, re-issued on demand.
 */
export class LocalPki {
  constructor(
    readonly dir: string,
    readonly trustDomain = DEFAULT_TRUST_DOMAIN,
  ) {}

  controller(): TlsFiles {
    return issueCertificate(this.dir, 'controller', controllerId(this.trustDomain));
  }

  operator(): TlsFiles {
    return issueCertificate(this.dir, 'operator', operatorId(this.trustDomain));
  }

  /** The NF workload `namespace/name`'s certificate (file nf.<namespace>.<name>). */
  nf(namespace: string, name: string): TlsFiles {
    return issueCertificate(
      this.dir,
      `nf.${namespace}.${name}`,
      nfId(namespace, name, this.trustDomain),
    );
  }

  /** The flags an NF or the controller takes for these files. */
  static flags(files: TlsFiles): string[] {
    return ['--tls-ca', files.caFile, '--tls-cert', files.certFile, '--tls-key', files.keyFile];
  }
}
