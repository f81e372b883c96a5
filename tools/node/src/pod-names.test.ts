import { EAL_PREFIX_RE } from '@flowline/dpdk';
import { podFolderName } from '@flowline/ovs';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { nodePaths } from './config';
import { removeHugepageFiles } from './hugepages';
import {
  POD_FILE_PREFIX,
  POD_FILE_PREFIX_MAX,
  POD_NETNS_MAX,
  POD_NETNS_PREFIX,
  podFilePrefix,
  podGrpcAddress,
  podLogFile,
  podNetns,
  podSocketDir,
  podStateDir,
} from './pod-names';

const paths = nodePaths('/var/run/flnode');

const sha8 = (s: string): string => createHash('sha256').update(s).digest('hex').slice(0, 8);

/** What @flowline/nf-runtime takes as eal.filePrefix (it adds "-<pid>" to the pod's). */
const NF_FILE_PREFIX_RE = /^[A-Za-z0-9_-]{1,64}$/;

/** Pods whose names start one another's, with '-', long and hashed (the reviewer's among them). */
const pods: [string, string][] = [
  ['default', 'fw'],
  ['default', 'fwseg'],
  ['default', 'fwseg1'],
  ['default', 'fw2'],
  ['default', 'fw-123'],
  ['default', 'fw-1'],
  ['default-fw', 'x'],
  ['default', 'fw-x'],
  ['a', 'b-c'],
  ['a-b', 'c'],
  ['a'.repeat(56), 'fw'],
  ['a'.repeat(45), sha8(`${'a'.repeat(56)}/fw`)],
  ['a'.repeat(60), 'fw'],
  ['a'.repeat(41), sha8(`${'a'.repeat(60)}/fw`)],
  ['a'.repeat(49), 'f'],
  ['a'.repeat(48), 'f'],
  ['a'.repeat(48), 'ff'],
];

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

  it("netns: a '-' in the namespace or name adds a hash, so that pod c of namespace a-b and pod b-c of namespace a do not share it", () => {
    const x = podNetns('a-b', 'c');
    const y = podNetns('a', 'b-c');
    expect(x).toMatch(/^flpod-a-b-c_[0-9a-f]{8}$/);
    expect(y).toMatch(/^flpod-a-b-c_[0-9a-f]{8}$/);
    expect(x).not.toBe(y);
    expect(podNetns('ab', 'c')).toBe('flpod-ab-c');
  });

  it("netns: a hashed name is never another pod's plain one (its sandbox would delete the other's netns)", () => {
    // Cut to its start plus '-' and 8 hex digits, a long pod's name was pod aecf5a87's.
    const long = podNetns('a'.repeat(56), 'fw');
    const hash = long.slice(-8);
    expect(hash).toBe(sha8(`${'a'.repeat(56)}/fw`));
    expect(long).toHaveLength(POD_NETNS_MAX);
    expect(long).toBe(`flpod-${'a'.repeat(45)}_${hash}`);
    expect(podNetns('a'.repeat(45), hash)).toBe(`flpod-${'a'.repeat(45)}-${hash}`);
    // the plain form is flpod-<ns>-<name> of [a-z0-9]; every hashed one has a '_'
    for (const [ns, n] of pods) {
      const netns = podNetns(ns, n);
      expect(netns.length).toBeLessThanOrEqual(POD_NETNS_MAX);
      if (netns !== `flpod-${ns}-${n}`) expect(netns).toMatch(/^flpod-[a-z0-9-]*_[0-9a-f]{8}$/);
    }
    expect(new Set(pods.map(([ns, n]) => podNetns(ns, n))).size).toBe(pods.length);
  });

  it('EAL file prefix: the prefix, namespace and name, each followed by _', () => {
    expect(podFilePrefix('default', 'fw')).toBe('flpod_default_fw_');
    expect(podFilePrefix('nfs', 'fw-1')).toBe('flpod_nfs_fw-1_');
    expect(podFilePrefix('a-b', 'c')).toBe('flpod_a-b_c_');
    expect(podFilePrefix('a', 'b-c')).toBe('flpod_a_b-c_');
    // not from a manifest (not a DNS label): hashed, in the characters the NF runtime takes
    expect(podFilePrefix('nfs', 'fw.a')).toMatch(/^flpod__[0-9a-f]{8}_nfs_fw_a_$/);
  });

  it("EAL file prefix: no pod's is the start of another's, so cleaning up pod fw leaves pod fwseg's hugepage files", () => {
    const prefixes = pods.map(([ns, n]) => podFilePrefix(ns, n));
    for (const [i, a] of prefixes.entries())
      for (const [j, b] of prefixes.entries()) if (i !== j) expect(b.startsWith(a)).toBe(false);
    const dir = mkdtempSync(join(tmpdir(), 'flnode-names-'));
    try {
      // DPDK's names: <prefix>map_<n> or <prefix>seg..., the NF's prefix with -<pid> or not
      for (const p of prefixes)
        for (const f of [`${p}map_0`, `${p}-41map_1`, `${p}-41seg0`])
          writeFileSync(join(dir, f), '');
      const fw = podFilePrefix('default', 'fw');
      expect(removeHugepageFiles(dir, fw)).toBe(3);
      expect(readdirSync(dir).filter((f) => f.startsWith(fw))).toEqual([]);
      expect(readdirSync(dir)).toHaveLength(3 * (prefixes.length - 1));
      // and the node's teardown still takes them all
      expect(removeHugepageFiles(dir, POD_FILE_PREFIX, 'family')).toBe(3 * (prefixes.length - 1));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("EAL file prefix: a hashed one is never another pod's plain one", () => {
    const ns = 'a'.repeat(60);
    const long = podFilePrefix(ns, 'fw');
    const hash = sha8(`${ns}/fw`);
    expect(long).toBe(`flpod__${hash}_${'a'.repeat(39)}_`);
    // cut plus '_' and the hash, it was flpod_<41 a>_<hash>: pod <hash> of namespace <41 a>'s
    const other = podFilePrefix('a'.repeat(41), hash);
    expect(other).not.toBe(long);
    expect(long.startsWith(other) || other.startsWith(long)).toBe(false);
    expect(podFilePrefix('a'.repeat(40), hash)).toBe(`flpod_${'a'.repeat(40)}_${hash}_`);
    expect(long.startsWith(podFilePrefix('a'.repeat(40), hash))).toBe(false);
  });

  it('EAL file prefix of a long name: at most 56 characters (the NF adds "-<pid>", an EAL takes 64), one per pod', () => {
    const ns = 'a-namespace-with-a-long-name';
    const a = podFilePrefix(ns, 'and-a-pod-with-an-even-longer-name');
    const b = podFilePrefix(ns, 'and-a-pod-with-an-even-longer-name-2');
    for (const p of [a, b]) {
      expect(p).toHaveLength(POD_FILE_PREFIX_MAX);
      expect(p).toMatch(/^flpod__[0-9a-f]{8}_a-namespace-with-a-long-name_and-a-pod-_$/);
      // what the NF makes of it: <prefix>-<pid>, an EAL prefix @flowline/dpdk and the NF take
      expect(EAL_PREFIX_RE.test(`${p}-4194304`)).toBe(true);
      expect(`${p}-4194304`).toMatch(NF_FILE_PREFIX_RE);
    }
    expect(a).not.toBe(b);
    expect(podFilePrefix(ns, 'and-a-pod-with-an-even-longer-name')).toBe(a); // the same every time
    for (const [n, name] of pods) {
      expect(podFilePrefix(n, name).length).toBeLessThanOrEqual(POD_FILE_PREFIX_MAX);
      expect(`${podFilePrefix(n, name)}-4194304`).toMatch(NF_FILE_PREFIX_RE);
    }
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
