// The real daemon process driven by a kubelet-side v1beta1 peer, on a generated sysfs tree.
import * as grpc from '@grpc/grpc-js';
import { devicePluginV1beta1 as dp } from '@flowline/proto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { vfAddress } from '@flowline/emulation';
import { CLI, type Env, makeEnv, waitFor } from './harness';

const VF_POOL = 'flowline.io/sriov_vf';
const VFIO_POOL = 'flowline.io/vfio';
const HP_POOL = 'flowline.io/hugepages-2Mi';

// hugepages.resource turns the hugetlbfs mount on: its per-allocation folders go here, not into
// the machine's /dev/hugepages.
const HUGE_DIR = mkdtempSync(join(tmpdir(), 'fl-dp-hugetlbfs-'));

const CONFIG = {
  pools: [
    { name: 'sriov_vf', selectors: { pfNames: ['ens1f0', 'ens1f1'] }, hugepagesMb: 256 },
    {
      name: 'vfio',
      deviceType: 'vfio-pci',
      selectors: { vendors: ['8086'], drivers: ['vfio-pci'] },
      cdi: true,
    },
  ],
  hugepages: { resource: true, hostPath: HUGE_DIR },
};

const SPEC = {
  veth: false,
  hugepages: 4,
  pfs: [
    { name: 'ens1f0', numVfs: 4, numaNode: 0 },
    { name: 'ens1f1', numVfs: 4, numaNode: 1 },
    { name: 'ens2f0', numVfs: 2, numaNode: 1, vfDriver: 'vfio-pci' },
  ],
};

const health = (env: Env, resource: string): Record<string, string> =>
  Object.fromEntries((env.kubelet.devices(resource) ?? []).map((d) => [d.ID, d.health]));

async function registered(env: Env, resources: string[]): Promise<void> {
  await waitFor(`registration of ${resources.join(', ')}`, () =>
    resources.every((r) => env.kubelet.connections.has(r) && env.kubelet.devices(r) !== undefined),
  );
}

let env: Env | undefined;

beforeAll(() => {
  if (!existsSync(CLI))
    throw new Error(`${CLI} is missing: build first (npx nx build @flowline/device-plugin)`);
});

afterEach(async () => {
  await env?.cleanup();
  env = undefined;
});

afterAll(() => rmSync(HUGE_DIR, { recursive: true, force: true }));

async function startAll(): Promise<Env> {
  env = await makeEnv(SPEC, CONFIG);
  env.startDaemon();
  await registered(env, [VF_POOL, VFIO_POOL, HP_POOL]);
  return env;
}

describe('device plugin daemon with a kubelet-side v1beta1 peer', () => {
  it('serves one endpoint per pool, registers each with the options it serves, lists devices by PCI address with NUMA', async () => {
    const e = await startAll();
    for (const r of [VF_POOL, VFIO_POOL, HP_POOL]) {
      const conn = e.kubelet.connection(r);
      expect(conn.registerOptions).toEqual(conn.dialedOptions);
      expect(conn.dialedOptions).toEqual({
        preStartRequired: true,
        getPreferredAllocationAvailable: true,
      });
      expect(statSync(join(e.pluginDir, conn.endpoint)).isSocket()).toBe(true);
    }
    expect(e.kubelet.registrations.every((r) => r.version === 'v1beta1')).toBe(true);
    const vfs = e.kubelet.devices(VF_POOL)!;
    expect(vfs.map((d) => d.ID).sort()).toEqual(
      [0, 1, 2, 3].flatMap((i) => [vfAddress(0, i), vfAddress(1, i)]).sort(),
    );
    expect(vfs.every((d) => d.health === 'Healthy')).toBe(true);
    expect(vfs.find((d) => d.ID === vfAddress(1, 0))!.topology).toEqual({ nodes: [{ ID: '1' }] });
    expect(e.kubelet.devices(VFIO_POOL)!.map((d) => d.ID)).toEqual([
      vfAddress(2, 0),
      vfAddress(2, 1),
    ]);
    // 4 pages per node on 2 nodes, one device per page, on its node
    const pages = e.kubelet.devices(HP_POOL)!;
    expect(pages).toHaveLength(8);
    expect(pages.filter((d) => d.topology?.nodes[0]?.ID === '1')).toHaveLength(4);
  });

  it('Allocate returns the contract-1 env (docs/architecture.md#device-plugin-to-pod), mounts, vfio device specs, device-info files and CDI names', async () => {
    const e = await startAll();
    const a = vfAddress(0, 1);
    const b = vfAddress(1, 2);
    const res = await e.kubelet.allocate(VF_POOL, [a, b]);
    const c = res.containerResponses[0]!;
    expect(c.envs).toMatchObject({
      PCIDEVICE_FLOWLINE_IO_SRIOV_VF: `${a},${b}`,
      FLOWLINE_NETDEV_SRIOV_VF: 'ens1f0v1,ens1f1v2',
      FLOWLINE_HUGEPAGES_DIR: '/dev/hugepages',
      FLOWLINE_HUGEPAGES_MB: '256',
    });
    expect(c.devices).toEqual([]);
    // a hugetlbfs folder of this allocation's own, not the node's shared one
    expect(c.mounts).toContainEqual({
      hostPath: join(HUGE_DIR, `sriov_vf-${a}`),
      containerPath: '/dev/hugepages',
      readOnly: false,
    });
    expect(statSync(join(HUGE_DIR, `sriov_vf-${a}`)).mode & 0o7777).toBe(0o700);
    const infoFile = join(e.devInfoDir, `flowline.io-sriov_vf-${a}-device.json`);
    expect(JSON.parse(readFileSync(infoFile, 'utf8'))).toEqual({
      type: 'pci',
      version: '1.1.0',
      pci: { 'pci-address': a, 'pf-pci-address': '0000:3b:00.0' },
    });
    expect(c.mounts).toContainEqual({
      hostPath: infoFile,
      containerPath: infoFile,
      readOnly: true,
    });

    const vfio = (await e.kubelet.allocate(VFIO_POOL, [vfAddress(2, 1)])).containerResponses[0]!;
    const vfioDir = join(e.dir, 'dev-vfio');
    expect(vfio.devices).toEqual([
      { hostPath: join(vfioDir, 'vfio'), containerPath: '/dev/vfio/vfio', permissions: 'rw' },
      { hostPath: join(vfioDir, '302'), containerPath: '/dev/vfio/302', permissions: 'rw' },
    ]);
    expect(vfio.envs.PCIDEVICE_FLOWLINE_IO_VFIO).toBe(vfAddress(2, 1));
    expect(vfio.envs.FLOWLINE_NETDEV_VFIO).toBeUndefined();
    expect(vfio.cdiDevices).toEqual([{ name: `flowline.io/vfio=${vfAddress(2, 1)}` }]);
    const cdiSpec = JSON.parse(readFileSync(join(e.cdiDir, 'flowline.io-vfio.json'), 'utf8'));
    expect(cdiSpec.kind).toBe('flowline.io/vfio');
    expect(cdiSpec.devices.map((d: { name: string }) => d.name)).toEqual([
      vfAddress(2, 0),
      vfAddress(2, 1),
    ]);

    const hp = (await e.kubelet.allocate(HP_POOL, ['2Mi-node0-0', '2Mi-node0-1', '2Mi-node0-2']))
      .containerResponses[0]!;
    expect(hp.envs).toEqual({
      FLOWLINE_HUGEPAGES_DIR: '/dev/hugepages',
      FLOWLINE_HUGEPAGES_MB: '6',
    });
    expect(hp.mounts).toEqual([
      {
        hostPath: join(HUGE_DIR, 'hugepages-2Mi-2Mi-node0-0'),
        containerPath: '/dev/hugepages',
        readOnly: false,
      },
    ]);

    await expect(e.kubelet.preStart(VF_POOL, [a])).resolves.toEqual({});
    await expect(e.kubelet.allocate(VF_POOL, ['0000:99:00.0'])).rejects.toMatchObject({
      code: grpc.status.NOT_FOUND,
      details: expect.stringContaining('0000:99:00.0'),
    });
    e.host.unbind(a);
    await waitFor('VF unhealthy', () => health(e, VF_POOL)[a] === 'Unhealthy');
    await expect(e.kubelet.allocate(VF_POOL, [a])).rejects.toMatchObject({
      code: grpc.status.FAILED_PRECONDITION,
      details: expect.stringContaining(`${a} of ${VF_POOL} is Unhealthy (no driver bound)`),
    });
  });

  it('GetPreferredAllocation keeps must-include, one NUMA node, and spreads across PFs', async () => {
    const config = {
      pools: [
        { name: 'spread', selectors: { pfNames: ['ens1f0', 'ens1f1', 'ens2f1'] } },
        { name: 'pack', allocationPolicy: 'pack', selectors: { pfNames: ['ens2f0'] } },
      ],
    };
    const spec = {
      veth: false,
      pfs: [
        { name: 'ens1f0', numVfs: 4, numaNode: 0 },
        { name: 'ens1f1', numVfs: 4, numaNode: 1 },
        { name: 'ens2f1', numVfs: 4, numaNode: 1 },
        { name: 'ens2f0', numVfs: 4, numaNode: 0 },
      ],
    };
    env = await makeEnv(spec, config);
    env.startDaemon();
    await registered(env, ['flowline.io/spread', 'flowline.io/pack']);
    const all = env.kubelet.devices('flowline.io/spread')!.map((d) => d.ID);
    // must-include on node 1 (PF 1): the rest comes from node 1, spread over PFs 1 and 2
    const got = await env.kubelet.preferred('flowline.io/spread', all, [vfAddress(1, 3)], 4);
    expect(got[0]).toBe(vfAddress(1, 3));
    expect(new Set(got)).toEqual(
      new Set([vfAddress(1, 3), vfAddress(2, 0), vfAddress(1, 0), vfAddress(2, 1)]),
    );
    await expect(env.kubelet.preferred('flowline.io/spread', all, [], 0)).rejects.toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      details: expect.stringContaining('allocation_size'),
    });
  });

  it('health follows the driver and the PF link, both ways, not the netdev a CNI moved into a pod', async () => {
    const e = await startAll();
    const vf = vfAddress(0, 2);
    e.host.unbind(vf);
    await waitFor('unbound VF Unhealthy', () => health(e, VF_POOL)[vf] === 'Unhealthy');
    e.host.bind(vf, 'iavf');
    await waitFor('re-bound VF Healthy', () => health(e, VF_POOL)[vf] === 'Healthy');
    // Gone from the host's sysfs view, as when sriov-cni moves it into a pod's namespace.
    e.host.removeNetdev(vf);

    e.host.setLink('ens1f1', 'down');
    await waitFor('PF link down', () =>
      [0, 1, 2, 3].every((i) => health(e, VF_POOL)[vfAddress(1, i)] === 'Unhealthy'),
    );
    // the pass that saw the link go down saw the netdev gone too: the VF stays Healthy
    expect([0, 1, 2, 3].every((i) => health(e, VF_POOL)[vfAddress(0, i)] === 'Healthy')).toBe(true);
    e.host.setLink('ens1f1', 'up');
    await waitFor('PF link up', () =>
      Object.values(health(e, VF_POOL)).every((h) => h === 'Healthy'),
    );
    expect(e.kubelet.connection(VF_POOL).streamEnded).toBe(false);
  });

  it('follows sriov_numvfs: VFs removed and added show in ListAndWatch', async () => {
    const e = await startAll();
    e.host.setNumVfs('ens1f0', 0);
    await waitFor(
      'VFs removed',
      () => health(e, VF_POOL) && Object.keys(health(e, VF_POOL)).length === 4,
    );
    e.host.setNumVfs('ens1f0', 6);
    await waitFor('VFs added', () => Object.keys(health(e, VF_POOL)).length === 10);
    expect(health(e, VF_POOL)[vfAddress(0, 5)]).toBe('Healthy');
    expect(e.kubelet.connection(VF_POOL).updates.length).toBeGreaterThanOrEqual(3);
  });

  it('re-registers after a kubelet restart (sockets deleted, kubelet.sock recreated)', async () => {
    const e = await startAll();
    const before = e.kubelet.registrations.length;
    await e.kubelet.restart();
    expect(readdirSync(e.pluginDir)).toEqual(['kubelet.sock']);
    await registered(e, [VF_POOL, VFIO_POOL, HP_POOL]);
    expect(e.kubelet.registrations.length).toBe(before + 3);
    expect(e.kubelet.devices(VF_POOL)).toHaveLength(8);
    const res = await e.kubelet.allocate(VF_POOL, [vfAddress(0, 0)]);
    expect(res.containerResponses[0]!.envs.PCIDEVICE_FLOWLINE_IO_SRIOV_VF).toBe(vfAddress(0, 0));
  });

  it('registers once kubelet appears, and restarts a server whose socket vanished', async () => {
    env = await makeEnv(SPEC, CONFIG);
    await env.kubelet.stop();
    rmSync(env.kubelet.socketPath, { force: true });
    const d = env.startDaemon();
    await waitFor('sockets served', () =>
      existsSync(join(env!.pluginDir, 'flowline-sriov_vf.sock')),
    );
    await env.kubelet.start();
    await registered(env, [VF_POOL, VFIO_POOL, HP_POOL]);
    const count = env.kubelet.registrations.filter((r) => r.resourceName === VF_POOL).length;
    rmSync(join(env.pluginDir, 'flowline-sriov_vf.sock'));
    await waitFor(
      're-registration after socket loss',
      () =>
        env!.kubelet.registrations.filter((r) => r.resourceName === VF_POOL).length === count + 1,
    );
    expect(existsSync(join(env.pluginDir, 'flowline-sriov_vf.sock'))).toBe(true);
    expect(d.logs.some((l) => l.msg === 'restarting server' && l.reason === 'socket_removed')).toBe(
      true,
    );
  });

  it('SIGTERM removes its sockets and device-info files; a restarted plugin registers the same device IDs', async () => {
    const e = await startAll();
    const ids = e.kubelet.devices(VF_POOL)!.map((d) => d.ID);
    await e.kubelet.allocate(VF_POOL, [vfAddress(0, 0)]);
    expect(readdirSync(e.devInfoDir)).toHaveLength(1);
    const code = await e.daemons[0]!.stop('SIGTERM');
    expect(code).toBe(0);
    expect(readdirSync(e.pluginDir)).toEqual(['kubelet.sock']);
    expect(readdirSync(e.devInfoDir)).toEqual([]);
    await waitFor('kubelet sees the stream end', () => e.kubelet.connection(VF_POOL).streamEnded);
    e.startDaemon();
    await waitFor(
      'new registration',
      () => !e.kubelet.connection(VF_POOL).streamEnded && e.kubelet.devices(VF_POOL),
    );
    expect(e.kubelet.devices(VF_POOL)!.map((d) => d.ID)).toEqual(ids);
  });

  it('starts over device-info files and a CDI spec a killed plugin left truncated and garbled, and says what it did', async () => {
    const e = await startAll();
    const a = vfAddress(0, 0);
    const b = vfAddress(0, 1);
    await e.kubelet.allocate(VF_POOL, [a, b]);
    await e.kubelet.allocate(VFIO_POOL, [vfAddress(2, 0)]);
    const killed = e.kubelet.connection(VF_POOL);
    expect(await e.daemons[0]!.stop('SIGKILL')).toBeNull(); // no cleanup: the files stay
    const infoA = join(e.devInfoDir, `flowline.io-sriov_vf-${a}-device.json`);
    const infoB = join(e.devInfoDir, `flowline.io-sriov_vf-${b}-device.json`);
    const cdi = join(e.cdiDir, 'flowline.io-vfio.json');
    writeFileSync(infoA, readFileSync(infoA, 'utf8').slice(0, 20)); // truncated
    writeFileSync(infoB, '{"type":"pci","version":"1.1.0","pci":{"pci-address":"0000:ff:'); // cut
    writeFileSync(cdi, 'garbage \u0000\u0000 not a CDI spec'); // garbled

    const d = e.startDaemon();
    // A new connection, not the killed plugin's: kubelet may not have seen that stream end yet,
    // and an Allocate on its channel would dial a socket the new daemon has not made yet.
    await waitFor('registration after the restart', () => {
      const conn = e.kubelet.connection(VF_POOL);
      return conn !== killed && !conn.streamEnded && e.kubelet.devices(VF_POOL);
    });
    await waitFor('a log line per unreadable file', () =>
      d.logs.filter((l) => /unreadable file of an earlier run/.test(l.msg)).length >= 3
        ? true
        : undefined,
    );
    const said = d.logs.filter((l) => /unreadable file of an earlier run/.test(l.msg));
    expect(said.map((l) => l.file).sort()).toEqual([infoA, infoB, cdi].sort());
    for (const l of said) {
      expect(l.level).toBe('warn');
      expect(l.component).toBe('device-plugin');
      expect(String(l.error)).toMatch(/JSON|Unexpected/);
      expect(l.msg).toMatch(/rewritten from the host/);
      expect(existsSync(String(l.movedTo))).toBe(true);
    }
    for (const [file, address] of [
      [infoA, a],
      [infoB, b],
    ] as const)
      expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({
        type: 'pci',
        version: '1.1.0',
        pci: { 'pci-address': address, 'pf-pci-address': '0000:3b:00.0' },
      });
    expect(JSON.parse(readFileSync(cdi, 'utf8')).kind).toBe(VFIO_POOL);
    // and it serves: a new Allocate works, and SIGTERM removes the files it took over
    await e.kubelet.allocate(VF_POOL, [vfAddress(0, 2)]);
    expect(await d.stop('SIGTERM')).toBe(0);
    expect(readdirSync(e.devInfoDir).filter((f) => f.endsWith('-device.json'))).toEqual([]);
  });

  it('reloads config without a restart; a bad config is rejected naming the field and the last good one stays', async () => {
    const e = await startAll();
    const d = e.daemons[0]!;
    e.writeConfig({
      ...CONFIG,
      pools: [
        CONFIG.pools[0],
        { name: 'numa1', selectors: { numaNodes: [1], pfNames: ['ens1f1#2-3'] } },
      ],
    });
    await waitFor('new pool registered', () => e.kubelet.devices('flowline.io/numa1'));
    // VFs go to the first matching pool: ens1f1 VFs 2-3 stay in sriov_vf
    expect(e.kubelet.devices('flowline.io/numa1')).toEqual([]);
    await waitFor(
      'vfio socket removed',
      () => !existsSync(join(e.pluginDir, 'flowline-vfio.sock')),
    );

    e.writeConfig({ pools: [{ name: 'sriov_vf', selectors: { pfNames: ['ens1f0#3-1'] } }] });
    const rejected = await waitFor('config rejected', () =>
      d.log('config rejected; keeping the last good config'),
    );
    expect(rejected.field).toBe('pools[0].selectors.pfNames[0]');
    expect(String(rejected.error)).toContain('ends before it starts');
    e.writeConfig('{"pools": [');
    await waitFor(
      'syntax error rejected',
      () => d.logs.filter((l) => l.msg.startsWith('config rejected')).length === 2,
    );
    const res = await e.kubelet.allocate(VF_POOL, [vfAddress(1, 3)]);
    expect(res.containerResponses[0]!.envs.PCIDEVICE_FLOWLINE_IO_SRIOV_VF).toBe(vfAddress(1, 3));

    e.writeConfig({ pools: [{ name: 'sriov_vf', selectors: { pfNames: ['ens1f0#0-1'] } }] });
    await waitFor('narrowed pool', () => Object.keys(health(e, VF_POOL)).length === 2);
  });

  it('one pool that fails to update (a huge nr_hugepages) is reported once; the others keep reporting health', async () => {
    const e = await startAll();
    const d = e.daemons[0]!;
    for (const f of [
      'kernel/mm/hugepages/hugepages-2048kB/nr_hugepages',
      'devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages',
      'devices/system/node/node1/hugepages/hugepages-2048kB/nr_hugepages',
    ])
      writeFileSync(join(e.sysRoot, f), '4294967296\n');
    e.host.setLink('ens1f0', 'down');
    await waitFor('PF link down seen by kubelet', () =>
      [0, 1, 2, 3].every((i) => health(e, VF_POOL)[vfAddress(0, i)] === 'Unhealthy'),
    );
    const failed = d.logs.filter((l) => l.msg.startsWith('pool update failed'));
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({
      level: 'error',
      component: 'device-plugin',
      pool: 'hugepages-2Mi',
      resource: HP_POOL,
    });
    expect(JSON.stringify(failed[0]!.error)).toMatch(/\d+ hugepages of 2Mi, over the 65536/);
    expect(e.kubelet.devices(HP_POOL)).toHaveLength(8); // its last good list

    for (const f of ['kernel/mm/hugepages', 'devices/system/node/node0/hugepages'])
      writeFileSync(join(e.sysRoot, f, 'hugepages-2048kB/nr_hugepages'), '2\n');
    writeFileSync(
      join(e.sysRoot, 'devices/system/node/node1/hugepages/hugepages-2048kB/nr_hugepages'),
      '2\n',
    );
    await waitFor('recovered', () => d.log('pool recovered'));
    await waitFor('new page count', () => e.kubelet.devices(HP_POOL)?.length === 4);
  });

  it('a reload that some pools cannot apply says so instead of "config reloaded"', async () => {
    const e = await startAll();
    const d = e.daemons[0]!;
    rmSync(e.cdiDir, { recursive: true, force: true });
    writeFileSync(e.cdiDir, 'not a folder'); // /var/run/cdi unusable (read-only, full, ...)
    e.writeConfig({
      ...CONFIG,
      pools: [{ ...CONFIG.pools[0], cdi: true }, CONFIG.pools[1]],
    });
    const line = await waitFor('reload logged', () =>
      d.log('config reloaded, but some pools failed to update; they keep their last state'),
    );
    expect(line).toMatchObject({ level: 'warn', failedPools: ['sriov_vf', 'vfio'] });
    expect(d.log('config reloaded')).toBeUndefined();
    // the pools that could be updated still serve
    expect(e.kubelet.devices(HP_POOL)).toHaveLength(8);
  });

  it('starts over a device-info path the runtime re-created as a directory, and Allocate works', async () => {
    env = await makeEnv(SPEC, CONFIG);
    const e = env;
    e.startDaemon();
    await registered(e, [VF_POOL]);
    const a = vfAddress(0, 0);
    const res = await e.kubelet.allocate(VF_POOL, [a]);
    const file = res.containerResponses[0]!.mounts.find((m) =>
      m.hostPath.endsWith('-device.json'),
    )!.hostPath;
    expect(await e.daemons[0]!.stop('SIGTERM')).toBe(0); // a rollout removes the files
    mkdirSync(file, { recursive: true }); // containerd restarts the container: MkdirAll(hostPath)
    const killed = e.kubelet.connection(VF_POOL);

    const d = e.startDaemon();
    await waitFor('registration after the restart', () => {
      const conn = e.kubelet.connection(VF_POOL);
      return conn !== killed && !conn.streamEnded && e.kubelet.devices(VF_POOL);
    });
    expect(d.exitCode).toBeUndefined();
    const said = await waitFor('moved aside', () =>
      d.logs.find((l) => l.file === file && /earlier run moved aside/.test(l.msg)),
    );
    expect(said).toMatchObject({ level: 'warn', error: 'a directory, not a file' });
    // and once more while this plugin runs
    rmSync(file);
    mkdirSync(file);
    await e.kubelet.allocate(VF_POOL, [a]);
    expect(JSON.parse(readFileSync(file, 'utf8')).pci['pci-address']).toBe(a);
  });

  it('refuses to start on a bad config, naming the field', async () => {
    env = await makeEnv(SPEC, { pools: [{ name: 'bad/name' }] });
    const d = env.startDaemon();
    expect(await d.waitExit()).toBe(1);
    const line = d.logs.find((l) => l.level === 'error')!;
    expect(line.msg).toContain('pools[0].name');
    expect(readdirSync(env.pluginDir)).toEqual(['kubelet.sock']);
  });

  it('a pool whose socket path cannot fit is reported, and the other pools still serve', async () => {
    const long = 'x'.repeat(63);
    env = await makeEnv(SPEC, {
      pools: [
        { name: long, selectors: { pfNames: ['ens1f1'] } },
        { name: 'sriov_vf', selectors: { pfNames: ['ens1f0'] } },
      ],
    });
    const d = env.startDaemon();
    await registered(env, [VF_POOL]);
    const line = await waitFor('start failure logged', () =>
      d.log('cannot serve; retrying on every pass'),
    );
    expect(JSON.stringify(line.error)).toContain('107-byte unix socket limit');
    expect(env.kubelet.connections.has(`flowline.io/${long}`)).toBe(false);
    expect(d.logs.filter((l) => l.msg === 'cannot serve; retrying on every pass')).toHaveLength(1);
  });

  it('exports metrics: devices per pool and health, allocations, registrations', async () => {
    const e = await startAll();
    await e.kubelet.allocate(VF_POOL, [vfAddress(0, 0)]);
    e.host.unbind(vfAddress(0, 3));
    await waitFor('unhealthy', () => health(e, VF_POOL)[vfAddress(0, 3)] === 'Unhealthy');
    const url = String(
      (await waitFor('ready log', () => e.daemons[0]!.log('device plugin ready'))).metricsUrl,
    );
    const text = await (await fetch(url)).text();
    expect(text).toMatch(
      /flowline_device_plugin_devices\{resource="flowline.io\/sriov_vf",health="Healthy"\} 7/,
    );
    expect(text).toMatch(
      /flowline_device_plugin_devices\{resource="flowline.io\/sriov_vf",health="Unhealthy"\} 1/,
    );
    expect(text).toMatch(
      /flowline_device_plugin_allocations_total\{resource="flowline.io\/sriov_vf",result="ok"\} 1/,
    );
    expect(text).toMatch(
      /flowline_device_plugin_registrations_total\{resource="flowline.io\/sriov_vf",reason="start"\} 1/,
    );
    expect(text).toMatch(
      /flowline_device_plugin_hugepages\{size="2Mi",numa_node="1",state="total"\} 4/,
    );
  });
});

describe('wire format', () => {
  it('the v1beta1 proto loads with kubelet names: package v1beta1, services Registration and DevicePlugin', () => {
    const api = dp.loadDevicePluginV1beta1();
    expect(Object.keys(api.Registration.service)).toEqual(['Register']);
    expect(api.Registration.service.Register.path).toBe('/v1beta1.Registration/Register');
    expect(api.DevicePlugin.service.ListAndWatch.path).toBe('/v1beta1.DevicePlugin/ListAndWatch');
    expect(api.DevicePlugin.service.ListAndWatch.responseStream).toBe(true);
  });
});
