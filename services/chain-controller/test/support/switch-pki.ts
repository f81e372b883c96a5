import type { OvsTls } from '@flowline/ovs';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

function openssl(cwd: string, ...args: string[]): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/**
 * OVS-over-SSL certificates as the chart should make them (two CAs): the controller CA signs
 * only the controller's certificate and is each switch's CA cert (a switch accepts only the
 * controller); the switch CA signs one certificate per node, naming it (CN and DNS SAN
 * ovs-switch.<node>), and is the controller's CA cert.
 */
export class SwitchPki {
  private readonly cas: Record<'controller' | 'switch', { cert: string; key: string }>;

  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
    this.cas = { controller: this.ca('controller-ca'), switch: this.ca('switch-ca') };
  }

  private ca(name: string): { cert: string; key: string } {
    const key = join(this.dir, `${name}.key`);
    const cert = join(this.dir, `${name}.pem`);
    openssl(
      this.dir,
      ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'],
      ...['-days', '2', '-subj', `/O=Flowline/CN=${name}`, '-keyout', key, '-out', cert],
      ...['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=keyCertSign'],
    );
    return { cert, key };
  }

  private issue(name: string, cn: string, by: 'controller' | 'switch', peer: string): OvsTls {
    const key = join(this.dir, `${name}.key`);
    const cert = join(this.dir, `${name}.pem`);
    const ext = join(this.dir, `${name}.ext`);
    writeFileSync(
      ext,
      `subjectAltName=DNS:${cn}\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n`,
    );
    openssl(
      this.dir,
      ...['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'],
      ...['-subj', `/O=Flowline/CN=${cn}`, '-keyout', key, '-out', `${name}.csr`],
    );
    const ca = this.cas[by];
    openssl(
      this.dir,
      ...['x509', '-req', '-in', `${name}.csr`, '-CA', ca.cert, '-CAkey', ca.key],
      ...['-CAcreateserial', '-days', '2', '-extfile', ext, '-out', cert],
    );
    return { privateKey: key, certificate: cert, caCert: peer };
  }

  /** The controller's: trusts the switch CA. */
  controller(): OvsTls {
    return this.issue(
      'ovs-controller',
      'flowline-chain-controller',
      'controller',
      this.cas.switch.cert,
    );
  }

  /** Node `node`'s switch's: names ovs-switch.<node>, trusts the controller CA only. */
  switch(node: string): OvsTls {
    return this.issue(`switch-${node}`, `ovs-switch.${node}`, 'switch', this.cas.controller.cert);
  }
}
