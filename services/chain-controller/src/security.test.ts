import { controllerId, decide, nfId, operatorId } from '@flowline/grpc-auth';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import type { PeerCertificate } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { nfWorkloadOf } from './nf-identity';
import { chainServicePolicy, securityFromSettings } from './security';

const peer = (id: string) => ({
  sslPeerCertificate: { subjectaltname: `URI:${id}`, subject: {} } as unknown as PeerCertificate,
});
const METHODS = [
  'CreateChain',
  'UpdateChain',
  'DeleteChain',
  'GetChain',
  'ListChains',
  'WatchChains',
];

describe("the ChainService's policy", () => {
  const policy = chainServicePolicy('flowline');
  const path = (m: string) => `/flowline.chain.v1.ChainService/${m}`;

  it("opens every method to the operator's identity, and to no other", () => {
    for (const m of METHODS) {
      expect(decide(policy, path(m), peer(operatorId()), false)).toEqual({
        ok: true,
        identity: operatorId(),
      });
      for (const other of [controllerId(), nfId('default', 'fw'), operatorId('other.domain')])
        expect(decide(policy, path(m), peer(other), false)).toEqual({
          ok: false,
          details: `${other} may not call ${path(m)} (allowed: ${operatorId()})`,
        });
    }
  });

  it('health is for any authenticated peer; a method no entry names is closed', () => {
    expect(decide(policy, '/grpc.health.v1.Health/Check', peer(nfId('a', 'b')), false).ok).toBe(
      true,
    );
    expect(
      decide(policy, '/flowline.nf.v1.NetworkFunction/GetInfo', peer(operatorId()), false),
    ).toMatchObject({ ok: false });
  });
});

describe('transport settings', () => {
  const tls = { 'tls-ca': 'ca.pem', 'tls-cert': 'c.pem', 'tls-key': 'c.key' };

  it('takes the files from flags over the environment, and the trust domain', () => {
    expect(
      securityFromSettings(tls, {
        FLOWLINE_TLS_CA: 'x',
        FLOWLINE_TRUST_DOMAIN: 'example.org',
      }),
    ).toEqual({
      security: { caFile: 'ca.pem', certFile: 'c.pem', keyFile: 'c.key' },
      trustDomain: 'example.org',
    });
    expect(securityFromSettings({}, { FLOWLINE_INSECURE: '1' })).toEqual({
      security: { insecure: true },
      trustDomain: 'flowline',
    });
  });

  it('refuses neither, both, a partial set and a bad trust domain, naming the settings', () => {
    expect(() => securityFromSettings({}, {})).toThrow(
      /^tls: the ChainService is mutual TLS: give --tls-ca, --tls-cert and --tls-key \(FLOWLINE_TLS_CA, FLOWLINE_TLS_CERT, FLOWLINE_TLS_KEY\), or --insecure \(FLOWLINE_INSECURE=1\)/,
    );
    expect(() => securityFromSettings({ ...tls, insecure: true }, {})).toThrow(
      /^--insecure: TLS files \(--tls-ca, --tls-cert, --tls-key\) and insecure exclude each other/,
    );
    expect(() => securityFromSettings(tls, { FLOWLINE_INSECURE: 'true' })).toThrow(
      /^FLOWLINE_INSECURE: TLS files .* exclude each other/,
    );
    expect(() => securityFromSettings({ 'tls-ca': 'ca.pem' }, { FLOWLINE_TLS_KEY: 'k' })).toThrow(
      /^--tls-cert \(FLOWLINE_TLS_CERT\): the CA, certificate and key are given together/,
    );
    expect(() => securityFromSettings({}, { FLOWLINE_INSECURE: 'maybe' })).toThrow(
      /^FLOWLINE_INSECURE: "maybe" is not a boolean/,
    );
    expect(() =>
      securityFromSettings({ insecure: true, 'trust-domain': 'Bad/Domain' }, {}),
    ).toThrow(/^--trust-domain: "Bad\/Domain" is not a DNS name/);
  });

  it('main refuses to start with neither, naming the settings (exit 2, before any connection)', () => {
    const root = join(__dirname, '..');
    const env = { PATH: process.env.PATH ?? '' };
    const run = (...args: string[]) =>
      spawnSync(process.execPath, ['--import', 'tsx', join(root, 'src/main.ts'), ...args], {
        cwd: root,
        env,
        encoding: 'utf8',
        timeout: 30_000,
      });
    const neither = run('--ovsdb', '/nonexistent/db.sock');
    expect(neither.status).toBe(2);
    expect(JSON.parse(neither.stderr.trim())).toMatchObject({
      level: 'error',
      msg: expect.stringMatching(/^tls: the ChainService is mutual TLS: give --tls-ca/),
    });
    const both = run('--insecure', '--tls-ca', 'a', '--tls-cert', 'b', '--tls-key', 'c');
    expect(both.status).toBe(2);
    expect(both.stderr).toMatch(/--insecure: TLS files .* exclude each other/);
  });
});

describe("an NF's expected identity (nfWorkloadOf)", () => {
  it("is the pod's StatefulSet when that controls it, else the pod itself", () => {
    const sts = { apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'firewall', controller: true };
    expect(
      nfWorkloadOf({ metadata: { namespace: 'a', name: 'firewall-0', ownerReferences: [sts] } }),
    ).toEqual({ namespace: 'a', name: 'firewall' });
    expect(nfWorkloadOf({ metadata: { namespace: 'a', name: 'fw' } })).toEqual({
      namespace: 'a',
      name: 'fw',
    });
    // Not the controller, or not a StatefulSet: the pod's own name.
    for (const owner of [
      { ...sts, controller: false },
      { ...sts, kind: 'ReplicaSet' },
      { ...sts, apiVersion: 'example.com/v1' },
    ])
      expect(
        nfWorkloadOf({ metadata: { namespace: 'a', name: 'fw-0', ownerReferences: [owner] } }),
      ).toEqual({ namespace: 'a', name: 'fw-0' });
    expect(nfWorkloadOf({ metadata: { namespace: 'a' } })).toBeUndefined();
  });
});
