import { readFileSync } from 'node:fs';
import { ConfigError } from './errors';
import { envSuffix, extendedResourceNameProblem, resourceNameOf } from './names';
import { hugepageSizeName } from './sysfs';

export type DeviceType = 'netdevice' | 'vfio-pci';
export type AllocationPolicy = 'spread' | 'pack';

/** `ens1f0#0-3,6`: the PF's netdev name and, optionally, which VF indexes. */
export interface PfNameSelector {
  pf: string;
  /** undefined: every VF of the PF */
  vfs: Array<[number, number]> | undefined;
}

export interface Selectors {
  vendors?: string[];
  devices?: string[];
  drivers?: string[];
  pfNames?: PfNameSelector[];
  numaNodes?: number[];
}

export interface PoolConfig {
  name: string;
  resourceName: string;
  deviceType: DeviceType;
  selectors: Selectors;
  allocationPolicy: AllocationPolicy;
  /** Also return CDI device names (flowline.io/<pool>=<PCI address>) and write a CDI spec. */
  cdi: boolean;
  /** FLOWLINE_HUGEPAGES_MB for containers given devices of this pool; unset when undefined. */
  hugepagesMb: number | undefined;
}

export interface HugepagesConfig {
  /**
   * Mount a hugetlbfs folder of this allocation's own (`<hostPath>/<pool>-<first device ID>`)
   * into every container that gets a device. Off unless `resource` is on.
   */
  mount: boolean;
  hostPath: string;
  containerPath: string;
  /** Advertise hugepages as resources of their own (flowline.io/hugepages-2Mi, ...). */
  resource: boolean;
  /** Sizes to advertise when `resource` is on, e.g. ["2Mi"]; default: every size with pages. */
  sizes: string[] | undefined;
}

export interface PluginConfig {
  pools: PoolConfig[];
  hugepages: HugepagesConfig;
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function onlyKeys(obj: Json, field: string, allowed: string[]): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) {
      throw new ConfigError(
        field === '' ? key : `${field}.${key}`,
        'unknown setting',
        `use one of ${allowed.join(', ')}`,
      );
    }
  }
}

function stringList(
  value: unknown,
  field: string,
  check?: (s: string, f: string) => string,
): string[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw new ConfigError(
      field,
      'must be a non-empty array of strings',
      'list at least one value or leave the selector out',
    );
  }
  return value.map((item, i) => {
    const f = `${field}[${i}]`;
    if (typeof item !== 'string' || item === '') {
      throw new ConfigError(
        f,
        `must be a non-empty string, got ${JSON.stringify(item)}`,
        'quote the value',
      );
    }
    return check ? check(item, f) : item;
  });
}

function hexId(value: string, field: string): string {
  const v = value.toLowerCase().replace(/^0x/, '');
  if (!/^[0-9a-f]{4}$/.test(v)) {
    throw new ConfigError(
      field,
      `"${value}" is not a 4-digit hex PCI ID`,
      'write it as in lspci -nn, e.g. "8086" or "154c"',
    );
  }
  return v;
}

/** Parses `ens1f0`, `ens1f0#3`, `ens1f0#0-3`, `ens1f0#0-1,4-5`. */
export function parsePfName(value: string, field: string): PfNameSelector {
  const [pf = '', ranges, extra] = value.split('#');
  const fix =
    'write the PF netdev name, optionally with VF indexes: "ens1f0", "ens1f0#0-3" or "ens1f0#0-1,6"';
  if (extra !== undefined || !/^[A-Za-z0-9_.:-]{1,15}$/.test(pf)) {
    throw new ConfigError(field, `"${value}" is not a PF name with optional VF ranges`, fix);
  }
  if (ranges === undefined) return { pf, vfs: undefined };
  const vfs = ranges.split(',').map((part): [number, number] => {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) throw new ConfigError(field, `"${part}" in "${value}" is not a VF index or range`, fix);
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    if (to < from) {
      throw new ConfigError(
        field,
        `range "${part}" in "${value}" ends before it starts`,
        'write low-high, e.g. 0-3',
      );
    }
    return [from, to];
  });
  return { pf, vfs };
}

function parseSelectors(value: unknown, field: string): Selectors {
  if (value === undefined) return {};
  if (!isObject(value)) {
    throw new ConfigError(
      field,
      'must be an object',
      'e.g. {"vendors": ["8086"], "pfNames": ["ens1f0#0-3"]}',
    );
  }
  onlyKeys(value, field, ['vendors', 'devices', 'drivers', 'pfNames', 'numaNodes']);
  const s: Selectors = {};
  if (value.vendors !== undefined) s.vendors = stringList(value.vendors, `${field}.vendors`, hexId);
  if (value.devices !== undefined) s.devices = stringList(value.devices, `${field}.devices`, hexId);
  if (value.drivers !== undefined) s.drivers = stringList(value.drivers, `${field}.drivers`);
  if (value.pfNames !== undefined) {
    s.pfNames = stringList(value.pfNames, `${field}.pfNames`).map((p, i) =>
      parsePfName(p, `${field}.pfNames[${i}]`),
    );
  }
  if (value.numaNodes !== undefined) {
    const nodes = value.numaNodes;
    if (!Array.isArray(nodes) || nodes.length === 0) {
      throw new ConfigError(
        `${field}.numaNodes`,
        'must be a non-empty array of NUMA node numbers',
        'e.g. [0] or [0, 1]',
      );
    }
    s.numaNodes = nodes.map((n, i) => {
      if (!Number.isInteger(n) || (n as number) < 0) {
        throw new ConfigError(
          `${field}.numaNodes[${i}]`,
          `${JSON.stringify(n)} is not a NUMA node number`,
          'use 0, 1, ...',
        );
      }
      return n as number;
    });
  }
  return s;
}

function oneOf<T extends string>(
  value: unknown,
  field: string,
  allowed: readonly T[],
  fallback: T,
): T {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !allowed.includes(value as T)) {
    throw new ConfigError(
      field,
      `${JSON.stringify(value)} is not allowed`,
      `use one of ${allowed.join(', ')}`,
    );
  }
  return value as T;
}

function bool(value: unknown, field: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean')
    throw new ConfigError(field, `${JSON.stringify(value)} is not a boolean`, 'use true or false');
  return value;
}

function absPath(value: unknown, field: string, fallback: string): string {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !value.startsWith('/')) {
    throw new ConfigError(
      field,
      `${JSON.stringify(value)} is not an absolute path`,
      'write a path starting with /',
    );
  }
  return value;
}

function parsePool(value: unknown, field: string): PoolConfig {
  if (!isObject(value))
    throw new ConfigError(
      field,
      'must be an object',
      'e.g. {"name": "sriov_vf", "selectors": {...}}',
    );
  onlyKeys(value, field, [
    'name',
    'deviceType',
    'selectors',
    'allocationPolicy',
    'cdi',
    'hugepagesMb',
  ]);
  if (typeof value.name !== 'string') {
    throw new ConfigError(
      `${field}.name`,
      'is missing or not a string',
      'name the pool, e.g. "sriov_vf"; it becomes flowline.io/<name>',
    );
  }
  const resourceName = resourceNameOf(value.name);
  const problem = extendedResourceNameProblem(resourceName);
  if (problem) {
    throw new ConfigError(
      `${field}.name`,
      `"${resourceName}" is not a valid extended resource name: ${problem}`,
      'pick a name like "sriov_vf" or "vf-numa0"',
    );
  }
  if (value.name.startsWith('hugepages-')) {
    throw new ConfigError(
      `${field}.name`,
      `"${value.name}" is reserved for hugepage resources`,
      'pick another pool name',
    );
  }
  const hugepagesMb = value.hugepagesMb;
  if (
    hugepagesMb !== undefined &&
    (!Number.isInteger(hugepagesMb) || (hugepagesMb as number) <= 0)
  ) {
    throw new ConfigError(
      `${field}.hugepagesMb`,
      `${JSON.stringify(hugepagesMb)} is not a positive integer`,
      'give the NF memory in MiB, e.g. 512',
    );
  }
  const cdi = bool(value.cdi, `${field}.cdi`, false);
  // The CDI spec's class name rule: runtimes refuse a spec whose kind breaks it.
  if (cdi && !/^[A-Za-z]([A-Za-z0-9_-]*[A-Za-z0-9])?$/.test(value.name)) {
    throw new ConfigError(
      `${field}.name`,
      `"${value.name}" cannot be a CDI class (starts with a letter, ends with a letter or digit, ` +
        'only letters, digits, "_", "-" between)',
      'rename the pool, e.g. "vf_1g", or turn cdi off',
    );
  }
  return {
    name: value.name,
    resourceName,
    deviceType: oneOf(
      value.deviceType,
      `${field}.deviceType`,
      ['netdevice', 'vfio-pci'] as const,
      'netdevice',
    ),
    selectors: parseSelectors(value.selectors, `${field}.selectors`),
    allocationPolicy: oneOf(
      value.allocationPolicy,
      `${field}.allocationPolicy`,
      ['spread', 'pack'] as const,
      'spread',
    ),
    cdi,
    hugepagesMb: hugepagesMb as number | undefined,
  };
}

const SIZE_UNITS_KB = { Ki: 1, Mi: 1024, Gi: 1024 * 1024 } as const;

/** A hugepage size as Kubernetes writes it ("2Mi", "1Gi", "2048Ki"), in kB. */
export function parseHugepageSize(value: string, field: string): number {
  const m = /^(\d{1,10})(Ki|Mi|Gi)$/.exec(value);
  const kb = m ? Number(m[1]) * SIZE_UNITS_KB[m[2] as keyof typeof SIZE_UNITS_KB] : 0;
  // Hugepage sizes are the base page size times a power of two, so a power of two of 4Ki or more.
  if (!Number.isSafeInteger(kb) || kb < 4 || !Number.isInteger(Math.log2(kb))) {
    throw new ConfigError(
      field,
      `"${value}" is not a hugepage size (a power of two with Ki, Mi or Gi, at least 4Ki)`,
      'write it as Kubernetes does: "2Mi" or "1Gi"',
    );
  }
  return kb;
}

function parseHugepages(value: unknown, field: string): HugepagesConfig {
  const v = value ?? {};
  if (!isObject(v)) throw new ConfigError(field, 'must be an object', 'e.g. {"resource": true}');
  onlyKeys(v, field, ['mount', 'hostPath', 'containerPath', 'resource', 'sizes']);
  let sizes: string[] | undefined;
  if (v.sizes !== undefined) {
    // Canonical names, as sysfs sizes are named: "2048Ki" and "2Mi" are one resource.
    const names = stringList(v.sizes, `${field}.sizes`, (s, f) =>
      hugepageSizeName(parseHugepageSize(s, f)),
    );
    sizes = [...new Set(names)];
  }
  const resource = bool(v.resource, `${field}.resource`, false);
  return {
    // Off by default: kubelet's per-pod HugePages emptyDir is how a pod gets hugetlbfs, and a
    // mount at the same path collides with it. Pages advertised as flowline.io resources have no
    // such emptyDir (the cluster does not account them), so there the mount stays the default.
    mount: bool(v.mount, `${field}.mount`, resource),
    hostPath: absPath(v.hostPath, `${field}.hostPath`, '/dev/hugepages'),
    containerPath: absPath(v.containerPath, `${field}.containerPath`, '/dev/hugepages'),
    resource,
    sizes,
  };
}

/** Validates a parsed JSON config. Every error names the offending field and how to fix it. */
export function parseConfig(value: unknown): PluginConfig {
  if (!isObject(value))
    throw new ConfigError('(top level)', 'must be a JSON object', 'write {"pools": [...]}');
  onlyKeys(value, '', ['pools', 'hugepages']);
  if (!Array.isArray(value.pools)) {
    throw new ConfigError(
      'pools',
      'is missing or not an array',
      'list the pools: {"pools": [{"name": "sriov_vf", ...}]}',
    );
  }
  const pools = value.pools.map((p, i) => parsePool(p, `pools[${i}]`));
  const seen = new Map<string, { index: number; name: string }>();
  pools.forEach((p, i) => {
    const key = envSuffix(p.resourceName);
    const other = seen.get(key);
    if (other !== undefined) {
      throw new ConfigError(
        `pools[${i}].name`,
        `"${p.name}" clashes with pools[${other.index}] ("${other.name}"): same name or same env variable ${key}`,
        'give each pool a distinct name',
      );
    }
    seen.set(key, { index: i, name: p.name });
  });
  return { pools, hugepages: parseHugepages(value.hugepages, 'hugepages') };
}

/** Reads and validates the config file; a ConfigError names the file too. */
export function loadConfigFile(path: string): PluginConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(
      '(file)',
      `cannot read: ${(err as Error).message}`,
      'pass an existing JSON file with --config',
      path,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(
      '(file)',
      `not JSON: ${(err as Error).message}`,
      'fix the JSON syntax',
      path,
    );
  }
  try {
    return parseConfig(json);
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError(err.field, err.problem, err.fix, path);
    throw err;
  }
}
