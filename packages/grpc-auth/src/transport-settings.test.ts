import { parseArgs } from 'node:util';
import { describe, expect, it } from 'vitest';
import {
  TRANSPORT_FLAGS,
  TRANSPORT_SETTINGS,
  TransportSettingsError,
  readTransportValues,
  transportSettings,
  transportSettingsFrom,
} from './transport-settings';

const flagsOf = (...args: string[]) =>
  parseArgs({ args, options: TRANSPORT_FLAGS, strict: true }).values;

function errorOf(fn: () => unknown): TransportSettingsError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(TransportSettingsError);
    return err as TransportSettingsError;
  }
  throw new Error('expected a TransportSettingsError');
}

describe('the transport settings table', () => {
  it('has one flag and one variable per setting, and parseArgs takes every flag', () => {
    expect(TRANSPORT_SETTINGS.map((s) => [s.flag, s.env])).toEqual([
      ['tls-ca', 'FLOWLINE_TLS_CA'],
      ['tls-cert', 'FLOWLINE_TLS_CERT'],
      ['tls-key', 'FLOWLINE_TLS_KEY'],
      ['insecure', 'FLOWLINE_INSECURE'],
      ['trust-domain', 'FLOWLINE_TRUST_DOMAIN'],
      ['health-address', 'FLOWLINE_HEALTH_ADDRESS'],
    ]);
    expect(
      flagsOf(
        '--tls-ca',
        'ca.pem',
        '--tls-cert',
        'c.pem',
        '--tls-key',
        'c.key',
        '--insecure',
        '--trust-domain',
        'example.org',
        '--health-address',
        '0.0.0.0:8081',
      ),
    ).toEqual({
      'tls-ca': 'ca.pem',
      'tls-cert': 'c.pem',
      'tls-key': 'c.key',
      insecure: true,
      'trust-domain': 'example.org',
      'health-address': '0.0.0.0:8081',
    });
  });
});

describe('readTransportValues', () => {
  it('takes a flag over its variable, skips empty variables and says where each came from', () => {
    expect(
      readTransportValues(flagsOf('--tls-ca', 'ca.pem'), {
        FLOWLINE_TLS_CA: 'other.pem',
        FLOWLINE_TLS_CERT: 'c.pem',
        FLOWLINE_TLS_KEY: '',
        FLOWLINE_INSECURE: 'off',
      }),
    ).toEqual({
      values: { caFile: 'ca.pem', certFile: 'c.pem', insecure: false },
      origins: { caFile: '--tls-ca', certFile: 'FLOWLINE_TLS_CERT', insecure: 'FLOWLINE_INSECURE' },
    });
  });

  it('reads a boolean variable in any of its spellings, and refuses anything else', () => {
    for (const yes of ['1', 'true', 'YES', 'on'])
      expect(readTransportValues({}, { FLOWLINE_INSECURE: yes }).values.insecure).toBe(true);
    for (const no of ['0', 'false', 'No', 'off'])
      expect(readTransportValues({}, { FLOWLINE_INSECURE: no }).values.insecure).toBe(false);
    const e = errorOf(() => readTransportValues({}, { FLOWLINE_INSECURE: 'maybe' }));
    expect(e.problem).toBe('not-boolean');
    expect(e.message).toBe('FLOWLINE_INSECURE: "maybe" is not a boolean (1/0, true/false)');
  });
});

describe('transportSettings', () => {
  const files = { caFile: 'ca.pem', certFile: 'c.pem', keyFile: 'c.key' };

  it('gives mutual TLS from the three files, plaintext from insecure, and neither from nothing', () => {
    expect(transportSettings(files)).toEqual({ security: files, trustDomain: 'flowline' });
    expect(transportSettings({ insecure: true, trustDomain: 'example.org' })).toEqual({
      security: { insecure: true },
      trustDomain: 'example.org',
    });
    expect(transportSettings({ insecure: false })).toEqual({ trustDomain: 'flowline' });
    expect(transportSettings({ insecure: true, healthAddress: '[::1]:8081' })).toEqual({
      security: { insecure: true },
      trustDomain: 'flowline',
      healthAddress: '[::1]:8081',
    });
  });

  it('names the one missing file by its flag and variable', () => {
    const e = errorOf(() =>
      transportSettings({ caFile: 'ca.pem', keyFile: 'k' }, { caFile: '--tls-ca' }),
    );
    expect(e.problem).toBe('partial');
    expect(e.setting.key).toBe('certFile');
    expect(e.message).toBe(
      '--tls-cert (FLOWLINE_TLS_CERT): the CA, certificate and key are given together',
    );
    // A caller that knows where the set was given (a config file's tls section) names it.
    expect(
      errorOf(() => transportSettings({ caFile: 'ca.pem' }, { certFile: '/etc/nf.yaml' })).message,
    ).toBe('/etc/nf.yaml: the CA, certificate and key are given together');
  });

  it('refuses the files together with insecure, naming where each was set', () => {
    const e = errorOf(() =>
      transportSettings(
        { ...files, insecure: true },
        {
          caFile: '--tls-ca',
          certFile: 'FLOWLINE_TLS_CERT',
          keyFile: '/etc/nf.yaml',
          insecure: '--insecure',
        },
      ),
    );
    expect(e.problem).toBe('conflict');
    expect(e.setting.key).toBe('insecure');
    expect(e.origin).toBe('--insecure');
    expect(e.message).toBe(
      '--insecure: TLS files (--tls-ca, FLOWLINE_TLS_CERT, /etc/nf.yaml) and insecure exclude each other: give the certificate files or insecure, not both',
    );
  });

  it('refuses a trust domain that is no DNS name and a health address that is not host:port', () => {
    const td = errorOf(() =>
      transportSettings(
        { insecure: true, trustDomain: 'Bad/Domain' },
        { trustDomain: '--trust-domain' },
      ),
    );
    expect([td.problem, td.message]).toEqual([
      'trust-domain',
      '--trust-domain: "Bad/Domain" is not a DNS name (the SPIFFE trust domain)',
    ]);
    for (const bad of ['nowhere', ':8081', 'a b:1', '[::1]', 'host:123456'])
      expect(
        errorOf(() =>
          transportSettings({ healthAddress: bad }, { healthAddress: 'FLOWLINE_HEALTH_ADDRESS' }),
        ).message,
      ).toBe(`FLOWLINE_HEALTH_ADDRESS: "${bad}" must be host:port`);
    expect(
      errorOf(() =>
        transportSettings(
          { healthAddress: 'host:65536' },
          { healthAddress: 'FLOWLINE_HEALTH_ADDRESS' },
        ),
      ).message,
    ).toBe('FLOWLINE_HEALTH_ADDRESS: "host:65536": the port must be 0..65535');
    for (const good of ['0.0.0.0:8081', 'localhost:1', '[fd00::1]:8081', 'h:65535'])
      expect(transportSettings({ healthAddress: good }).healthAddress).toBe(good);
  });
});

describe('transportSettingsFrom', () => {
  it('reads flags and variables, then checks them', () => {
    expect(
      transportSettingsFrom(flagsOf('--tls-ca', 'ca.pem', '--tls-cert', 'c.pem'), {
        FLOWLINE_TLS_KEY: 'c.key',
        FLOWLINE_TRUST_DOMAIN: 'example.org',
        FLOWLINE_HEALTH_ADDRESS: '0.0.0.0:8081',
      }),
    ).toEqual({
      security: { caFile: 'ca.pem', certFile: 'c.pem', keyFile: 'c.key' },
      trustDomain: 'example.org',
      healthAddress: '0.0.0.0:8081',
    });
    expect(
      errorOf(() =>
        transportSettingsFrom(flagsOf('--insecure'), {
          FLOWLINE_TLS_CA: 'a',
          FLOWLINE_TLS_CERT: 'b',
          FLOWLINE_TLS_KEY: 'c',
        }),
      ).message,
    ).toMatch(
      /^--insecure: TLS files \(FLOWLINE_TLS_CA, FLOWLINE_TLS_CERT, FLOWLINE_TLS_KEY\) and insecure exclude each other/,
    );
  });
});
