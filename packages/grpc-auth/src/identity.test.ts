import type { PeerCertificate } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { anyAuthenticated, anyOfTrustDomain, decide, onlyIdentities } from './authorize';
import { transportSecurityFromEnv } from './credentials';
import { controllerId, identityOf, nfId, operatorId, parseIdentity } from './identity';

const cert = (subjectaltname: string, CN = 'x'): PeerCertificate =>
  ({ subjectaltname, subject: { CN } }) as unknown as PeerCertificate;

describe('identities', () => {
  it('names each role and parses it back', () => {
    expect(controllerId()).toBe('spiffe://flowline/flowline/controller');
    expect(operatorId('corp.example')).toBe('spiffe://corp.example/flowline/operator');
    expect(nfId('tenant-a', 'fw-0')).toBe('spiffe://flowline/ns/tenant-a/nf/fw-0');
    expect(parseIdentity(nfId('tenant-a', 'fw-0'))).toEqual({
      trustDomain: 'flowline',
      role: 'nf',
      namespace: 'tenant-a',
      name: 'fw-0',
    });
    expect(parseIdentity(controllerId())).toEqual({ trustDomain: 'flowline', role: 'controller' });
    expect(parseIdentity('spiffe://flowline/ns/a/sa/b')).toBeUndefined();
    expect(parseIdentity('spiffe://flowline/ns/a/nf/b/c')).toBeUndefined();
  });

  it('refuses names that could smuggle a path', () => {
    expect(() => nfId('a/nf/b', 'c')).toThrow(/namespace "a\/nf\/b"/);
    expect(() => nfId('a', '..')).toThrow(/name "\.\."/);
    expect(() => controllerId('UPPER')).toThrow(/trust domain/);
  });

  it('reads the one SPIFFE URI SAN, or a spiffe:// CN, and nothing else', () => {
    expect(identityOf(cert('DNS:localhost, URI:spiffe://flowline/flowline/operator'))).toBe(
      'spiffe://flowline/flowline/operator',
    );
    expect(identityOf(cert('', 'spiffe://flowline/flowline/controller'))).toBe(
      'spiffe://flowline/flowline/controller',
    );
    expect(() => identityOf(cert('URI:spiffe://a/x, URI:spiffe://a/y'))).toThrow(/2 SPIFFE IDs/);
    expect(() => identityOf(cert('DNS:localhost', 'localhost'))).toThrow(/no SPIFFE ID/);
    // A URI SAN wins over a CN: a CN cannot override what the SAN says.
    expect(
      identityOf(cert('URI:spiffe://flowline/ns/a/nf/b', 'spiffe://flowline/flowline/controller')),
    ).toBe('spiffe://flowline/ns/a/nf/b');
  });

  it('never reads the CN of a certificate with URI SANs, and reads quoted SAN values whole', () => {
    const controller = 'spiffe://flowline/flowline/controller';
    // URI SANs, none a SPIFFE ID as spelt: the CN is not a fallback (a CA may constrain URIs only).
    expect(() => identityOf(cert('URI:https://example.com/x', controller))).toThrow(
      /URI SANs but no SPIFFE ID/,
    );
    expect(() => identityOf(cert('URI:SPIFFE://flowline/ns/t/nf/x', controller))).toThrow(
      /not spelt spiffe:\/\//,
    );
    // Node quotes a value with a comma: read whole, it is one (odd) SAN, not two, and the CN stays
    // unread; a second SPIFFE ID hidden in quotes still counts.
    expect(() => identityOf(cert('URI:"https://e.com/a,b"', controller))).toThrow(
      /URI SANs but no SPIFFE ID/,
    );
    expect(() => identityOf(cert('URI:spiffe://a/x, URI:"spiffe://a/y,z"', controller))).toThrow(
      /2 SPIFFE IDs/,
    );
    expect(
      identityOf(cert('DNS:"a,b", URI:spiffe://flowline/flowline/operator, IP Address:10.0.0.1')),
    ).toBe('spiffe://flowline/flowline/operator');
  });
});

describe('decide', () => {
  const policy = {
    '/s.S/Config': onlyIdentities(controllerId(), operatorId()),
    '/s.S/*': anyAuthenticated,
  };
  const peer = (id: string) => ({ sslPeerCertificate: cert(`URI:${id}`) });

  it('lets the named identities configure and any authenticated peer read', () => {
    expect(decide(policy, '/s.S/Config', peer(controllerId()), false)).toEqual({
      ok: true,
      identity: controllerId(),
    });
    expect(decide(policy, '/s.S/Read', peer(nfId('a', 'b')), false).ok).toBe(true);
  });

  it("a trust domain's readers are its own identities only (a shared or federated CA bundle)", () => {
    const readers = { '/s.S/*': anyOfTrustDomain('flowline') };
    expect(decide(readers, '/s.S/Read', peer(nfId('a', 'b')), false).ok).toBe(true);
    expect(decide(readers, '/s.S/Read', peer('spiffe://other.example/ns/a/nf/b'), false)).toEqual({
      ok: false,
      details:
        'spiffe://other.example/ns/a/nf/b may not call /s.S/Read (allowed: any identity of trust domain flowline)',
    });
    // a domain that merely starts with the name is another domain
    expect(decide(readers, '/s.S/Read', peer('spiffe://flowline.evil/ns/a/nf/b'), false).ok).toBe(
      false,
    );
  });

  it('names the identity and the method when it refuses', () => {
    const d = decide(policy, '/s.S/Config', peer(nfId('a', 'b')), false);
    expect(d).toEqual({
      ok: false,
      details: `spiffe://flowline/ns/a/nf/b may not call /s.S/Config (allowed: ${controllerId()}, ${operatorId()})`,
    });
    expect(decide(policy, '/other.O/X', peer(controllerId()), false)).toEqual({
      ok: false,
      details: `${controllerId()} may not call /other.O/X (no policy opens it)`,
    });
    expect(
      decide(policy, '/s.S/Read', { sslPeerCertificate: {} as PeerCertificate }, false),
    ).toEqual({
      ok: false,
      details: '/s.S/Read: no client certificate',
    });
  });

  it('checks nothing on a listener configured insecure', () => {
    expect(decide(policy, '/other.O/X', null, true)).toEqual({ ok: true });
  });
});

describe('transportSecurityFromEnv', () => {
  it('takes the three files together, or insecure, or nothing', () => {
    expect(transportSecurityFromEnv({})).toBeUndefined();
    expect(transportSecurityFromEnv({ FLOWLINE_INSECURE: '1' })).toEqual({ insecure: true });
    expect(
      transportSecurityFromEnv({
        FLOWLINE_TLS_CA: 'a',
        FLOWLINE_TLS_CERT: 'b',
        FLOWLINE_TLS_KEY: 'c',
      }),
    ).toEqual({ caFile: 'a', certFile: 'b', keyFile: 'c' });
    expect(() =>
      transportSecurityFromEnv({ FLOWLINE_TLS_CA: 'a', FLOWLINE_TLS_CERT: 'b' }),
    ).toThrow(/FLOWLINE_TLS_KEY|together/);
  });
});
