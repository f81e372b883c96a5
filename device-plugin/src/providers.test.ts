// Device-info files and CDI specs: written crash-safely, and read back when a plugin starts over
// files an earlier run left (it crashed or was killed while pods used them).
import { createLogger } from '@flowline/telemetry';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type { devicePluginV1beta1 as dp } from '@flowline/proto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type PluginConfig, parseConfig } from './config';
import { EmulatedHost, vfAddress } from '@flowline/emulation';
import {
  type AllocationSettings,
  type DeviceProvider,
  MAX_HUGEPAGE_DEVICES,
  type ProviderPlan,
  planProviders,
} from './providers';
import { PoolAssigner } from './selectors';
import { Sysfs, discoverHugepages, discoverPfs } from './sysfs';

interface Logged {
  level: string;
  component: string;
  msg: string;
  [field: string]: unknown;
}

const CONFIG = parseConfig({
  pools: [
    { name: 'sriov_vf', selectors: { pfNames: ['ens1f0'] } },
    { name: 'vfio', deviceType: 'vfio-pci', selectors: { pfNames: ['ens2f0'] }, cdi: true },
  ],
});

let dir: string;
let host: EmulatedHost;
let logs: Logged[];
let settings: AllocationSettings;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'fl-dp-files-'));
  host = EmulatedHost.create({
    root: join(dir, 'sys'),
    veth: false,
    hugepages: 4,
    pfs: [
      { name: 'ens1f0', numVfs: 3, numaNode: 0 },
      { name: 'ens2f0', numVfs: 2, numaNode: 0, vfDriver: 'vfio-pci' },
    ],
  });
  logs = [];
  settings = {
    devInfoDir: join(dir, 'devinfo'),
    cdiDir: join(dir, 'cdi'),
    vfioDir: join(dir, 'vfio'),
    logger: createLogger('device-plugin', {
      write: (line) => logs.push(JSON.parse(line) as Logged),
    }),
  };
});
afterEach(() => {
  host.destroy();
  rmSync(dir, { recursive: true, force: true });
});

/** What the daemon does on each pass: scan the host, plan the providers. */
function plan(
  config: PluginConfig = CONFIG,
  existing: ReadonlyMap<string, DeviceProvider> = new Map(),
): ProviderPlan {
  const sysfs = new Sysfs(host.root);
  const snapshot = {
    vfsByPool: new PoolAssigner().assign(discoverPfs(sysfs), config.pools),
    hugepages: discoverHugepages(sysfs),
  };
  return planProviders(config, snapshot, existing, settings);
}

/** What the daemon does at start. */
function startPlugin(): Map<string, DeviceProvider> {
  return plan().providers;
}

const devInfo = (address: string): string =>
  join(settings.devInfoDir, `flowline.io-sriov_vf-${address}-device.json`);
const cdiSpec = (): string => join(settings.cdiDir, 'flowline.io-vfio.json');
const npwg = (address: string): unknown => ({
  type: 'pci',
  version: '1.1.0',
  pci: { 'pci-address': address, 'pf-pci-address': '0000:3b:00.0' },
});

describe('device-info files and CDI specs', () => {
  it('are written whole at the NPWG path, readable by others, with no temporary or .prev file left', () => {
    const vf = startPlugin().get('flowline.io/sriov_vf')!;
    vf.allocate([vfAddress(0, 1)]);
    const first = statSync(devInfo(vfAddress(0, 1))).ino;
    vf.allocate([vfAddress(0, 1)]); // Allocate again (a container restart) rewrites it
    // by a new file renamed over the old one, never by writing into the file readers open
    expect(statSync(devInfo(vfAddress(0, 1))).ino).not.toBe(first);
    expect(JSON.parse(readFileSync(devInfo(vfAddress(0, 1)), 'utf8'))).toEqual(
      npwg(vfAddress(0, 1)),
    );
    expect(statSync(devInfo(vfAddress(0, 1))).mode & 0o777).toBe(0o644);
    expect(readdirSync(settings.devInfoDir)).toEqual([
      `flowline.io-sriov_vf-${vfAddress(0, 1)}-device.json`,
    ]);
    expect(readdirSync(settings.cdiDir)).toEqual(['flowline.io-vfio.json']);
    expect(statSync(cdiSpec()).mode & 0o777).toBe(0o644);
  });

  it('left cut short or garbled by an earlier run: the plugin starts, says which file and why, and rewrites them from the host', () => {
    // An earlier run allocated three VFs and the CDI spec, then died; a crash (or a disk) left
    // one file truncated, one garbled, and the CDI spec garbled; one VF's file is intact.
    const earlier = startPlugin();
    earlier.get('flowline.io/sriov_vf')!.allocate([0, 1, 2].map((i) => vfAddress(0, i)));
    const intact = devInfo(vfAddress(0, 0));
    const truncated = devInfo(vfAddress(0, 1));
    const garbled = devInfo(vfAddress(0, 2));
    writeFileSync(truncated, readFileSync(truncated, 'utf8').slice(0, 25));
    writeFileSync(garbled, '\u0000\u0000{"type": "pci", garbage');
    writeFileSync(cdiSpec(), '{"cdiVersion": "0.6.0", "kind": "flowline.io/vf');
    // A VF gone since (its file garbled too): moved aside, not rewritten.
    const gone = devInfo('0000:3b:02.7');
    writeFileSync(gone, 'not json');

    const providers = startPlugin();

    for (const file of [truncated, garbled])
      expect(JSON.parse(readFileSync(file, 'utf8')), file).toEqual(
        npwg(file.match(/(0000:[^-]+)-device/)![1]!),
      );
    expect(JSON.parse(readFileSync(cdiSpec(), 'utf8')).kind).toBe('flowline.io/vfio');
    const warned = logs.filter((l) => l.level === 'warn');
    expect(warned.map((l) => l.file).sort()).toEqual([truncated, garbled, gone, cdiSpec()].sort());
    for (const l of warned) {
      expect(l.component).toBe('device-plugin');
      expect(l.error, String(l.file)).toMatch(/JSON|Unexpected|position/);
      expect(String(l.movedTo)).toMatch(/\.corrupt-/);
      expect(readFileSync(String(l.movedTo), 'utf8')).not.toBe('');
    }
    expect(warned.find((l) => l.file === truncated)!.msg).toMatch(/rewritten from the host/);
    expect(warned.find((l) => l.file === gone)!.msg).toMatch(/VF is gone; not rewritten/);
    expect(
      readdirSync(settings.devInfoDir)
        .filter((f) => f.endsWith('-device.json'))
        .sort(),
    ).toEqual(
      [intact, truncated, garbled].map((f) => f.slice(settings.devInfoDir.length + 1)).sort(),
    );

    // The files of the earlier run are now this run's: stopping removes them, intact one too.
    for (const p of providers.values()) p.cleanup();
    expect(readdirSync(settings.devInfoDir).filter((f) => f.endsWith('-device.json'))).toEqual([]);
    expect(readdirSync(settings.cdiDir).filter((f) => f.endsWith('.json'))).toEqual([]);
  });

  it('leaves files of other pools and other programs in the shared folder alone', () => {
    mkdirSync(settings.devInfoDir, { recursive: true });
    const other = [
      'flowline.io-sriov_vf2-0000:3b:02.0-device.json', // another pool whose name starts alike
      'intel.com-sriov-0000:3b:02.0-device.json', // another device plugin
    ];
    for (const f of other) writeFileSync(join(settings.devInfoDir, f), 'garbled by someone else');
    const providers = startPlugin();
    for (const p of providers.values()) p.cleanup();
    expect(readdirSync(settings.devInfoDir).sort()).toEqual(other.sort());
    expect(logs.filter((l) => l.level === 'warn')).toEqual([]);
  });
});

describe('a provider that fails', () => {
  const WITH_HUGEPAGES = parseConfig({
    pools: [{ name: 'sriov_vf', selectors: { pfNames: ['ens1f0'] } }],
    hugepages: { resource: true },
  });
  const health = (p: DeviceProvider): string =>
    p
      .devices()
      .map((d) => (d.problem === undefined ? 'H' : 'U'))
      .join('');

  it('an unbounded hugepage count from sysfs is refused, and the other pools still update', () => {
    const first = plan(WITH_HUGEPAGES);
    expect(first.failures.size).toBe(0);
    const pages = first.providers.get('flowline.io/hugepages-2Mi')!;
    expect(pages.devices()).toHaveLength(4);
    for (const f of [
      'kernel/mm/hugepages/hugepages-2048kB/nr_hugepages',
      'devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages',
    ])
      writeFileSync(join(host.root, f), '4294967296\n');
    writeFileSync(join(host.root, 'class/net/ens1f0/operstate'), 'down\n');

    const next = plan(WITH_HUGEPAGES, first.providers);

    expect(health(next.providers.get('flowline.io/sriov_vf')!)).toBe('UUU');
    expect([...next.failures.keys()]).toEqual(['flowline.io/hugepages-2Mi']);
    expect(next.failures.get('flowline.io/hugepages-2Mi')!.message).toContain(
      `4294967296 hugepages of 2Mi, over the ${MAX_HUGEPAGE_DEVICES}`,
    );
    // kept, with its last list
    expect(next.providers.get('flowline.io/hugepages-2Mi')).toBe(pages);
    expect(pages.devices()).toHaveLength(4);
  });

  it('a CDI folder that cannot be written fails that pool only', () => {
    writeFileSync(settings.cdiDir, 'not a folder');
    const { providers, failures } = plan();
    expect([...failures.keys()]).toEqual(['flowline.io/vfio']);
    expect(failures.get('flowline.io/vfio')!.message).toMatch(/ENOTDIR|EEXIST/);
    expect(providers.get('flowline.io/sriov_vf')!.devices()).toHaveLength(3);
    // the failing pool still lists what the host has
    expect(providers.get('flowline.io/vfio')!.devices()).toHaveLength(2);
  });

  it('Allocate gives CDI names only for devices the spec on disk names', () => {
    const first = plan();
    const vfio = first.providers.get('flowline.io/vfio')!;
    const ids = vfio.devices().map((d) => d.id);
    expect(vfio.allocate(ids).cdiDevices).toEqual(
      ids.map((id) => ({ name: `flowline.io/vfio=${id}` })),
    );
    // The spec goes (an operator's cleanup) and cannot be written again: its folder is a file now.
    rmSync(settings.cdiDir, { recursive: true });
    writeFileSync(settings.cdiDir, 'not a folder');
    const next = plan(CONFIG, first.providers);
    expect([...next.failures.keys()]).toEqual(['flowline.io/vfio']);
    const response = vfio.allocate(ids);
    // no name the runtime cannot resolve; the device nodes still go to the container
    expect(response.cdiDevices).toEqual([]);
    expect(response.devices!.map((d) => d.containerPath)).toContain('/dev/vfio/vfio');
    const warned = logs.filter((l) => l.msg.startsWith('CDI spec does not name the devices'));
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatchObject({ level: 'warn', pool: 'vfio', devices: ids });
    // written again once the folder is back: names again
    rmSync(settings.cdiDir);
    plan(CONFIG, first.providers);
    expect(vfio.allocate(ids).cdiDevices).toHaveLength(ids.length);
  });

  it('configured hugepage sizes are matched to the host whatever unit they are written in', () => {
    const config = parseConfig({ pools: [], hugepages: { resource: true, sizes: ['2048Ki'] } });
    const { providers } = plan(config);
    expect([...providers.keys()]).toEqual(['flowline.io/hugepages-2Mi']);
    expect(providers.get('flowline.io/hugepages-2Mi')!.devices()).toHaveLength(4);
  });
});

describe('paths of device-info files that are not files', () => {
  it('left by an earlier run as directories: moved aside and logged, the plugin starts', () => {
    // containerd re-creates a removed bind-mount source with MkdirAll on a container restart
    const asDir = devInfo(vfAddress(0, 0));
    const gone = devInfo('0000:3b:02.7');
    mkdirSync(asDir, { recursive: true });
    mkdirSync(join(gone, 'inside'), { recursive: true });
    mkdirSync(cdiSpec(), { recursive: true });

    const providers = startPlugin();

    expect(JSON.parse(readFileSync(asDir, 'utf8'))).toEqual(npwg(vfAddress(0, 0)));
    expect(existsSync(gone)).toBe(false);
    expect(JSON.parse(readFileSync(cdiSpec(), 'utf8')).kind).toBe('flowline.io/vfio');
    const warned = logs.filter((l) => l.level === 'warn');
    expect(warned.map((l) => l.file).sort()).toEqual([asDir, gone, cdiSpec()].sort());
    for (const l of warned) {
      expect(l.component).toBe('device-plugin');
      expect(l.resource).toMatch(/^flowline\.io\//);
      expect(l.error).toBe('a directory, not a file');
      expect(statSync(String(l.movedTo)).isDirectory()).toBe(true);
    }
    expect(warned.find((l) => l.file === gone)!.msg).toMatch(/VF is gone; not rewritten/);
    for (const p of providers.values()) p.cleanup();
  });

  it('made a directory after the plugin removed the file: Allocate moves it aside and writes the file', () => {
    const vf = startPlugin().get('flowline.io/sriov_vf')!;
    vf.allocate([vfAddress(0, 1)]);
    const file = devInfo(vfAddress(0, 1));
    vf.cleanup(); // a SIGTERM, or the VF leaving the pool
    mkdirSync(file);

    const res = vf.allocate([vfAddress(0, 1)]);

    expect(res.mounts).toContainEqual({ hostPath: file, containerPath: file, readOnly: true });
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual(npwg(vfAddress(0, 1)));
    const warned = logs.find((l) => l.msg.startsWith('device-info path was not a file'))!;
    expect(warned).toMatchObject({ level: 'warn', file, error: 'a directory, not a file' });
    expect(statSync(String(warned.movedTo)).isDirectory()).toBe(true);
  });

  it('adopts files of VFs in PCI domains of more than 4 hex digits (VMD), up to 8', () => {
    mkdirSync(settings.devInfoDir, { recursive: true });
    const vmd = join(settings.devInfoDir, 'flowline.io-sriov_vf-10000:3b:02.0-device.json');
    const tooLong = join(settings.devInfoDir, 'flowline.io-sriov_vf-123456789:3b:02.0-device.json');
    writeFileSync(vmd, 'garbled');
    writeFileSync(tooLong, 'garbled');
    startPlugin();
    expect(logs.filter((l) => l.level === 'warn').map((l) => l.file)).toEqual([vmd]);
    expect(readFileSync(tooLong, 'utf8')).toBe('garbled');
  });
});

describe('what one tenant can reach of another', () => {
  const HUGE_CONFIG = (hugepages: Record<string, unknown>): PluginConfig =>
    parseConfig({
      pools: [{ name: 'sriov_vf', selectors: { pfNames: ['ens1f0'] }, hugepagesMb: 64 }],
      hugepages: { hostPath: join(dir, 'hugetlbfs'), sizes: ['2Mi'], ...hugepages },
    });
  const hugeMounts = (r: dp.ContainerAllocateResponse): dp.Mount[] =>
    (r.mounts ?? []).filter((m) => m.containerPath === '/dev/hugepages');
  const folderMount = (name: string): dp.Mount => ({
    hostPath: join(dir, 'hugetlbfs', name),
    containerPath: '/dev/hugepages',
    readOnly: false,
  });

  it('hugetlbfs is not mounted by default; the pool still sizes the EAL', () => {
    const vf = plan(HUGE_CONFIG({})).providers.get('flowline.io/sriov_vf')!;
    const res = vf.allocate([vfAddress(0, 0)]);
    expect(hugeMounts(res)).toEqual([]);
    expect(res.envs).not.toHaveProperty('FLOWLINE_HUGEPAGES_DIR');
    expect(res.envs!.FLOWLINE_HUGEPAGES_MB).toBe('64');
    expect(existsSync(join(dir, 'hugetlbfs'))).toBe(false);
  });

  it('mounted when asked: each allocation gets a folder of its own, mode 0700, never the shared root', () => {
    const huge = join(dir, 'hugetlbfs');
    mkdirSync(huge);
    const { providers } = plan(HUGE_CONFIG({ mount: true, resource: true }));
    const vf = providers.get('flowline.io/sriov_vf')!;
    const first = vf.allocate([vfAddress(0, 1), vfAddress(0, 0)]);
    const second = vf.allocate([vfAddress(0, 2)]);
    const pages = providers
      .get('flowline.io/hugepages-2Mi')!
      .allocate(['2Mi-node0-3', '2Mi-node0-0']);

    expect(hugeMounts(first)).toEqual([folderMount(`sriov_vf-${vfAddress(0, 1)}`)]);
    expect(hugeMounts(second)).toEqual([folderMount(`sriov_vf-${vfAddress(0, 2)}`)]);
    expect(hugeMounts(pages)).toEqual([folderMount('hugepages-2Mi-2Mi-node0-3')]);
    expect(first.envs).toMatchObject({
      FLOWLINE_HUGEPAGES_DIR: '/dev/hugepages',
      FLOWLINE_HUGEPAGES_MB: '64',
    });
    expect(pages.envs).toEqual({
      FLOWLINE_HUGEPAGES_DIR: '/dev/hugepages',
      FLOWLINE_HUGEPAGES_MB: '4',
    });
    expect(readdirSync(huge).sort()).toEqual(
      [
        `sriov_vf-${vfAddress(0, 1)}`,
        `sriov_vf-${vfAddress(0, 2)}`,
        'hugepages-2Mi-2Mi-node0-3',
      ].sort(),
    );
    for (const f of readdirSync(huge)) expect(statSync(join(huge, f)).mode & 0o7777, f).toBe(0o700);
  });

  it("an earlier pod's hugepage files are gone before the next pod gets the folder; a planted link is not followed", () => {
    const huge = join(dir, 'hugetlbfs');
    mkdirSync(huge);
    const vf = plan(HUGE_CONFIG({ mount: true })).providers.get('flowline.io/sriov_vf')!;
    const folder = join(huge, `sriov_vf-${vfAddress(0, 0)}`);
    vf.allocate([vfAddress(0, 0)]);
    // The pod's DPDK leaves its pages behind (no --huge-unlink), and the pod ends.
    writeFileSync(join(folder, 'rtemap_0'), 'tenant A memory');
    mkdirSync(join(folder, 'sub'));
    chmodSync(folder, 0o755);

    vf.allocate([vfAddress(0, 0)]); // the next pod that gets this VF first

    expect(readdirSync(folder)).toEqual([]);
    expect(statSync(folder).mode & 0o7777).toBe(0o700);

    // A pod that had the shared root (an older plugin) left a link by a later folder's name.
    const elsewhere = join(dir, 'elsewhere');
    mkdirSync(elsewhere);
    writeFileSync(join(elsewhere, 'keep'), "not the plugin's");
    const planted = join(huge, `sriov_vf-${vfAddress(0, 2)}`);
    symlinkSync(elsewhere, planted);
    vf.allocate([vfAddress(0, 2)]);
    expect(lstatSync(planted).isDirectory()).toBe(true);
    expect(readdirSync(planted)).toEqual([]);
    expect(readFileSync(join(elsewhere, 'keep'), 'utf8')).toBe("not the plugin's");
  });

  it('with hostPath not visible to the plugin, the mount is still per allocation, and it says so', () => {
    const vf = plan(HUGE_CONFIG({ mount: true })).providers.get('flowline.io/sriov_vf')!;
    const res = vf.allocate([vfAddress(0, 1)]);
    expect(hugeMounts(res)).toEqual([folderMount(`sriov_vf-${vfAddress(0, 1)}`)]);
    expect(existsSync(join(dir, 'hugetlbfs'))).toBe(false);
    expect(logs.filter((l) => l.level === 'warn')).toMatchObject([
      {
        msg: expect.stringMatching(/^hugepages.hostPath is not visible to the plugin/),
        pool: 'sriov_vf',
        hostPath: join(dir, 'hugetlbfs'),
      },
    ]);
  });

  it('a vfio-pci VF whose IOMMU group holds another device is Unhealthy, naming it, until it is alone again', () => {
    // The emulated kernel gives each VF a group of its own, as ACS does; without ACS the
    // kernel groups them together.
    const [a, b] = [vfAddress(1, 0), vfAddress(1, 1)];
    const groupLink = (vf: string): string =>
      join(host.root, 'devices/pci0000:00', vf, 'iommu_group');
    const groupA = basename(readlinkSync(groupLink(a)));
    const groupB = basename(readlinkSync(groupLink(b)));
    const member = join(host.root, 'kernel/iommu_groups', groupA, 'devices', b);
    symlinkSync(`../../../../devices/pci0000:00/${b}`, member);
    rmSync(groupLink(b));
    symlinkSync(`../../../kernel/iommu_groups/${groupA}`, groupLink(b));

    const first = plan();
    const vfio = first.providers.get('flowline.io/vfio')!;
    expect(vfio.devices().map((d) => [d.id, d.problem])).toEqual([
      [a, `IOMMU group ${groupA} also holds ${b}`],
      [b, `IOMMU group ${groupA} also holds ${a}`],
    ]);
    expect(() => vfio.allocate([a])).toThrow(
      `device ${a} of flowline.io/vfio is Unhealthy (IOMMU group ${groupA} also holds ${b})`,
    );
    // netdevice VFs are not handed out through /dev/vfio: their groups do not matter here
    expect(
      first.providers
        .get('flowline.io/sriov_vf')!
        .devices()
        .every((d) => !d.problem),
    ).toBe(true);

    rmSync(member);
    rmSync(groupLink(b));
    symlinkSync(`../../../kernel/iommu_groups/${groupB}`, groupLink(b));
    plan(CONFIG, first.providers);
    expect(vfio.devices().map((d) => d.problem)).toEqual([undefined, undefined]);
    expect(vfio.allocate([a]).devices).toContainEqual({
      hostPath: join(settings.vfioDir, groupA),
      containerPath: `/dev/vfio/${groupA}`,
      permissions: 'rw',
    });
  });

  it('a VF netdev renamed to a name with a separator gives an empty FLOWLINE_NETDEV_* entry, logged; the others keep their places', () => {
    const ids = [0, 1, 2].map((i) => vfAddress(0, i));
    const net = join(host.root, 'devices/pci0000:00', ids[1]!, 'net');
    let current = 'ens1f0v1';
    const renameTo = (name: string): void => {
      renameSync(join(net, current), join(net, name));
      current = name;
    };
    // Linux takes every byte but '/', ':' and whitespace (a pod with NET_ADMIN can rename its VF).
    for (const name of ['a,b', 'a=b', 'a;b', 'x'.repeat(16), 'a\nb']) {
      renameTo(name);
      logs = [];
      const vf = startPlugin().get('flowline.io/sriov_vf')!;
      const value = vf.allocate(ids).envs!.FLOWLINE_NETDEV_SRIOV_VF;
      expect(value, JSON.stringify(name)).toBe('ens1f0v0,,ens1f0v2');
      expect(logs.filter((l) => l.level === 'warn')).toMatchObject([
        {
          msg: 'VF netdev name is not a plain interface name; its entry is empty',
          device: ids[1],
          netdev: name,
          env: 'FLOWLINE_NETDEV_SRIOV_VF',
        },
      ]);
    }
    renameTo('vf_1.a-B');
    logs = [];
    const vf = startPlugin().get('flowline.io/sriov_vf')!;
    expect(vf.allocate(ids).envs!.FLOWLINE_NETDEV_SRIOV_VF).toBe('ens1f0v0,vf_1.a-B,ens1f0v2');
    expect(logs.filter((l) => l.level === 'warn')).toEqual([]);
  });
});
