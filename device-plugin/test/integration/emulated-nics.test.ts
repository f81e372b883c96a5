// Root: emulated NICs whose netdevs are real veth interfaces (peers in a namespace of their own),
// changed with plain `ip` commands as an operator or a failing NIC would, and the real /sys for
// hugepages. The daemon is the built process; kubelet's side is the v1beta1 test peer.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { vfAddress } from '@flowline/emulation';
import { type Env, makeEnv, waitFor } from '../harness';

const isRoot = process.getuid?.() === 0;
const tag = `${process.pid.toString(36).slice(-3)}`;
const PF0 = `fdp${tag}a`;
const PF1 = `fdp${tag}b`;
const NETNS = `flowline-dp-it-${process.pid}`;
const VF_POOL = 'flowline.io/sriov_vf';

const ip = (...args: string[]): string => execFileSync('ip', args, { encoding: 'utf8' });
const health = (env: Env): Record<string, string> =>
  Object.fromEntries((env.kubelet.devices(VF_POOL) ?? []).map((d) => [d.ID, d.health]));

let env: Env | undefined;
afterEach(async () => {
  await env?.cleanup();
  env = undefined;
  // the namespace and every veth are gone, even if a test failed half-way
  expect(existsSync(`/run/netns/${NETNS}`)).toBe(false);
  expect(existsSync(`/sys/class/net/${PF0}`)).toBe(false);
});

describe.skipIf(!isRoot)('emulated NICs on veth (skipped: needs root for veth and netns)', () => {
  it('advertises veth-backed VFs, hands out real netdevs, and follows kernel link and netdev changes', async () => {
    env = await makeEnv(
      {
        veth: true,
        netns: NETNS,
        hugepages: 'host',
        pfs: [
          { name: PF0, numVfs: 3, numaNode: 0 },
          { name: PF1, numVfs: 2, numaNode: 0 },
        ],
      },
      { pools: [{ name: 'sriov_vf', selectors: { pfNames: [PF0, PF1] }, hugepagesMb: 64 }] },
    );
    // the tree's netdevs are the kernel's: host side here, peers in the namespace
    expect(ip('-n', NETNS, '-o', 'link', 'show', `${PF0}v1`)).toContain(`${PF0}v1@`);
    expect(readFileSync(`/sys/class/net/${PF0}v1/operstate`, 'utf8').trim()).toBe('up');

    env.startDaemon();
    await waitFor('registration', () => env!.kubelet.devices(VF_POOL));
    expect(Object.values(health(env))).toEqual([
      'Healthy',
      'Healthy',
      'Healthy',
      'Healthy',
      'Healthy',
    ]);

    const res = await env.kubelet.allocate(VF_POOL, [vfAddress(0, 1), vfAddress(1, 0)]);
    const ifnames = res.containerResponses[0]!.envs.FLOWLINE_NETDEV_SRIOV_VF!.split(',');
    expect(ifnames).toEqual([`${PF0}v1`, `${PF1}v0`]);
    for (const name of ifnames) expect(existsSync(join('/sys/class/net', name))).toBe(true);

    // PF link down with the kernel's own tool: its VFs go Unhealthy, the other PF's stay Healthy
    ip('link', 'set', PF0, 'down');
    await waitFor('PF down', () =>
      [0, 1, 2].every((i) => health(env!)[vfAddress(0, i)] === 'Unhealthy'),
    );
    expect(health(env)[vfAddress(1, 0)]).toBe('Healthy');
    ip('link', 'set', PF0, 'up');
    await waitFor('PF up', () => Object.values(health(env!)).every((h) => h === 'Healthy'));

    // a VF netdev moved into another namespace, as sriov-cni moves it into a pod: the host's
    // sysfs no longer lists it, and the VF stays Healthy (the pass that saw PF0 go down again
    // saw the netdev gone too)
    const podNetns = `fldp-pod-${process.pid}`;
    ip('netns', 'add', podNetns);
    try {
      ip('link', 'set', `${PF1}v1`, 'netns', podNetns);
      expect(existsSync(join('/sys/class/net', `${PF1}v1`))).toBe(false);
      ip('link', 'set', PF0, 'down');
      await waitFor('PF down again', () =>
        [0, 1, 2].every((i) => health(env!)[vfAddress(0, i)] === 'Unhealthy'),
      );
      expect(health(env)[vfAddress(1, 1)]).toBe('Healthy');
      ip('link', 'set', PF0, 'up');
      await waitFor('PF up again', () => Object.values(health(env!)).every((h) => h === 'Healthy'));
    } finally {
      ip('netns', 'del', podNetns); // and the veth moved there with it
    }
    // a VF unbound from its driver is Unhealthy; the tool binds it back: Healthy
    env.host.unbind(vfAddress(1, 1));
    await waitFor('unbound', () => health(env!)[vfAddress(1, 1)] === 'Unhealthy');
    env.host.bind(vfAddress(1, 1), 'iavf');
    await waitFor('bound again', () => health(env!)[vfAddress(1, 1)] === 'Healthy');

    // sriov_numvfs through the tool: veths go and come with the VFs
    env.host.setNumVfs(PF0, 0);
    await waitFor('VFs gone', () => Object.keys(health(env!)).length === 2);
    expect(existsSync(`/sys/class/net/${PF0}v0`)).toBe(false);
    env.host.setNumVfs(PF0, 4);
    await waitFor('VFs back', () => Object.keys(health(env!)).length === 6);
    expect(existsSync(`/sys/class/net/${PF0}v3`)).toBe(true);
  });

  it('reads the real /sys: hugepages as a resource, mounted from the real hugetlbfs', async () => {
    const mounts = readFileSync('/proc/mounts', 'utf8');
    const meminfo = readFileSync('/proc/meminfo', 'utf8');
    const pages = Number(/HugePages_Total:\s+(\d+)/.exec(meminfo)?.[1] ?? 0);
    // A precondition, not a reason to pass quietly: tools/setup/setup.sh reserves the pages
    // (FLOWLINE_HUGEPAGES) and mounts hugetlbfs on /dev/hugepages.
    if (pages < 4 || !/ \/dev\/hugepages hugetlbfs /.test(mounts))
      throw new Error(
        `this test needs at least 4 reserved 2 MiB hugepages (HugePages_Total is ${pages}) and ` +
          'hugetlbfs mounted on /dev/hugepages: run tools/setup/setup.sh',
      );
    env = await makeEnv(
      { veth: false, pfs: [] },
      { pools: [], hugepages: { resource: true, sizes: ['2Mi'] } },
    );
    env.startDaemon(['--sysfs-root', '/sys']);
    const hp = 'flowline.io/hugepages-2Mi';
    const devices = await waitFor('hugepage resource', () => env!.kubelet.devices(hp));
    expect(devices).toHaveLength(pages);
    const res = (
      await env.kubelet.allocate(
        hp,
        devices.slice(0, 4).map((d) => d.ID),
      )
    ).containerResponses[0]!;
    expect(res.envs).toEqual({
      FLOWLINE_HUGEPAGES_DIR: '/dev/hugepages',
      FLOWLINE_HUGEPAGES_MB: '8',
    });
    // a folder of this allocation's own in the real hugetlbfs (it takes mkdir), not its root
    const folder = join('/dev/hugepages', `hugepages-2Mi-${devices[0]!.ID}`);
    try {
      expect(res.mounts).toEqual([
        { hostPath: folder, containerPath: '/dev/hugepages', readOnly: false },
      ]);
      expect(statSync(folder).mode & 0o7777).toBe(0o700);
      expect(readdirSync(folder)).toEqual([]);
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });
});
