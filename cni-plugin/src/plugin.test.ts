import { describe, expect, it } from 'vitest';
import { errorCode } from '../test/support/error-code';
import { parseNetConf } from './config';
import { negotiate } from './delegate';
import { parseCniArgs, readEnv } from './env';
import { invoke } from './invoke';
import { attachmentPaths, macAddress, ovsPortName } from './naming';
import { formatResult, parseResult } from './result';
import { selectVersion } from './versions';

const code = errorCode;

describe('versions', () => {
  it('takes cniVersion, else the highest common entry of cniVersions', () => {
    expect(selectVersion('1.0.0', undefined)).toBe('1.0.0');
    expect(selectVersion(undefined, ['0.3.1', '0.4.0', '1.0.0'])).toBe('1.0.0');
    expect(code(() => selectVersion('0.3.1', undefined))).toBe(1);
    expect(code(() => selectVersion(undefined, ['0.2.0']))).toBe(1);
    expect(code(() => selectVersion('one', undefined))).toBe(6);
  });
  it('negotiates down to what a delegated plugin speaks', () => {
    expect(negotiate('1.1.0', ['0.3.1', '0.4.0', '1.0.0'])).toBe('1.0.0');
    expect(negotiate('1.1.0', ['1.1.0'])).toBe('1.1.0');
    expect(negotiate('0.4.0', ['1.0.0'])).toBeUndefined();
  });
});

describe('environment and CNI_ARGS', () => {
  it('reads pod identity and refuses traversal, bad keys and half identities with code 4', () => {
    expect(
      parseCniArgs('IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=web-0.x;X=y').pod,
    ).toEqual({ namespace: 'ns', name: 'web-0.x' });
    for (const bad of [
      'K8S_POD_NAMESPACE=ns;K8S_POD_NAME=a/b',
      'K8S_POD_NAMESPACE=..;K8S_POD_NAME=a',
      'K8S_POD_NAMESPACE=ns;K8S_POD_NAME=a;K8S_POD_NAME=b',
      'a-b=1',
      'X=1',
    ])
      expect(
        code(() => parseCniArgs(bad)),
        bad,
      ).toBe(4);
  });
  it('requires per command what the spec requires', () => {
    const base = { CNI_CONTAINERID: 'abc', CNI_IFNAME: 'net1', CNI_NETNS: '/run/netns/x' };
    expect(readEnv({ ...base, CNI_COMMAND: 'ADD' }).ifname).toBe('net1');
    expect(readEnv({ CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'abc', CNI_IFNAME: 'net1' }).netns).toBe(
      '',
    );
    expect(
      code(() => readEnv({ CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'abc', CNI_IFNAME: 'net1' })),
    ).toBe(4);
    expect(code(() => readEnv({ ...base, CNI_COMMAND: 'ADD', CNI_NETNS: 'relative' }))).toBe(4);
    expect(code(() => readEnv({ ...base, CNI_COMMAND: 'ADD', CNI_IFNAME: 'x/y' }))).toBe(4);
    expect(readEnv({ CNI_COMMAND: 'STATUS' }).command).toBe('STATUS');
    expect(code(() => readEnv({ CNI_COMMAND: 'GC' }))).toBe(4);
  });
});

describe('network configuration', () => {
  const conf = {
    cniVersion: '1.1.0',
    name: 'n',
    type: 'flowline',
    socketDir: '/run/flowline/pods',
  };
  it('defaults bridge, mtu and ovsdbSocket, and unions both GC attachment keys', () => {
    const c = parseNetConf({
      ...conf,
      'cni.dev/valid-attachments': [{ containerID: 'a', ifname: 'net1' }],
      'cni.dev/attachments': [{ containerID: 'b', ifname: 'net1' }],
    });
    expect([c.bridge, c.mtu, c.ovsdbSocket]).toEqual([
      'br-flowline',
      1500,
      '/var/run/openvswitch/db.sock',
    ]);
    expect(c.validAttachments?.map((a) => a.containerID)).toEqual(['a', 'b']);
  });
  it('takes the VF from runtimeConfig.deviceID (as Multus passes it) and checks its form', () => {
    expect(parseNetConf({ ...conf, runtimeConfig: { deviceID: '0000:3B:02.7' } }).deviceID).toBe(
      '0000:3b:02.7',
    );
    // A top-level deviceID is the NAD author's: kept apart, never the VF.
    const top = parseNetConf({ ...conf, deviceID: '0000:03:02.0' });
    expect([top.deviceID, top.topLevelDeviceID]).toEqual([undefined, '0000:03:02.0']);
    const both = parseNetConf({
      ...conf,
      deviceID: '0000:03:02.0',
      runtimeConfig: { deviceID: '0000:03:02.1' },
    });
    expect([both.deviceID, both.topLevelDeviceID]).toEqual(['0000:03:02.1', undefined]);
    expect(parseNetConf(conf).deviceID).toBeUndefined();
    expect(parseNetConf(conf).sysfsRoot).toBe('/sys');
    for (const bad of ['03:02.0', '0000:03:02.8', '../../etc', 7])
      expect(
        code(() => parseNetConf({ ...conf, deviceID: bad })),
        String(bad),
      ).toBe(7);
    expect(code(() => parseNetConf({ ...conf, sysfsRoot: 'sys' }))).toBe(7);
  });
  it('takes a PCI domain of 4 to 8 hex digits (VMD: 10000:01:00.1), in any case', () => {
    // Kept in lower case, as sysfs names the device.
    for (const [given, kept] of [
      ['10000:01:00.1', '10000:01:00.1'],
      ['1000A:E1:1F.7', '1000a:e1:1f.7'],
      ['ffffffff:00:00.0', 'ffffffff:00:00.0'],
    ])
      expect(parseNetConf({ ...conf, runtimeConfig: { deviceID: given } }).deviceID).toBe(kept);
    for (const bad of ['000:03:02.0', '100000000:03:02.0', '0000:03:20.0', 'g000:03:02.0'])
      expect(
        code(() => parseNetConf({ ...conf, runtimeConfig: { deviceID: bad } })),
        bad,
      ).toBe(7);
  });
  it('names the field it refuses', () => {
    expect(code(() => parseNetConf({ ...conf, socketDir: 'rel' }))).toBe(7);
    expect(code(() => parseNetConf({ ...conf, ipMasq: true }))).toBe(2);
    expect(code(() => parseNetConf({ ...conf, ipam: { type: '../x' } }))).toBe(7);
    expect(
      code(() => parseNetConf({ ...conf, 'cni.dev/valid-attachments': [{ containerID: 1 }] })),
    ).toBe(7);
  });
});

describe('naming', () => {
  it('is stable per attachment and keeps the socket path within 107 bytes', () => {
    expect(ovsPortName('c1', 'net1')).toBe(ovsPortName('c1', 'net1'));
    expect(ovsPortName('c1', 'net1')).not.toBe(ovsPortName('c1', 'net2'));
    expect(ovsPortName('c1', 'net1')).toMatch(/^fl[0-9a-f]{12}$/);
    expect(macAddress('c1', 'net1')).toMatch(/^02(:[0-9a-f]{2}){5}$/);
    const env = { containerId: 'c1', ifname: 'net1', pod: { namespace: 'ns', name: 'p' } };
    expect(attachmentPaths({ socketDir: '/run/fl' }, env).socketPath).toBe(
      '/run/fl/ns_p/net1.sock',
    );
    const dir = `/${'d'.repeat(107 - '/ns_p/net1.sock'.length - 1)}`;
    expect(Buffer.byteLength(attachmentPaths({ socketDir: dir }, env).socketPath)).toBe(107);
    expect(code(() => attachmentPaths({ socketDir: `${dir}x` }, env))).toBe(7);
  });
});

describe('results', () => {
  it('converts between versions', () => {
    const r = parseResult({
      cniVersion: '0.4.0',
      interfaces: [
        {
          name: 'net1',
          mac: '02:00:00:00:00:01',
          sandbox: '/run/netns/x',
          socketPath: '/s/net1.sock',
          mtu: 9000,
        },
      ],
      ips: [{ version: '6', address: 'fd00::2/64', interface: 0 }],
      routes: [{ dst: '::/0', gw: 'fd00::1', priority: 5 }],
    });
    expect(formatResult(r, '0.4.0')).toEqual({
      cniVersion: '0.4.0',
      interfaces: [{ name: 'net1', mac: '02:00:00:00:00:01', sandbox: '/run/netns/x' }],
      ips: [{ version: '6', address: 'fd00::2/64', interface: 0 }],
      routes: [{ dst: '::/0', gw: 'fd00::1' }],
    });
    expect(formatResult(r, '1.1.0').interfaces).toEqual([
      {
        name: 'net1',
        mac: '02:00:00:00:00:01',
        mtu: 9000,
        sandbox: '/run/netns/x',
        socketPath: '/s/net1.sock',
      },
    ]);
    expect(code(() => parseResult({ ips: [{}] }))).toBe(6);
  });
});

describe('invoke', () => {
  it('answers VERSION and reports errors as the spec JSON with a non-zero exit', async () => {
    expect(
      await invoke({ env: { CNI_COMMAND: 'VERSION' }, stdin: '{"cniVersion":"0.4.0"}' }),
    ).toEqual({
      exitCode: 0,
      stdout: JSON.stringify({
        cniVersion: '0.4.0',
        supportedVersions: ['0.4.0', '1.0.0', '1.1.0'],
      }),
    });
    const bad = await invoke({ env: { CNI_COMMAND: 'STATUS' }, stdin: 'nope' });
    expect(bad.exitCode).toBe(1);
    expect(JSON.parse(bad.stdout)).toMatchObject({ cniVersion: '1.1.0', code: 6 });
  });
});
