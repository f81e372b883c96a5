import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigError, loadConfig, transportSecurityOf } from './index';

const nfSchema = z.object({ defaultAction: z.enum(['permit', 'deny']).default('deny') });
const files: Record<string, string> = {
  '/etc/fw.yaml':
    'name: fw-file\ngrpcAddress: 0.0.0.0:6000\neal:\n  memoryMb: 512\nnf:\n  defaultAction: permit\n',
  '/etc/bad.yaml': 'eal:\n  memoryMb: 2\n',
  '/etc/badnf.json': '{"nf": {"defaultAction": "maybe"}}',
  '/etc/list.yaml': '- a\n- b\n',
};
const readFile = (p: string): string => {
  const text = files[p];
  if (text === undefined) throw new Error(`ENOENT: ${p}`);
  return text;
};
const load = (argv: string[] = [], env: NodeJS.ProcessEnv = {}) =>
  loadConfig({ kind: 'firewall', nfSchema, argv, env, readFile });

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('has working defaults, with the file prefix derived from the name', () => {
    const c = load([], { POD_NAME: 'fw-0' });
    expect(c.runtime).toMatchObject({
      name: 'fw-0',
      grpcAddress: '0.0.0.0:50051',
      metricsPort: 9464,
      eal: { lcores: '0,1', memoryMb: 256, filePrefix: 'fw-0' },
    });
    expect(c.nf).toEqual({ defaultAction: 'deny' });
    expect(c.sources.name).toBe('env');
    expect(c.sources.grpcAddress).toBe('default');
  });

  it('layers file < env < flags', () => {
    const c = load(['--config', '/etc/fw.yaml', '--grpc-address', 'unix:///run/fw.sock'], {
      FLOWLINE_GRPC_ADDRESS: '127.0.0.1:7000',
      FLOWLINE_HUGEPAGES_MB: '1024',
    });
    expect(c.runtime.name).toBe('fw-file');
    expect(c.runtime.grpcAddress).toBe('unix:///run/fw.sock');
    expect(c.runtime.eal.memoryMb).toBe(1024);
    expect(c.nf.defaultAction).toBe('permit');
    expect(c.sources).toMatchObject({
      name: 'file',
      grpcAddress: 'flag',
      'eal.memoryMb': 'env',
      'eal.lcores': 'default',
    });
  });

  it('takes explicit ports from repeated --port flags', () => {
    const c = load([
      '--port',
      'name=in,devargs=net_ring_a,nodeaction=r0:0:CREATE',
      '--port',
      'name=out,devargs=net_null0',
    ]);
    expect(c.runtime.ports).toEqual([
      { name: 'in', devargs: 'net_ring_a,nodeaction=r0:0:CREATE' },
      { name: 'out', devargs: 'net_null0' },
    ]);
  });

  it('names the field and the file for a bad value in the file', () => {
    const err = configError(() => load(['--config', '/etc/bad.yaml']));
    expect(err.field).toBe('eal.memoryMb');
    expect(err.message).toMatch(/eal\.memoryMb \(from \/etc\/bad\.yaml\)/);
  });

  it('names the variable for a bad environment value', () => {
    expect(configError(() => load([], { FLOWLINE_HUGEPAGES_MB: 'lots' })).message).toMatch(
      /FLOWLINE_HUGEPAGES_MB.*"lots" is not an integer/,
    );
    expect(configError(() => load([], { FLOWLINE_LCORES: 'zero' })).message).toMatch(
      /eal\.lcores \(from FLOWLINE_LCORES\)/,
    );
    expect(configError(() => load([], { FLOWLINE_NO_HUGE: 'perhaps' })).field).toBe('eal.noHuge');
  });

  it('names the flag for a bad flag', () => {
    expect(configError(() => load(['--metrics-port', 'x'])).message).toMatch(/--metrics-port/);
    expect(configError(() => load(['--grpc-address', 'nowhere'])).message).toMatch(
      /grpcAddress \(from --grpc-address\)/,
    );
    expect(configError(() => load(['--port', 'net1'])).message).toMatch(
      /name=<ifname>,devargs=<devargs>/,
    );
    expect(configError(() => load(['--frobnicate'])).field).toBe('argv');
  });

  it('validates the NF section with its own schema, naming nf.<field>', () => {
    expect(configError(() => load(['--config', '/etc/badnf.json'])).field).toBe('nf.defaultAction');
  });

  it('refuses an unreadable or non-mapping file', () => {
    expect(configError(() => load(['--config', '/etc/none.yaml'])).message).toMatch(
      /cannot read \/etc\/none\.yaml/,
    );
    expect(configError(() => load(['--config', '/etc/list.yaml'])).message).toMatch(/mapping/);
  });

  it("bounds eal.lcores by DPDK's RTE_MAX_LCORE (128) and refuses backward ranges", () => {
    // Expanded core by core, a range to 2^32-1 would loop 4.3 billion times.
    const huge = configError(() => load([], { FLOWLINE_LCORES: '0-4294967295' }));
    expect(huge.field).toBe('eal.lcores');
    expect(huge.message).toBe(
      "eal.lcores (from FLOWLINE_LCORES): core 4294967295 is past DPDK's limit: lcores are 0..127 (RTE_MAX_LCORE 128)",
    );
    expect(configError(() => load(['--lcores', '0,128'])).message).toMatch(
      /^eal\.lcores \(from --lcores\): core 128 is past/,
    );
    expect(configError(() => load(['--lcores', '0,3-1'])).message).toMatch(
      /eal\.lcores .*range "3-1" runs backwards/,
    );
    expect(load(['--lcores', '0-127']).runtime.eal.lcores).toBe('0-127');
  });

  it('bounds the TCP port of grpcAddress and healthAddress to 0..65535', () => {
    for (const bad of ['0.0.0.0:65536', '[::1]:99999', 'localhost:70000']) {
      const e = configError(() => load(['--grpc-address', bad]));
      expect([e.field, e.message]).toEqual([
        'grpcAddress',
        'grpcAddress (from --grpc-address): the port must be 0..65535',
      ]);
    }
    const health = configError(() => load([], { FLOWLINE_HEALTH_ADDRESS: '0.0.0.0:99999' }));
    expect([health.field, health.message]).toEqual([
      'healthAddress',
      'healthAddress (from FLOWLINE_HEALTH_ADDRESS): the port must be 0..65535',
    ]);
    expect(load(['--grpc-address', '[::1]:65535']).runtime.grpcAddress).toBe('[::1]:65535');
    expect(load(['--grpc-address', 'unix:///run/fw:99999']).runtime.grpcAddress).toBe(
      'unix:///run/fw:99999',
    );
    expect(load(['--health-address', '0.0.0.0:0']).runtime.healthAddress).toBe('0.0.0.0:0');
  });

  it('turns metrics off with "off"', () => {
    expect(load([], { FLOWLINE_METRICS_PORT: 'off' }).runtime.metricsPort).toBe(false);
  });
});

describe('transport security settings', () => {
  it('takes the three TLS files from flags or the environment', () => {
    const c = load(['--tls-ca', '/pki/ca.pem', '--tls-cert', '/pki/fw.pem'], {
      FLOWLINE_TLS_KEY: '/pki/fw.key',
    });
    expect(transportSecurityOf(c.runtime)).toEqual({
      caFile: '/pki/ca.pem',
      certFile: '/pki/fw.pem',
      keyFile: '/pki/fw.key',
    });
    expect(c.sources['tls.keyFile']).toBe('env');
  });

  it('names the missing file when only some are given', () => {
    const e = configError(() => load(['--tls-ca', '/pki/ca.pem', '--tls-cert', '/pki/fw.pem']));
    expect(e.field).toBe('tls.keyFile');
  });

  it('refuses TLS files and insecure together, naming insecure', () => {
    const e = configError(() =>
      load(['--insecure'], {
        FLOWLINE_TLS_CA: 'a',
        FLOWLINE_TLS_CERT: 'b',
        FLOWLINE_TLS_KEY: 'c',
      }),
    );
    expect(e.field).toBe('insecure');
    expect(e.message).toMatch(/exclude each other/);
  });

  it('is plaintext only when asked, and refuses to guess when nothing is given', () => {
    expect(transportSecurityOf(load(['--insecure']).runtime)).toEqual({ insecure: true });
    expect(transportSecurityOf(load([], { FLOWLINE_INSECURE: '1' }).runtime)).toEqual({
      insecure: true,
    });
    const e = configError(() => transportSecurityOf(load().runtime));
    expect(e.field).toBe('tls');
    expect(e.message).toMatch(/--tls-ca.*or insecure: true/);
  });

  it('checks the trust domain and the health address', () => {
    expect(configError(() => load(['--trust-domain', 'Not A Domain'])).field).toBe('trustDomain');
    expect(configError(() => load(['--health-address', 'nowhere'])).field).toBe('healthAddress');
    expect(load(['--health-address', '0.0.0.0:8081']).runtime.healthAddress).toBe('0.0.0.0:8081');
  });
});
