import { describe, expect, it } from 'vitest';
import { errorCode } from '../test/support/error-code';
import { deviceInfoErrors } from '../test/support/device-info-schema';
import { runtimeArgs } from '../test/support/runtime-args';
import { parseNetConf } from './config';
import { defaultDeviceInfoFile, deviceInfoFileProblem, vhostUserDeviceInfo } from './device-info';
import { parseCniArgs, readEnv } from './env';
import { attachmentPaths, folderName, HASHED_FOLDER, hashedFolderName } from './naming';

const ID64 = 'f'.repeat(8) + '0123456789abcdef'.repeat(3) + '01234567';

const code = errorCode;

describe('CNI_ARGS as real runtimes send them', () => {
  for (const { runtime, args, pod } of runtimeArgs(ID64))
    it(`${runtime}: accepted, pod identity ${pod ? `${pod.namespace}/${pod.name}` : 'none'}`, () => {
      expect(ID64).toHaveLength(64);
      const parsed = parseCniArgs(args);
      expect(parsed.pod).toEqual(pod);
      const env = readEnv({
        CNI_COMMAND: 'ADD',
        CNI_CONTAINERID: ID64,
        CNI_IFNAME: 'eth0',
        CNI_NETNS: '/run/netns/x',
        CNI_ARGS: args,
      });
      expect(env.pod).toEqual(pod);
    });

  it("keeps podman's container name for logs only, never as a folder", () => {
    const p = parseCniArgs('IgnoreUnknown=1;K8S_POD_NAME=Web_Server.1');
    expect(p).toEqual({
      args: { IgnoreUnknown: '1', K8S_POD_NAME: 'Web_Server.1' },
      runtimeName: 'Web_Server.1',
    });
    expect(parseCniArgs('IgnoreUnknown=1;K8S_POD_NAME=../x').runtimeName).toBeUndefined();
  });

  it('refuses for ADD what is unsafe or ambiguous: traversal, conflicting pod keys, unknown keys', () => {
    for (const bad of [
      'IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=../../etc',
      'IgnoreUnknown=1;K8S_POD_NAMESPACE=../x;K8S_POD_NAME=a',
      'IgnoreUnknown=1;K8S_POD_NAMESPACE=a;K8S_POD_NAME=b;K8S_POD_NAMESPACE=c',
      'K8S_POD_NAME=a;IP=10.0.0.1',
      'noequals',
    ]) {
      const env = {
        CNI_CONTAINERID: ID64,
        CNI_IFNAME: 'eth0',
        CNI_NETNS: '/run/netns/x',
        CNI_ARGS: bad,
      };
      expect(
        code(() => readEnv({ ...env, CNI_COMMAND: 'ADD' })),
        bad,
      ).toBe(4);
      expect(
        code(() => readEnv({ ...env, CNI_COMMAND: 'CHECK' })),
        bad,
      ).toBe(4);
      // DEL never refuses for CNI_ARGS: it cleans up by the plugin's record and the container ID.
      const del = readEnv({ ...env, CNI_COMMAND: 'DEL' });
      expect(del.ignored, bad).toContain('CNI_ARGS');
      expect(del.pod).toBeUndefined();
    }
  });

  it('DEL with a container ID or interface ADD would refuse is accepted (nothing to clean up)', () => {
    const del = readEnv({ CNI_COMMAND: 'DEL', CNI_CONTAINERID: '../x', CNI_IFNAME: 'eth0' });
    expect(del.ignored).toContain('CNI_CONTAINERID');
    expect(code(() => readEnv({ CNI_COMMAND: 'DEL', CNI_IFNAME: 'eth0' }))).toBe(4);
  });
});

describe('pod folder names always fit the unix socket limit', () => {
  const pod = { namespace: 'default', name: 'web-0' };
  it('keeps the readable name while a 15-byte interface socket fits, else a stable hash', () => {
    // Readable: socketDir + "/" + name + "/" + 15 + ".sock" <= 107.
    const fits = `/${'d'.repeat(107 - 1 - ID64.length - 1 - 15 - 5 - 1)}`;
    expect(folderName(fits, { containerId: ID64 })).toBe(ID64);
    const longest = attachmentPaths(
      { socketDir: fits },
      { containerId: ID64, ifname: 'a'.repeat(15) },
    );
    expect(Buffer.byteLength(longest.socketPath)).toBe(107);
    const over = `${fits}x`;
    const hashed = folderName(over, { containerId: ID64 });
    expect(hashed).toMatch(HASHED_FOLDER);
    expect(hashed).toBe(hashedFolderName(ID64));
    expect(folderName(over, { containerId: ID64 })).toBe(hashed);
    expect(folderName(over, { containerId: `${ID64.slice(0, 63)}0` })).not.toBe(hashed);
    // Every interface of the pod shares the folder.
    expect(
      attachmentPaths({ socketDir: over }, { containerId: ID64, ifname: 'eth0' }).folderName,
    ).toBe(hashed);
  });
  it('gives 64-hex container IDs a folder that fits under the usual socketDirs', () => {
    for (const socketDir of [
      '/run/flowline/vhost',
      '/var/run/flowline/vhost',
      '/var/lib/kubelet/plugins/flowline/vhost-sockets',
    ]) {
      for (const id of [{ containerId: ID64 }, { containerId: ID64, pod }]) {
        const p = attachmentPaths({ socketDir }, { ...id, ifname: 'a'.repeat(15) });
        expect(Buffer.byteLength(p.socketPath)).toBeLessThanOrEqual(107);
      }
    }
    expect(folderName('/run/flowline/vhost', { containerId: ID64 })).toBe(ID64);
    expect(folderName('/var/run/flowline/vhost', { containerId: ID64 })).toMatch(HASHED_FOLDER);
    expect(folderName('/var/run/flowline/vhost', { containerId: ID64, pod })).toBe('default_web-0');
  });
  it('refuses (code 7) only a socketDir too long for the hashed name too', () => {
    const dir = `/${'d'.repeat(107 - 1 - 17 - 1 - 4 - 5 - 1)}`;
    expect(
      Buffer.byteLength(
        attachmentPaths({ socketDir: dir }, { containerId: ID64, ifname: 'eth0' }).socketPath,
      ),
    ).toBe(107);
    expect(
      code(() => attachmentPaths({ socketDir: `${dir}x` }, { containerId: ID64, ifname: 'eth0' })),
    ).toBe(7);
  });
});

describe('NPWG device-info (Device Information Spec v1.1.0)', () => {
  it('writes a vhost-user device-info the spec schema accepts, mode server', () => {
    const info = vhostUserDeviceInfo('/run/flowline/vhost/default_web-0/net1.sock');
    expect(deviceInfoErrors(info)).toEqual([]);
    expect(info).toEqual({
      type: 'vhost-user',
      version: '1.1.0',
      'vhost-user': { mode: 'server', path: '/run/flowline/vhost/default_web-0/net1.sock' },
    });
    // The schema is able to refuse: what the spec does not allow fails it.
    expect(deviceInfoErrors({ ...info, 'vhost-user': { mode: 'both', path: '/x' } })).not.toEqual(
      [],
    );
    expect(deviceInfoErrors({ type: 'vhost-user', version: '1.1.0' })).not.toEqual([]);
    expect(deviceInfoErrors({ ...info, version: 1 })).not.toEqual([]);
  });
  it("names files as Multus does and accepts a CNIDeviceInfoFile only in the spec's folder", () => {
    const dir = '/var/run/k8s.cni.cncf.io/devinfo/cni';
    expect(defaultDeviceInfoFile(dir, 'flowline', ID64, 'net1')).toBe(
      `${dir}/flowline-${ID64}_net1`,
    );
    expect(deviceInfoFileProblem(`${dir}/x`, dir)).toBeUndefined();
    for (const bad of [`${dir}/../x`, '/etc/passwd', `${dir}/.x`, 'rel', `${dir}/a/b`])
      expect(deviceInfoFileProblem(bad, dir), bad).toBeDefined();
    const conf = { cniVersion: '1.0.0', name: 'n', type: 'flowline', socketDir: '/run/fl' };
    expect(
      parseNetConf({ ...conf, runtimeConfig: { CNIDeviceInfoFile: `${dir}/m` } }).deviceInfoFile,
    ).toBe(`${dir}/m`);
    expect(
      parseNetConf({ ...conf, runtimeConfig: { CNIDeviceInfoFile: '/etc/shadow' } })
        .deviceInfoFileProblem,
    ).toContain('/etc/shadow');
  });
});
