import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
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

  /**
   * A key and a certificate for `cn` signed by this CA (with `cn` as a DNS SAN too when
   * `san`), trusting `peerCa` for the peer (default this CA).
   */
  issue(cn: string, options: { san?: boolean; peerCa?: string } = {}): OvsTls {
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
    const ext = join(this.dir, `${cn}.ext`);
    writeFileSync(ext, options.san ? `subjectAltName=DNS:${cn}\n` : 'basicConstraints=CA:FALSE\n');
    openssl(
      'x509',
      '-req',
      '-extfile',
      ext,
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
    return { privateKey, certificate, caCert: options.peerCa ?? this.caCert };
  }
}

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}
