import { execFileSync } from 'node:child_process';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { type StateFileProblem, readStateFileSync, writeStateFileSync } from '@flowline/state-file';
import { EmulationError, VfCreationError } from './errors';

/** One emulated PF: an X710-like NIC with SR-IOV. */
export interface EmulatedPfSpec {
  /** The PF's netdev name (pfNames selectors match it); at most 10 characters */
  name: string;
  numVfs: number;
  /** sriov_totalvfs, default max(8, numVfs) */
  totalVfs?: number;
  numaNode?: number;
  /** driver the VFs are bound to: iavf (kernel netdev, default) or vfio-pci */
  vfDriver?: string;
}

export interface EmulatedHostSpec {
  /** The folder that stands for /sys; the daemon gets it as --sysfs-root */
  root: string;
  pfs: EmulatedPfSpec[];
  /**
   * Netdevs as real veth interfaces (root only): the tree's net/<ifname> links to
   * /sys/class/net/<ifname> and the peers live in `netns`. Otherwise plain folders with an
   * operstate file.
   */
  veth: boolean;
  /** The namespace for veth peers, created and deleted by the tool; default flowline-emu */
  netns?: string;
  /** 2 MiB hugepages per NUMA node to describe, or 'host' to copy this host's counters */
  hugepages?: number | 'host';
  numaNodes?: number;
}

export const STATE_FILE = '.flowline-emulated.json';

/** The state file's content; throws on anything that is not a spec of this root. */
function parseSpec(text: string): EmulatedHostSpec {
  const spec = JSON.parse(text) as Partial<EmulatedHostSpec> | null;
  if (typeof spec !== 'object' || spec === null || !Array.isArray(spec.pfs))
    throw new Error('not an emulated host spec (no pfs list)');
  if (typeof spec.root !== 'string') throw new Error('names no root');
  for (const [i, pf] of spec.pfs.entries())
    if (typeof pf?.name !== 'string' || !Number.isInteger(pf.numVfs))
      throw new Error(`pfs[${i}] needs a name and an integer numVfs`);
  return spec as EmulatedHostSpec;
}
const VENDOR = '0x8086';
const PF_DEVICE = '0x1572';
const VF_DEVICE = '0x154c';
const PF_DRIVER = 'i40e';
const KERNEL_VF_DRIVER = 'iavf';

function ip(args: string[]): string {
  try {
    return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr?.trim() ?? '';
    throw new EmulationError(
      `ip ${args.join(' ')}`,
      stderr || (err as Error).message,
      'run as root with iproute2 installed',
      { cause: err },
    );
  }
}

export function pfAddress(pfIndex: number): string {
  return `0000:${(0x3b + pfIndex).toString(16).padStart(2, '0')}:00.0`;
}

export function vfAddress(pfIndex: number, vf: number): string {
  const dev = (2 + Math.floor(vf / 8)).toString(16).padStart(2, '0');
  return `0000:${(0x3b + pfIndex).toString(16).padStart(2, '0')}:${dev}.${vf % 8}`;
}

export function vfIfname(pf: string, vf: number): string {
  return `${pf}v${vf}`;
}

const vfIommuGroup = (pfIndex: number, vf: number): number => 100 + pfIndex * 100 + 1 + vf;

/** lstat, not exists: a dangling link is there too. */
const present = (path: string): boolean => lstatSync(path, { throwIfNoEntry: false }) !== undefined;

/**
 * A sysfs-shaped tree of SR-IOV PFs and VFs, laid out as the kernel lays out /sys
 * (bus/pci/devices links into devices/pci0000:00, driver and iommu_group links, virtfnN and
 * physfn, net/<ifname>, numa_node, sriov_totalvfs/sriov_numvfs, hugepage counters), and the
 * operations that change it as the kernel would: unbind/bind a driver, take a link down,
 * write sriov_numvfs.
 */
export class EmulatedHost {
  private constructor(readonly spec: EmulatedHostSpec) {}

  get root(): string {
    return this.spec.root;
  }

  get netns(): string {
    return this.spec.netns ?? 'flowline-emu';
  }

  static create(spec: EmulatedHostSpec): EmulatedHost {
    const names = new Set<string>();
    for (const pf of spec.pfs) {
      const total = pf.totalVfs ?? Math.max(8, pf.numVfs);
      if (!/^[A-Za-z][A-Za-z0-9_]{0,9}$/.test(pf.name) || names.has(pf.name)) {
        throw new EmulationError(
          `PF ${pf.name}`,
          'name must be unique, start with a letter and have at most 10 letters, digits or _',
          'pick names like ens1f0',
        );
      }
      if (!Number.isInteger(pf.numVfs) || pf.numVfs < 0 || pf.numVfs > total || total > 64) {
        throw new EmulationError(
          `PF ${pf.name}`,
          `numVfs ${pf.numVfs} must be 0..totalVfs (${total}), totalVfs at most 64`,
          'lower the VF count',
        );
      }
      names.add(pf.name);
    }
    if (existsSync(join(spec.root, STATE_FILE))) {
      throw new EmulationError(
        spec.root,
        'already holds an emulated host',
        'destroy it first (flowline-emulate destroy --root ...)',
      );
    }
    const host = new EmulatedHost(structuredClone(spec));
    mkdirSync(spec.root, { recursive: true });
    host.saveState();
    if (spec.veth && !existsSync(`/run/netns/${host.netns}`)) ip(['netns', 'add', host.netns]);
    for (const d of ['bus/pci/devices', 'devices/pci0000:00', 'kernel/iommu_groups', 'class/net']) {
      mkdirSync(join(spec.root, d), { recursive: true });
    }
    for (const d of [PF_DRIVER, KERNEL_VF_DRIVER, 'vfio-pci'])
      mkdirSync(join(spec.root, 'bus/pci/drivers', d), { recursive: true });
    host.writeHugepages();
    spec.pfs.forEach((pf, i) => host.createPf(pf, i));
    return host;
  }

  /**
   * Opens a tree made by create (by this process or another). A state file that does not parse
   * (a crash mid-write by an older version, a disk) is moved aside and the previous copy used;
   * `onProblem` hears of each such file with its parse error.
   */
  static open(root: string, onProblem?: (problem: StateFileProblem) => void): EmulatedHost {
    const file = join(root, STATE_FILE);
    const read = readStateFileSync(file, parseSpec);
    for (const p of read.problems) onProblem?.(p);
    if (read.value === undefined)
      throw new EmulationError(
        root,
        read.problems.length > 0
          ? `holds no readable emulated host state (${read.problems.map((p) => `${p.file}: ${p.error}`).join('; ')})`
          : 'holds no emulated host',
        read.problems.length > 0
          ? 'remove the folder (and the veths of --veth) and create it again'
          : 'create one first (flowline-emulate create --root ...)',
      );
    return new EmulatedHost(read.value);
  }

  private saveState(): void {
    writeStateFileSync(join(this.root, STATE_FILE), JSON.stringify(this.spec, null, 2) + '\n');
  }

  private p(...parts: string[]): string {
    return join(this.root, ...parts);
  }

  private deviceDir(address: string): string {
    return this.p('devices/pci0000:00', address);
  }

  private pfAt(i: number): EmulatedPfSpec {
    const pf = this.spec.pfs[i];
    if (!pf)
      throw new EmulationError(
        `PF #${i}`,
        'not in this emulated host',
        'use a PF index from the spec',
      );
    return pf;
  }

  private pfIndex(name: string): number {
    const i = this.spec.pfs.findIndex((pf) => pf.name === name);
    if (i < 0)
      throw new EmulationError(
        `PF ${name}`,
        'not in this emulated host',
        `use one of ${this.spec.pfs.map((p) => p.name).join(', ')}`,
      );
    return i;
  }

  private writeHugepages(): void {
    const nodes =
      this.spec.numaNodes ?? Math.max(1, ...this.spec.pfs.map((p) => (p.numaNode ?? 0) + 1));
    const counters = (dir: string, hostDir: string, perNode: number): void => {
      const d = join(dir, 'hugepages-2048kB');
      mkdirSync(d, { recursive: true });
      const read = (f: string): string => {
        try {
          return readFileSync(join(hostDir, 'hugepages-2048kB', f), 'utf8').trim();
        } catch {
          return '0';
        }
      };
      const host = this.spec.hugepages === 'host';
      for (const f of ['nr_hugepages', 'free_hugepages', 'surplus_hugepages']) {
        writeFileSync(join(d, f), `${host ? read(f) : f === 'surplus_hugepages' ? 0 : perNode}\n`);
      }
    };
    const perNode = typeof this.spec.hugepages === 'number' ? this.spec.hugepages : 0;
    counters(this.p('kernel/mm/hugepages'), '/sys/kernel/mm/hugepages', perNode * nodes);
    for (let n = 0; n < nodes; n++) {
      counters(
        this.p(`devices/system/node/node${n}/hugepages`),
        `/sys/devices/system/node/node${n}/hugepages`,
        perNode,
      );
    }
  }

  private createPciDevice(
    address: string,
    device: string,
    numa: number,
    group: number,
    driver: string | undefined,
  ): string {
    const dir = this.deviceDir(address);
    mkdirSync(join(dir, 'net'), { recursive: true });
    writeFileSync(join(dir, 'vendor'), `${VENDOR}\n`);
    writeFileSync(join(dir, 'device'), `${device}\n`);
    writeFileSync(join(dir, 'class'), '0x020000\n');
    writeFileSync(join(dir, 'numa_node'), `${numa}\n`);
    mkdirSync(this.p('kernel/iommu_groups', String(group), 'devices'), { recursive: true });
    symlinkSync(`../../../kernel/iommu_groups/${group}`, join(dir, 'iommu_group'));
    symlinkSync(
      `../../../../devices/pci0000:00/${address}`,
      this.p('kernel/iommu_groups', String(group), 'devices', address),
    );
    symlinkSync(`../../../devices/pci0000:00/${address}`, this.p('bus/pci/devices', address));
    if (driver) this.linkDriver(address, driver);
    return dir;
  }

  private linkDriver(address: string, driver: string): void {
    checkDriverName(driver, `driver of ${address}`);
    mkdirSync(this.p('bus/pci/drivers', driver), { recursive: true });
    symlinkSync(`../../../bus/pci/drivers/${driver}`, join(this.deviceDir(address), 'driver'));
    symlinkSync(
      `../../../../devices/pci0000:00/${address}`,
      this.p('bus/pci/drivers', driver, address),
    );
  }

  private addNetdev(address: string, ifname: string): void {
    const netDir = join(this.deviceDir(address), 'net');
    mkdirSync(netDir, { recursive: true });
    if (this.spec.veth) {
      ip(['link', 'add', ifname, 'type', 'veth', 'peer', 'name', ifname, 'netns', this.netns]);
      try {
        ip(['-n', this.netns, 'link', 'set', ifname, 'up']);
        ip(['link', 'set', ifname, 'up']);
        symlinkSync(`/sys/class/net/${ifname}`, join(netDir, ifname));
      } catch (err) {
        // Not yet listed under net/, so no removal would find it: delete the veth made here.
        try {
          ip(['link', 'del', ifname]);
        } catch {
          // gone already; err is what went wrong
        }
        throw err;
      }
    } else {
      mkdirSync(join(netDir, ifname));
      writeFileSync(join(netDir, ifname, 'operstate'), 'up\n');
      symlinkSync(`../../devices/pci0000:00/${address}/net/${ifname}`, this.p('class/net', ifname));
    }
  }

  private removeNetdevs(address: string): void {
    const netDir = join(this.deviceDir(address), 'net');
    for (const ifname of existsSync(netDir) ? readdirSync(netDir) : []) {
      if (this.spec.veth) {
        try {
          ip(['link', 'del', ifname]);
        } catch {
          // already gone (deleted by hand, or its namespace went away)
        }
      }
      rmSync(join(netDir, ifname), { recursive: true, force: true });
      rmSync(this.p('class/net', ifname), { force: true });
    }
  }

  private createPf(pf: EmulatedPfSpec, i: number): void {
    const address = pfAddress(i);
    const dir = this.createPciDevice(
      address,
      PF_DEVICE,
      pf.numaNode ?? 0,
      100 + i * 100,
      PF_DRIVER,
    );
    writeFileSync(join(dir, 'sriov_totalvfs'), `${pf.totalVfs ?? Math.max(8, pf.numVfs)}\n`);
    writeFileSync(join(dir, 'sriov_numvfs'), '0\n');
    this.addNetdev(address, pf.name);
    this.createVfs(i, 0, pf.numVfs);
  }

  /** Creates VFs from..to-1 and writes sriov_numvfs; all or none (VfCreationError). */
  private createVfs(i: number, from: number, to: number): void {
    const pf = this.pfAt(i);
    const pfAddr = pfAddress(i);
    // A failed call takes back only what it made: whatever stood in the VFs' places stays.
    const existed = new Set<string>();
    for (let vf = from; vf < to; vf++)
      for (const e of this.vfEntries(i, vf)) if (present(e)) existed.add(e);
    for (let vf = from; vf < to; vf++) {
      try {
        this.createVf(i, vf);
      } catch (err) {
        const made = `${vf - from} VFs made before it`;
        let undone: string | undefined;
        try {
          this.unmakeVfs(i, from, vf, existed);
        } catch (undoErr) {
          undone = (undoErr as Error).message; // reported with err, which stays the cause
        }
        throw new VfCreationError(
          pf.name,
          vf,
          vfAddress(i, vf),
          `could not be created (${(err as Error).message}); ` +
            (undone === undefined
              ? `the ${made} were removed and sriov_numvfs stays ${from}`
              : `removing the ${made} failed too (${undone})`),
          undone === undefined
            ? 'clear what is in its way (in the tree, or a host netdev of that name with --veth) ' +
                'and write sriov_numvfs again'
            : 'destroy the emulated host and create it again',
          { cause: err },
        );
      }
    }
    writeFileSync(join(this.deviceDir(pfAddr), 'sriov_numvfs'), `${to}\n`);
  }

  private createVf(i: number, vf: number): void {
    const pf = this.pfAt(i);
    const pfAddr = pfAddress(i);
    const address = vfAddress(i, vf);
    const driver = pf.vfDriver ?? KERNEL_VF_DRIVER;
    const dir = this.createPciDevice(
      address,
      VF_DEVICE,
      pf.numaNode ?? 0,
      vfIommuGroup(i, vf),
      driver,
    );
    symlinkSync(`../${pfAddr}`, join(dir, 'physfn'));
    if (driver !== 'vfio-pci') this.addNetdev(address, vfIfname(pf.name, vf));
    symlinkSync(`../${address}`, join(this.deviceDir(pfAddr), `virtfn${vf}`));
  }

  /** What creating the VF adds to the tree (its folder, links, iommu group), in that order. */
  private vfEntries(i: number, vf: number): string[] {
    const pf = this.pfAt(i);
    const address = vfAddress(i, vf);
    const driver = pf.vfDriver ?? KERNEL_VF_DRIVER;
    return [
      this.deviceDir(address),
      this.p('kernel/iommu_groups', String(vfIommuGroup(i, vf))),
      this.p('bus/pci/devices', address),
      this.p('bus/pci/drivers', driver),
      this.p('bus/pci/drivers', driver, address),
      this.p('class/net', vfIfname(pf.name, vf)),
      join(this.deviceDir(pfAddress(i)), `virtfn${vf}`),
    ];
  }

  /** Undoes createVf of from..failed (the failed one part-made), newest first. */
  private unmakeVfs(i: number, from: number, failed: number, existed: Set<string>): void {
    for (let vf = failed; vf >= from; vf--) {
      // The failed VF's netdev undid itself (addNetdev); the others' veths need `ip link del`.
      if (vf < failed) this.removeNetdevs(vfAddress(i, vf));
      for (const e of this.vfEntries(i, vf).reverse())
        if (!existed.has(e)) rmSync(e, { recursive: true, force: true });
    }
  }

  private removeVf(i: number, vf: number): void {
    const address = vfAddress(i, vf);
    rmSync(join(this.deviceDir(pfAddress(i)), `virtfn${vf}`), { force: true });
    this.removeNetdevs(address);
    for (const d of readdirSync(this.p('bus/pci/drivers')))
      rmSync(this.p('bus/pci/drivers', d, address), { force: true });
    rmSync(this.p('bus/pci/devices', address), { force: true });
    rmSync(this.p('kernel/iommu_groups', String(vfIommuGroup(i, vf))), {
      recursive: true,
      force: true,
    });
    rmSync(this.deviceDir(address), { recursive: true, force: true });
  }

  /** Writes sriov_numvfs as the kernel takes it: from 0 to N, or from N to 0. */
  setNumVfs(pfName: string, count: number): void {
    const i = this.pfIndex(pfName);
    const pfDir = this.deviceDir(pfAddress(i));
    const current = Number(readFileSync(join(pfDir, 'sriov_numvfs'), 'utf8'));
    const total = Number(readFileSync(join(pfDir, 'sriov_totalvfs'), 'utf8'));
    if (!Number.isInteger(count) || count < 0 || count > total) {
      throw new EmulationError(
        `sriov_numvfs of ${pfName}`,
        `${count} is outside 0..${total} (sriov_totalvfs)`,
        'pick a count within sriov_totalvfs',
      );
    }
    if (current !== 0 && count !== 0 && count !== current) {
      throw new EmulationError(
        `sriov_numvfs of ${pfName}`,
        `device busy: ${current} VFs exist`,
        'write 0 first, then the new count (as with the kernel)',
      );
    }
    if (count > current) this.createVfs(i, current, count);
    else {
      for (let vf = current - 1; vf >= count; vf--) this.removeVf(i, vf);
      writeFileSync(join(pfDir, 'sriov_numvfs'), `${count}\n`);
    }
    this.pfAt(i).numVfs = count;
    this.saveState();
  }

  private vfLocation(address: string): { i: number; vf: number } {
    for (const [i, pf] of this.spec.pfs.entries()) {
      for (let vf = 0; vf < pf.numVfs; vf++) if (vfAddress(i, vf) === address) return { i, vf };
    }
    throw new EmulationError(
      `VF ${address}`,
      'not in this emulated host',
      'list the VFs with `flowline-device-plugin inspect --sysfs-root <root>`',
    );
  }

  /** Unbinds the VF's driver; its netdev goes away with it, as with a real kernel driver. */
  unbind(address: string): void {
    this.vfLocation(address);
    this.removeNetdevs(address);
    for (const d of readdirSync(this.p('bus/pci/drivers')))
      rmSync(this.p('bus/pci/drivers', d, address), { force: true });
    rmSync(join(this.deviceDir(address), 'driver'), { force: true });
  }

  /** Binds the VF to a driver; a kernel netdev driver brings its netdev back. */
  bind(address: string, driver: string): void {
    const { i, vf } = this.vfLocation(address);
    checkDriverName(driver, `driver of ${address}`); // before unbinding: a refused bind changes nothing
    this.unbind(address);
    this.linkDriver(address, driver);
    if (driver !== 'vfio-pci') this.addNetdev(address, vfIfname(this.pfAt(i).name, vf));
  }

  /** Takes a netdev (PF or VF) link up or down. */
  setLink(ifname: string, state: 'up' | 'down'): void {
    // Only this host's netdevs: with veths the name goes to `ip link` (as root: eth0 would be the
    // machine's own NIC), without them it is a path under the tree (`..` would leave it).
    const ours = this.spec.pfs.flatMap((pf) => [
      pf.name,
      ...Array.from({ length: pf.numVfs }, (_, vf) => vfIfname(pf.name, vf)),
    ]);
    if (!ours.includes(ifname))
      throw new EmulationError(
        `netdev ${ifname}`,
        'not in this emulated host',
        `use a PF or VF interface name (${ours.join(', ')})`,
      );
    if (this.spec.veth) {
      ip(['link', 'set', ifname, state]);
      return;
    }
    const link = this.p('class/net', ifname);
    if (!existsSync(link))
      throw new EmulationError(
        `netdev ${ifname}`,
        'not in this emulated host',
        'use a PF or VF interface name',
      );
    writeFileSync(join(link, 'operstate'), `${state}\n`);
  }

  /** Deletes a VF's netdev while its driver stays bound (a netdev that vanished). */
  removeNetdev(address: string): void {
    this.vfLocation(address);
    this.removeNetdevs(address);
  }

  /** Deletes the veths, the namespace and the tree. Safe to call twice. */
  destroy(): void {
    this.spec.pfs.forEach((pf, i) => {
      for (let vf = 0; vf < pf.numVfs; vf++) this.removeNetdevs(vfAddress(i, vf));
      this.removeNetdevs(pfAddress(i));
    });
    if (this.spec.veth && existsSync(`/run/netns/${this.netns}`)) {
      try {
        ip(['netns', 'del', this.netns]);
      } catch {
        // someone else removed it
      }
    }
    rmSync(this.root, { recursive: true, force: true });
  }
}

/** A driver's name becomes a folder under bus/pci/drivers: a name, never a path. */
function checkDriverName(driver: string, what: string): void {
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(driver))
    throw new EmulationError(
      what,
      `"${driver}" is not a driver name (1-64 letters, digits, _ or -)`,
      'e.g. iavf, mlx5_core or vfio-pci',
    );
}

/** `ens1f0:4[:numa[:driver]]` → a PF spec. */
export function parsePfSpec(text: string): EmulatedPfSpec {
  const [name = '', vfs = '', numa, driver] = text.split(':');
  if (name === '' || !/^\d+$/.test(vfs) || (numa !== undefined && !/^\d+$/.test(numa))) {
    throw new EmulationError(
      `--pf ${text}`,
      'is not NAME:VFS[:NUMA[:VFDRIVER]]',
      'e.g. --pf ens1f0:4:0 or --pf ens2f0:2:1:vfio-pci',
    );
  }
  return {
    name,
    numVfs: Number(vfs),
    ...(numa === undefined ? {} : { numaNode: Number(numa) }),
    ...(driver === undefined
      ? {}
      : (checkDriverName(driver, `--pf ${text}`), { vfDriver: driver })),
  };
}
