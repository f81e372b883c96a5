import { EAL_PREFIX_RE } from '@flowline/dpdk';
import { podFolderName } from '@flowline/ovs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { nodePaths } from './config';
import {
  POD_FILE_PREFIX,
  POD_FILE_PREFIX_MAX,
  POD_NETNS_PREFIX,
  podFilePrefix,
  podGrpcAddress,
  podLogFile,
  podNetns,
  podSocketDir,
  podStateDir,
} from './pod-names';

const paths = nodePaths('/var/run/flnode');

describe("a pod's names and places", () => {
  it('netns: the prefix, namespace and name, cut to 60 characters', () => {
    expect(podNetns('default', 'fw')).toBe('flpod-default-fw');
    const long = podNetns('a-namespace-with-a-long-name', 'and-a-pod-with-an-even-longer-name');
    expect(long).toHaveLength(60);
    expect(long.startsWith(POD_NETNS_PREFIX)).toBe(true);
    // two pods whose names differ only past the cut get two namespaces
    const other = podNetns('a-namespace-with-a-long-name', 'and-a-pod-with-an-even-longer-name-2');
    expect(other).toHaveLength(60);
    expect(other).not.toBe(long);
  });

  it("netns and EAL file prefix: a '-' in the namespace or name adds a hash, so that pod c of namespace a-b and pod b-c of namespace a do not share them", () => {
    const x = podNetns('a-b', 'c');
    const y = podNetns('a', 'b-c');
    expect(x).toMatch(/^flpod-a-b-c-[0-9a-f]{8}$/);
    expect(y).toMatch(/^flpod-a-b-c-[0-9a-f]{8}$/);
    expect(x).not.toBe(y);
    const p = podFilePrefix('a-b', 'c');
    const q = podFilePrefix('a', 'b-c');
    expect(p).toMatch(/^flpod_a_b_c_[0-9a-f]{8}$/);
    expect(q).toMatch(/^flpod_a_b_c_[0-9a-f]{8}$/);
    expect(p).not.toBe(q);
    // nor does a pod whose plain names have no '-' share one with either
    expect(podFilePrefix('a', 'b')).toBe('flpod_a_b');
    expect([p, q]).not.toContain(podFilePrefix('ab', 'c'));
  });

  it('EAL file prefix: the prefix, namespace and name, anything but [A-Za-z0-9_] as _', () => {
    expect(podFilePrefix('default', 'fw')).toBe('flpod_default_fw');
    expect(podFilePrefix('nfs', 'fw-1.a')).toMatch(/^flpod_nfs_fw_1_a_[0-9a-f]{8}$/);
    expect(podFilePrefix('nfs', 'fw-1.a').startsWith(POD_FILE_PREFIX)).toBe(true);
  });

  it('EAL file prefix of a long name: at most 56 characters (the NF adds "-<pid>", an EAL takes 64), one per pod', () => {
    const ns = 'a-namespace-with-a-long-name';
    const a = podFilePrefix(ns, 'and-a-pod-with-an-even-longer-name');
    const b = podFilePrefix(ns, 'and-a-pod-with-an-even-longer-name-2');
    for (const p of [a, b]) {
      expect(p).toHaveLength(POD_FILE_PREFIX_MAX);
      expect(p).toMatch(/^flpod_a_namespace_with_a_long_name_and_a_pod_wi_[0-9a-f]{8}$/);
      // what the NF makes of it: <prefix>-<pid>, an EAL prefix @flowline/dpdk takes
      expect(EAL_PREFIX_RE.test(`${p}-4194304`)).toBe(true);
    }
    expect(a).not.toBe(b);
    expect(podFilePrefix(ns, 'and-a-pod-with-an-even-longer-name')).toBe(a); // the same every time
  });

  it("its folder, gRPC address and log under the state dir; its sockets in the CNI plugin's folder", () => {
    expect(podStateDir(paths, 'default', 'fw')).toBe('/var/run/flnode/pods/default_fw');
    expect(podGrpcAddress(paths, 'default', 'fw')).toBe(
      'unix:///var/run/flnode/pods/default_fw/grpc.sock',
    );
    expect(podLogFile(paths, 'default', 'fw')).toBe('/var/run/flnode/logs/default_fw.log');
    expect(podSocketDir(paths, 'default', 'fw')).toBe('/var/run/flnode/sockets/default_fw');
    // A name too long for a socket path is the plugin's hashed folder, the same one.
    const name = 'x'.repeat(100);
    const folder = podFolderName(paths.sockets, {
      containerId: '',
      pod: { namespace: 'default', name },
    });
    expect(folder).not.toBe(`default_${name}`);
    expect(podSocketDir(paths, 'default', name)).toBe(join(paths.sockets, folder));
  });
});
