import type { devicePluginV1beta1 as dp } from '@flowline/proto';
import {
  corruptPath,
  type ReadStateResult,
  readStateFileSync,
  writeStateFileSync,
} from '@flowline/state-file';
import type { Logger } from '@flowline/telemetry';
import {
  type Stats,
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  renameSync,
  rmSync,
} from 'node:fs';
import { join } from 'node:path';
import type { AllocationPolicy, HugepagesConfig, PluginConfig, PoolConfig } from './config';
import { DevicePluginError, DeviceRequestError } from './errors';
import { netdevEnvName, pciEnvName, resourceNameOf } from './names';
import type { Placement } from './preferred';
import type { AssignedVf } from './selectors';
import type { HugepagePool } from './sysfs';

/** One device as ListAndWatch reports it. */
export interface ListedDevice {
  id: string;
  /** undefined: Healthy; else why it is Unhealthy */
  problem: string | undefined;
  numaNode: number | undefined;
}

/** What one scan of the host found, shared by every provider. */
export interface HostSnapshot {
  /** VFs per pool name, as PoolAssigner put them */
  vfsByPool: Map<string, AssignedVf[]>;
  hugepages: { system: HugepagePool[]; perNode: HugepagePool[] };
}

/** Where Allocate writes files and what it mounts; fixed for the daemon's life. */
export interface AllocationSettings {
  /** NPWG device-info folder, default /var/run/k8s.cni.cncf.io/devinfo/dp */
  devInfoDir: string;
  /** CDI spec folder, default /var/run/cdi */
  cdiDir: string;
  /** Where VFIO group devices live on the host (/dev/vfio) */
  vfioDir: string;
  /** Where a provider says what it found in files left by an earlier run (none: silent). */
  logger?: Logger;
}

/** The env the NF runtime reads to find and size its EAL memory. */
export const HUGEPAGES_DIR_ENV = 'FLOWLINE_HUGEPAGES_DIR';
export const HUGEPAGES_MB_ENV = 'FLOWLINE_HUGEPAGES_MB';
export const DEVICE_INFO_VERSION = '1.1.0';

/**
 * A source of devices for one resource. The daemon serves one kubelet endpoint per provider; a
 * provider knows how to list its devices from a host snapshot, place them for preferred
 * allocation and turn an allocation into what the container gets.
 */
export interface DeviceProvider {
  readonly pool: string;
  readonly resourceName: string;
  readonly policy: AllocationPolicy;
  /** Takes a fresh snapshot (and possibly a changed pool config). */
  update(host: HostSnapshot, config: PluginConfig): void;
  devices(): ListedDevice[];
  placements(): ReadonlyMap<string, Placement>;
  /** The response for one container; throws DeviceRequestError for an unknown/unhealthy ID. */
  allocate(ids: string[]): dp.ContainerAllocateResponse;
  /** Removes every file the provider wrote (device-info, CDI spec). */
  cleanup(): void;
}

function checkIds(provider: DeviceProvider, ids: string[]): void {
  const byId = new Map(provider.devices().map((d) => [d.id, d]));
  for (const id of ids) {
    const d = byId.get(id);
    if (!d) {
      throw new DeviceRequestError(
        id,
        provider.resourceName,
        'unknown',
        `known devices: ${[...byId.keys()].join(', ') || 'none'}`,
      );
    }
    if (d.problem !== undefined)
      throw new DeviceRequestError(id, provider.resourceName, 'unhealthy', d.problem);
  }
}

/** A netdev name with no list or env separator in it (IFNAMSIZ: at most 15 bytes). */
const SAFE_NETDEV_NAME = /^[A-Za-z0-9_.-]{1,15}$/;

// Linux PCI domains are 32-bit, printed as at least 4 hex digits: VMD's start at 10000.
const PCI_ADDRESS = /^[0-9a-f]{4,8}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/;

/** The NPWG device-info document of one VF (layout 1.1.0, `type: pci`). */
export function deviceInfo(address: string, pfAddress: string): Record<string, unknown> {
  return {
    type: 'pci',
    version: DEVICE_INFO_VERSION,
    pci: { 'pci-address': address, 'pf-pci-address': pfAddress },
  };
}

/** Parses a device-info file this plugin wrote for `address`; throws on anything else. */
export function parseDeviceInfo(text: string, address: string): Record<string, unknown> {
  const doc = JSON.parse(text) as unknown;
  const pci = (doc as { pci?: Record<string, unknown> } | null)?.pci;
  if (
    typeof doc !== 'object' ||
    doc === null ||
    (doc as { type?: unknown }).type !== 'pci' ||
    typeof pci !== 'object' ||
    pci === null
  )
    throw new Error('not an NPWG device-info document of type pci');
  if (pci['pci-address'] !== address)
    throw new Error(`pci-address is ${JSON.stringify(pci['pci-address'])}, not ${address}`);
  return doc as Record<string, unknown>;
}

/** Parses a CDI spec this plugin wrote for `kind`; throws on anything else. */
export function parseCdiSpec(text: string, kind: string): Record<string, unknown> {
  const doc = JSON.parse(text) as { kind?: unknown; devices?: unknown } | null;
  if (typeof doc !== 'object' || doc === null || !Array.isArray(doc.devices))
    throw new Error('not a CDI spec (no devices list)');
  if (doc.kind !== kind) throw new Error(`kind is ${JSON.stringify(doc.kind)}, not ${kind}`);
  return doc as Record<string, unknown>;
}

// Device-info and CDI files are derived from the host (a VF's addresses, a pool's devices), so
// the copy to fall back to is the one rebuilt from the host, not an older file: no `.prev`
// beside them in folders other programs list. They are written world-readable, as readers
// (Multus, the SR-IOV CNI, the container runtime's CDI registry) run as other users.
const DERIVED_FILE = { mode: 0o644, keepPrevious: false };

/**
 * The hugetlbfs mount and env of one allocation, or nothing when `hugepages.mount` is off.
 * Each allocation gets a folder of its own, `<hostPath>/<pool>-<first device ID>`, not the shared
 * root: hugepage files a DPDK process leaves there (rtemap_*) are memory another tenant could
 * open. Device IDs are held by one container at a time, so no two live allocations share a
 * folder; what an earlier holder of that device left in it is removed, and it is made mode 0700.
 */
function hugepageAllocation(
  h: HugepagesConfig,
  pool: string,
  ids: string[],
  logger: Logger | undefined,
): { mount: dp.Mount; env: Record<string, string> } | undefined {
  if (!h.mount || ids[0] === undefined) return undefined;
  const folder = join(h.hostPath, `${pool}-${ids[0]}`);
  if (lstatOf(h.hostPath) === undefined) {
    // The plugin runs where hostPath is not mounted (a container without it): the runtime makes
    // the folder when it mounts it (containerd and CRI-O do), but with its own mode and without
    // clearing it. Still one folder per allocation, so still no sharing between live pods.
    logger?.warn(
      'hugepages.hostPath is not visible to the plugin: the per-allocation folder is left to ' +
        'the container runtime to create, and leftovers of an earlier pod in it are not removed; ' +
        'mount hostPath into the plugin at the same path',
      { pool, hostPath: h.hostPath, folder },
    );
  } else {
    prepareHugepageFolder(folder);
  }
  return {
    mount: { hostPath: folder, containerPath: h.containerPath, readOnly: false },
    env: { [HUGEPAGES_DIR_ENV]: h.containerPath },
  };
}

/** Makes `folder` an empty directory of mode 0700, whatever an earlier allocation left there. */
function prepareHugepageFolder(folder: string): void {
  const st = lstatOf(folder);
  if (st?.isDirectory() && st.uid === process.getuid?.()) {
    // Emptied, not removed: removing a directory some mount namespace still binds detaches it there.
    for (const name of readdirSync(folder))
      rmSync(join(folder, name), { recursive: true, force: true });
  } else {
    // Anything else by that name (a symlink, a file, another user's folder: pods that had the
    // shared root could make them) is removed, never followed or reused.
    if (st !== undefined) rmSync(folder, { recursive: true, force: true });
    mkdirSync(folder, { mode: 0o700 });
  }
  // mkdir's mode is cut by the umask, and an existing folder may have another.
  chmodSync(folder, 0o700);
}

function devInfoText(address: string, pfAddress: string): string {
  return JSON.stringify(deviceInfo(address, pfAddress), null, 2) + '\n';
}

function lstatOf(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

function removeDerivedFile(file: string): void {
  // Something other than a regular file there is not ours any more (a runtime's MkdirAll of a
  // bind-mount source): left alone rather than failing every pass.
  if (lstatOf(file)?.isFile() === false) return;
  // Written without a `.prev` copy (DERIVED_FILE), so the file is all there is to remove.
  rmSync(file, { force: true });
}

/**
 * Moves what is at `path` aside to state-file's name for a garbled file (`<path>.corrupt-<time>`)
 * and returns the new name.
 */
function moveAside(path: string): string {
  const movedTo = corruptPath(path);
  renameSync(path, movedTo);
  return movedTo;
}

function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isSymbolicLink()) return 'a symlink';
  return 'not a regular file';
}

/** SR-IOV VFs selected by one pool of the config. */
export class SriovVfProvider implements DeviceProvider {
  readonly resourceName: string;
  private vfs: AssignedVf[] = [];
  private config: PoolConfig;
  private hugepages: HugepagesConfig;
  private readonly written = new Set<string>();
  private cdiText = '';
  /**
   * The devices the CDI spec on disk names. Allocate gives CDI names only for these: a name the
   * spec lacks (its last write failed) fails the container's creation in the runtime
   * ("unresolvable CDI devices"), where the response's device nodes and env alone still work.
   */
  private cdiListed = new Set<string>();
  /** Files of an earlier run not looked at yet (read back on the first update). */
  private adopted = false;

  constructor(
    pool: PoolConfig,
    config: PluginConfig,
    private readonly settings: AllocationSettings,
  ) {
    this.config = pool;
    this.hugepages = config.hugepages;
    this.resourceName = pool.resourceName;
  }

  get pool(): string {
    return this.config.name;
  }

  get policy(): AllocationPolicy {
    return this.config.allocationPolicy;
  }

  update(host: HostSnapshot, config: PluginConfig): void {
    this.config = config.pools.find((p) => p.name === this.config.name) ?? this.config;
    this.hugepages = config.hugepages;
    this.vfs = host.vfsByPool.get(this.config.name) ?? [];
    if (!this.adopted) {
      this.adopted = true;
      this.adoptEarlierFiles();
    }
    const present = new Set(this.vfs.map((a) => this.devInfoPath(a.vf.address)));
    if (this.config.cdi) present.add(this.cdiSpecPath());
    for (const file of this.written) {
      if (!present.has(file)) {
        removeDerivedFile(file);
        this.written.delete(file);
      }
    }
    if (this.config.cdi) this.writeCdiSpec();
  }

  devices(): ListedDevice[] {
    return this.vfs.map(({ vf, problem }) => ({ id: vf.address, problem, numaNode: vf.numaNode }));
  }

  placements(): ReadonlyMap<string, Placement> {
    return new Map(
      this.vfs.map(({ vf }) => [
        vf.address,
        { id: vf.address, numaNode: vf.numaNode, group: vf.pfAddress, order: vf.index },
      ]),
    );
  }

  /** NPWG layout: <dir>/<resource name, "/" → "-">-<device ID>-device.json */
  devInfoPath(address: string): string {
    return join(
      this.settings.devInfoDir,
      `${this.resourceName.replace(/\//g, '-')}-${address}-device.json`,
    );
  }

  private cdiKind(): string {
    return this.resourceName;
  }

  /**
   * Takes over the device-info files an earlier run of the plugin left (it crashed, or was
   * killed: pods that run keep using them), so they are kept up to date and removed with the
   * rest. A file that does not parse (cut short or garbled) is moved aside and, while its VF is
   * still in the pool, written again from the host; a garbled CDI spec likewise. Each such file
   * is logged with its parse error.
   */
  private adoptEarlierFiles(): void {
    const prefix = `${this.resourceName.replace(/\//g, '-')}-`;
    let names: string[] = [];
    try {
      names = readdirSync(this.settings.devInfoDir);
    } catch {
      // no folder yet: nothing left by anyone
    }
    const byAddress = new Map(this.vfs.map((a) => [a.vf.address, a.vf]));
    for (const name of names) {
      if (!name.startsWith(prefix) || !name.endsWith('-device.json')) continue;
      const address = name.slice(prefix.length, -'-device.json'.length);
      if (!PCI_ADDRESS.test(address)) continue;
      const file = join(this.settings.devInfoDir, name);
      const vf = byAddress.get(address);
      this.adoptFile(
        file,
        (text) => parseDeviceInfo(text, address),
        vf ? 'rewritten from the host' : 'its VF is gone; not rewritten',
        vf
          ? () => writeStateFileSync(file, devInfoText(vf.address, vf.pfAddress), DERIVED_FILE)
          : undefined,
      );
    }
    if (this.config.cdi) {
      // Rewritten by writeCdiSpec on this same update.
      this.adoptFile(
        this.cdiSpecPath(),
        (text) => parseCdiSpec(text, this.cdiKind()),
        'rewritten from the host',
      );
    }
  }

  /**
   * Adopts one file of an earlier run. Anything there that is not a regular file (a runtime may
   * have made a directory of a removed bind-mount source) is moved aside like a garbled file; an
   * error with one file is logged and the file skipped, so it never stops the daemon.
   */
  private adoptFile(
    file: string,
    parse: (text: string) => unknown,
    outcome: string,
    rewrite?: () => void,
  ): void {
    try {
      const st = lstatOf(file);
      if (st === undefined) return;
      let read: ReadStateResult<unknown>;
      if (st.isFile()) {
        read = readStateFileSync(file, parse);
        if (read.source === 'current') {
          this.written.add(file);
          return;
        }
      } else {
        read = { value: undefined, source: 'none', problems: [] };
        read.problems.push({ file, error: `${kindOf(st)}, not a file`, movedTo: moveAside(file) });
      }
      if (rewrite) {
        rewrite();
        this.written.add(file);
      }
      this.reportUnreadable(read, outcome);
    } catch (err) {
      this.settings.logger?.warn('cannot adopt a file of an earlier run; skipped', {
        resource: this.resourceName,
        file,
        error: err,
      });
    }
  }

  private reportUnreadable(read: ReadStateResult<unknown>, outcome: string): void {
    for (const p of read.problems) {
      this.settings.logger?.warn(`unreadable file of an earlier run moved aside; ${outcome}`, {
        resource: this.resourceName,
        file: p.file,
        error: p.error,
        ...(p.movedTo ? { movedTo: p.movedTo } : {}),
      });
    }
  }

  private cdiSpecPath(): string {
    return join(this.settings.cdiDir, `${this.resourceName.replace(/\//g, '-')}.json`);
  }

  private writeCdiSpec(): void {
    const spec = {
      cdiVersion: '0.6.0',
      kind: this.cdiKind(),
      devices: this.vfs.map(({ vf }) => ({
        name: vf.address,
        containerEdits: {
          env: [`FLOWLINE_CDI_PCI_ADDRESS=${vf.address}`],
          ...(this.config.deviceType === 'vfio-pci' && vf.iommuGroup !== undefined
            ? { deviceNodes: [{ path: join(this.settings.vfioDir, vf.iommuGroup) }] }
            : {}),
        },
      })),
      containerEdits:
        this.config.deviceType === 'vfio-pci'
          ? { deviceNodes: [{ path: join(this.settings.vfioDir, 'vfio') }] }
          : { env: [`FLOWLINE_CDI_KIND=${this.cdiKind()}`] },
    };
    const text = JSON.stringify(spec, null, 2) + '\n';
    // Rewrite only on change: update() runs on every rescan.
    const onDisk = existsSync(this.cdiSpecPath());
    if (text === this.cdiText && onDisk) return;
    if (!onDisk) this.cdiListed.clear();
    mkdirSync(this.settings.cdiDir, { recursive: true });
    writeStateFileSync(this.cdiSpecPath(), text, DERIVED_FILE);
    this.cdiText = text;
    this.cdiListed = new Set(spec.devices.map((d) => d.name));
    this.written.add(this.cdiSpecPath());
  }

  allocate(ids: string[]): dp.ContainerAllocateResponse {
    checkIds(this, ids);
    const chosen = this.vfs.filter((a) => ids.includes(a.vf.address));
    chosen.sort((x, y) => ids.indexOf(x.vf.address) - ids.indexOf(y.vf.address));
    const envs: Record<string, string> = { [pciEnvName(this.resourceName)]: ids.join(',') };
    const devices: dp.DeviceSpec[] = [];
    const mounts: dp.Mount[] = [];
    if (this.config.deviceType === 'vfio-pci') {
      const vfio = join(this.settings.vfioDir, 'vfio');
      devices.push({ hostPath: vfio, containerPath: '/dev/vfio/vfio', permissions: 'rw' });
      for (const group of new Set(chosen.map((a) => a.vf.iommuGroup ?? ''))) {
        devices.push({
          hostPath: join(this.settings.vfioDir, group),
          containerPath: `/dev/vfio/${group}`,
          permissions: 'rw',
        });
      }
    } else {
      envs[netdevEnvName(this.resourceName)] = chosen.map((a) => this.netdevEntry(a)).join(',');
    }
    const huge = hugepageAllocation(this.hugepages, this.pool, ids, this.settings.logger);
    if (huge) {
      mounts.push(huge.mount);
      Object.assign(envs, huge.env);
    }
    // Without the mount too: a pod's own HugePages emptyDir still needs the EAL sized.
    if (this.config.hugepagesMb !== undefined)
      envs[HUGEPAGES_MB_ENV] = String(this.config.hugepagesMb);
    mkdirSync(this.settings.devInfoDir, { recursive: true });
    for (const { vf } of chosen) {
      const file = this.devInfoPath(vf.address);
      this.clearNonFile(file);
      writeStateFileSync(file, devInfoText(vf.address, vf.pfAddress), DERIVED_FILE);
      this.written.add(file);
      mounts.push({ hostPath: file, containerPath: file, readOnly: true });
    }
    return { envs, mounts, devices, annotations: {}, cdiDevices: this.cdiDevices(ids) };
  }

  /**
   * The VF's netdev name as its FLOWLINE_NETDEV_* entry, or '' when it has none or one that is
   * not a plain name (logged). Linux takes any byte but '/', ':' and whitespace, and a pod that
   * held the VF may have renamed it: a ',' would shift the names of the other VFs in the list.
   */
  private netdevEntry({ vf }: AssignedVf): string {
    const name = vf.netdevs[0];
    if (name === undefined || SAFE_NETDEV_NAME.test(name)) return name ?? '';
    this.settings.logger?.warn('VF netdev name is not a plain interface name; its entry is empty', {
      resource: this.resourceName,
      device: vf.address,
      netdev: name,
      env: netdevEnvName(this.resourceName),
    });
    return '';
  }

  /** CDI names for ids when the spec on disk names them all, else none (logged). */
  private cdiDevices(ids: string[]): dp.CDIDevice[] {
    if (!this.config.cdi) return [];
    const missing = ids.filter((id) => !this.cdiListed.has(id));
    if (missing.length === 0) return ids.map((id) => ({ name: `${this.cdiKind()}=${id}` }));
    this.settings.logger?.warn(
      'CDI spec does not name the devices (its last write failed): allocated without CDI names',
      { pool: this.config.name, devices: missing, spec: this.cdiSpecPath() },
    );
    return [];
  }

  /**
   * A container restart after the file was removed can leave a directory at its path (the
   * runtime's MkdirAll of the bind-mount source), and the rename of writeStateFileSync cannot
   * replace it. sriov-network-device-plugin removes whatever is there (a file or an empty
   * directory) before writing, so its operators expect Allocate to just work: we do the same but
   * move it aside, as adoption does, so nothing is lost; only when that fails is Allocate refused.
   */
  private clearNonFile(file: string): void {
    const st = lstatOf(file);
    if (st === undefined || st.isFile()) return;
    let movedTo: string;
    try {
      movedTo = moveAside(file);
    } catch (err) {
      throw new DevicePluginError(
        `device-info path ${file} is ${kindOf(st)} and cannot be moved aside ` +
          `(${(err as Error).message}); remove it so Allocate can write the file`,
        { cause: err },
      );
    }
    this.settings.logger?.warn('device-info path was not a file; moved aside and rewritten', {
      resource: this.resourceName,
      file,
      error: `${kindOf(st)}, not a file`,
      movedTo,
    });
  }

  cleanup(): void {
    for (const file of this.written) removeDerivedFile(file);
    this.written.clear();
    this.cdiText = '';
    this.cdiListed.clear();
  }
}

/**
 * Most hugepages of one size advertised as devices (one per page). ListAndWatch sends every
 * device in one message, kubelet's client takes at most 4 MiB (gRPC's default) and a device is
 * ~35 bytes: 65,536 (128 GiB of 2Mi pages, 64 TiB of 1Gi) keeps it well under. A count above it
 * read from sysfs (nr_hugepages) is refused rather than allocated as an array.
 */
export const MAX_HUGEPAGE_DEVICES = 65_536;

/**
 * Hugepages of one size as a resource of their own (flowline.io/hugepages-2Mi): one device per
 * page, on the NUMA node that holds it, for clusters that do not account hugepages natively.
 */
export class HugepageProvider implements DeviceProvider {
  readonly pool: string;
  readonly resourceName: string;
  readonly policy: AllocationPolicy = 'pack';
  private list: ListedDevice[] = [];
  private hugepages: HugepagesConfig;

  constructor(
    readonly sizeName: string,
    config: PluginConfig,
    private readonly logger?: Logger,
  ) {
    this.pool = `hugepages-${sizeName}`;
    this.resourceName = resourceNameOf(this.pool);
    this.hugepages = config.hugepages;
  }

  private sizeKb = 0;

  update(host: HostSnapshot, config: PluginConfig): void {
    this.hugepages = config.hugepages;
    const perNode = host.hugepages.perNode.filter((h) => h.sizeName === this.sizeName);
    const source =
      perNode.length > 0
        ? perNode
        : host.hugepages.system.filter((h) => h.sizeName === this.sizeName);
    const total = source.reduce((sum, h) => sum + h.total, 0);
    if (total > MAX_HUGEPAGE_DEVICES) {
      // Keeps the last list: a count this large is more likely a bad read than real pages.
      throw new DevicePluginError(
        `sysfs reports ${total} hugepages of ${this.sizeName}, over the ${MAX_HUGEPAGE_DEVICES} ` +
          'devices one resource can advertise (one ListAndWatch message); check nr_hugepages, ' +
          'use larger pages, or leave this size out of hugepages.sizes',
      );
    }
    this.sizeKb = source[0]?.sizeKb ?? this.sizeKb;
    this.list = source.flatMap((h) =>
      Array.from({ length: h.total }, (_, i) => ({
        id: `${this.sizeName}-${h.numaNode === undefined ? 'any' : `node${h.numaNode}`}-${i}`,
        problem: undefined,
        numaNode: h.numaNode,
      })),
    );
  }

  devices(): ListedDevice[] {
    return this.list;
  }

  placements(): ReadonlyMap<string, Placement> {
    return new Map(
      this.list.map((d) => [
        d.id,
        {
          id: d.id,
          numaNode: d.numaNode,
          group: String(d.numaNode),
          order: Number(d.id.slice(d.id.lastIndexOf('-') + 1)),
        },
      ]),
    );
  }

  allocate(ids: string[]): dp.ContainerAllocateResponse {
    checkIds(this, ids);
    const huge = hugepageAllocation(this.hugepages, this.pool, ids, this.logger);
    return {
      envs: {
        ...huge?.env,
        [HUGEPAGES_MB_ENV]: String(Math.floor((ids.length * this.sizeKb) / 1024)),
      },
      mounts: huge ? [huge.mount] : [],
      devices: [],
      annotations: {},
      cdiDevices: [],
    };
  }

  cleanup(): void {
    // Nothing written: hugepage allocations only mount and set env.
  }
}

/** Hugepage sizes to advertise: the configured ones, else every size the host has pages of. */
function hugepageSizes(config: PluginConfig, host: HostSnapshot): string[] {
  if (!config.hugepages.resource) return [];
  if (config.hugepages.sizes) return config.hugepages.sizes;
  return [...new Set(host.hugepages.system.filter((h) => h.total > 0).map((h) => h.sizeName))];
}

/** What planProviders decided: the providers to serve and which of them failed to update. */
export interface ProviderPlan {
  providers: Map<string, DeviceProvider>;
  /** Errors of providers whose update threw, by resource name; they keep what they had. */
  failures: Map<string, Error>;
}

/**
 * The factory: which providers a config asks for. Existing providers are kept (they hold
 * written-file state and their servers keep serving); new ones are created; the caller stops
 * the rest. Each provider is updated on its own: one that throws (a bad sysfs count, a CDI
 * folder that cannot be written) is reported in `failures` and never stops the others.
 */
export function planProviders(
  config: PluginConfig,
  host: HostSnapshot,
  existing: ReadonlyMap<string, DeviceProvider>,
  settings: AllocationSettings,
): ProviderPlan {
  const providers = new Map<string, DeviceProvider>();
  for (const pool of config.pools) {
    providers.set(
      pool.resourceName,
      existing.get(pool.resourceName) ?? new SriovVfProvider(pool, config, settings),
    );
  }
  for (const size of hugepageSizes(config, host)) {
    const name = resourceNameOf(`hugepages-${size}`);
    providers.set(name, existing.get(name) ?? new HugepageProvider(size, config, settings.logger));
  }
  const failures = new Map<string, Error>();
  for (const [name, provider] of providers) {
    try {
      provider.update(host, config);
    } catch (err) {
      failures.set(name, err instanceof Error ? err : new Error(String(err)));
    }
  }
  return { providers, failures };
}
