import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { OvsTls } from '../../src';

/**
 * A CA and certificates signed by it, made with openssl: what the flowline chart's Helm
 * template generates for OVS (one switch certificate) and the chain controller (a client one).
 */
export class TestPki {
  readonly caCert: string;
  private readonly caKey: string;

  constructor(
    readonly dir: string,
    name = 'ca',
  ) {
    mkdirSync(dir, { recursive: true });
    this.caKey = join(dir, `${name}-key.pem`);
    this.caCert = join(dir, `${name}-cert.pem`);
    openssl(
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '2',
      '-subj',
      `/CN=${name}`,
      '-keyout',
      this.caKey,
      '-out',
      this.caCert,
    );
  }

  /** A key and a certificate for `cn` signed by this CA, with the CA as the peer's trust. */
  issue(cn: string): OvsTls {
    const privateKey = join(this.dir, `${cn}-key.pem`);
    const csr = join(this.dir, `${cn}.csr`);
    const certificate = join(this.dir, `${cn}-cert.pem`);
    openssl(
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      `/CN=${cn}`,
      '-keyout',
      privateKey,
      '-out',
      csr,
    );
    openssl(
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      this.caCert,
      '-CAkey',
      this.caKey,
      '-CAcreateserial',
      '-days',
      '2',
      '-out',
      certificate,
    );
    return { privateKey, certificate, caCert: this.caCert };
  }
}

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}
