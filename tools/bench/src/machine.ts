/**
 * The processor a benchmark ran on, as the kernel reports it. Absolute figures (Mpps, cycles a
 * packet) and even the ratios to peers move with the processor and its caches, and the machines
 * these benchmarks run on change from one session to the next: a result file names its own.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

export interface CpuCache {
  level: number;
  type: string;
  /** as sysfs gives it, e.g. "2048K" */
  size: string;
  /** the CPUs that share it, e.g. "0-1" */
  sharedWith: string;
}

export interface CpuInfo {
  model: string;
  /** "family F model M stepping S" (what a virtual machine's CPUID says) */
  id: string;
  cpus: number;
  caches: CpuCache[];
}

const read = (file: string): string | undefined => {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    return undefined;
  }
};

/** Reads /proc/cpuinfo and cpu0's caches in sysfs under `root` (a test gives a fake tree). */
export function cpuInfo(root = '/'): CpuInfo {
  const text = read(path.join(root, 'proc/cpuinfo')) ?? '';
  const field = (name: string): string | undefined =>
    new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm').exec(text)?.[1]?.trim();
  const cpus = text.split('\n').filter((l) => /^processor\s*:/.test(l)).length;
  const id = ['cpu family', 'model', 'stepping']
    .flatMap((k) => {
      const v = field(k);
      return v === undefined ? [] : [`${k.replace('cpu ', '')} ${v}`];
    })
    .join(' ');
  const dir = path.join(root, 'sys/devices/system/cpu/cpu0/cache');
  let entries: string[] = [];
  try {
    entries = readdirSync(dir).filter((e) => /^index\d+$/.test(e));
  } catch {
    // no sysfs cache description (a container may hide it): the model alone then
  }
  const caches = entries
    .map((e) => ({
      level: Number(read(path.join(dir, e, 'level'))),
      type: read(path.join(dir, e, 'type')) ?? '',
      size: read(path.join(dir, e, 'size')) ?? '',
      sharedWith: read(path.join(dir, e, 'shared_cpu_list')) ?? '',
    }))
    .filter((c) => Number.isInteger(c.level) && c.level > 0 && c.size)
    .sort((a, b) => a.level - b.level || a.type.localeCompare(b.type));
  return { model: field('model name') ?? 'unknown processor', id, cpus, caches };
}

/** One line: "Intel(R) Xeon(R) Processor (family 6 model 167 stepping 1), 2 CPUs, L1d 48K, ..." */
export function formatCpu(c: CpuInfo): string {
  const name = (k: CpuCache): string =>
    `L${k.level}${k.type === 'Data' ? 'd' : k.type === 'Instruction' ? 'i' : ''}`;
  const caches = c.caches.map((k) => `${name(k)} ${k.size} (CPUs ${k.sharedWith})`);
  return [
    `${c.model}${c.id ? ` (${c.id})` : ''}`,
    `${c.cpus} CPU${c.cpus === 1 ? '' : 's'}`,
    ...caches,
  ].join(', ');
}
