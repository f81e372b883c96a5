/**
 * EAL lifecycle. DPDK allows one rte_eal_init per process and none after rte_eal_cleanup, so
 * this module holds the one Eal of the process. Options are typed and checked here first, so
 * that most mistakes are reported naming the option before DPDK sees them.
 */
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { cpus } from 'node:os';
import * as path from 'node:path';

import { EAL_PREFIX_RE, leftoverFiles } from './eal-files';
import { DpdkError, EalInitError, EalOptionError, EalStateError, nativeError } from './errors';
import { native } from './native';
import { isPciAddress, validateDevargs } from './devargs';

export interface EalOptions {
  /** CPU cores for EAL lcores; the first is the main lcore (this Node thread), the rest run pipeline workers. Default [0]. */
  lcores?: number[];
  /** Hugepage memory to preallocate, MiB (-m). Default: DPDK's (grow on demand). */
  memoryMb?: number;
  /** hugetlbfs mount to use (--huge-dir). Default: DPDK picks the mounted one. */
  hugeDir?: string;
  /** --file-prefix: names hugepage files and the runtime dir; must be unique per process. */
  filePrefix: string;
  /** --in-memory (default true): no hugepage or runtime files at all; nothing to clean up. */
  inMemory?: boolean;
  /** --no-huge: plain anonymous memory (tests only; vhost-user ports need hugepages). */
  noHuge?: boolean;
  /** Without inMemory: unlink hugepage files right after mapping them (default true). */
  hugeUnlink?: boolean;
  /** --single-file-segments (default true; virtio-user needs it to share memory with vhost). */
  singleFileSegments?: boolean;
  /** Virtual devices created at init (--vdev), e.g. from the devargs builders. */
  vdevs?: string[];
  /** PCI devices DPDK may probe (-a); when empty or absent EAL gets --no-pci. */
  pciAllow?: string[];
  /** IOVA mode. Default 'va' without PCI devices (gives mempools one contiguous region). */
  iovaMode?: 'va' | 'pa';
  /** --log-level, e.g. 'notice' or 'pmd.net.vhost:debug'. */
  logLevel?: string | string[];
  /** Extra EAL arguments appended verbatim (the escape hatch; prefer typed options). */
  extraArgs?: string[];
}

function check(cond: boolean, option: string, value: unknown, reason: string): void {
  if (!cond) throw new EalOptionError(option, value, reason);
}

/** Translates options to EAL argv (without argv[0]); throws EalOptionError naming the option. */
export function buildEalArgs(opts: EalOptions, hostCpus = cpus().length): string[] {
  const args: string[] = [];
  const lcores = opts.lcores ?? [0];
  check(Array.isArray(lcores) && lcores.length > 0, 'lcores', lcores, 'give at least one core');
  for (const c of lcores)
    check(
      Number.isInteger(c) && c >= 0 && c < hostCpus,
      'lcores',
      lcores,
      `core ${c} does not exist: this host has cores 0..${hostCpus - 1}`,
    );
  check(new Set(lcores).size === lcores.length, 'lcores', lcores, 'a core is listed twice');
  args.push('-l', lcores.join(','), '--main-lcore', String(lcores[0]));

  check(
    typeof opts.filePrefix === 'string' && EAL_PREFIX_RE.test(opts.filePrefix),
    'filePrefix',
    opts.filePrefix,
    'use 1-64 characters of [A-Za-z0-9_.-], not starting with ".", unique per process (e.g. "fl-<name>-<pid>")',
  );
  args.push('--file-prefix', opts.filePrefix);

  if (opts.memoryMb !== undefined) {
    check(
      Number.isInteger(opts.memoryMb) && opts.memoryMb > 0,
      'memoryMb',
      opts.memoryMb,
      'must be a positive integer number of MiB',
    );
    args.push('-m', String(opts.memoryMb));
  }
  if (opts.noHuge) {
    check(opts.hugeDir === undefined, 'hugeDir', opts.hugeDir, 'cannot be used with noHuge');
    args.push('--no-huge');
  } else {
    const inMemory = opts.inMemory ?? true;
    if (inMemory) args.push('--in-memory');
    else if (opts.hugeUnlink ?? true) args.push('--huge-unlink=always');
    if (opts.singleFileSegments ?? true) args.push('--single-file-segments');
    if (opts.hugeDir !== undefined) {
      check(
        typeof opts.hugeDir === 'string' && path.isAbsolute(opts.hugeDir),
        'hugeDir',
        opts.hugeDir,
        'must be an absolute path to a hugetlbfs mount',
      );
      args.push('--huge-dir', opts.hugeDir);
    }
  }
  const pci = opts.pciAllow ?? [];
  for (const a of pci)
    check(
      isPciAddress(a.split(',')[0] ?? ''),
      'pciAllow',
      a,
      'expected a PCI address like 0000:03:00.1',
    );
  if (pci.length === 0) args.push('--no-pci');
  else for (const a of pci) args.push('-a', a);
  const iova = opts.iovaMode ?? (pci.length === 0 ? 'va' : undefined);
  if (iova !== undefined) {
    check(iova === 'va' || iova === 'pa', 'iovaMode', iova, "must be 'va' or 'pa'");
    args.push(`--iova-mode=${iova}`);
  }
  for (const [i, v] of (opts.vdevs ?? []).entries()) {
    try {
      validateDevargs(v);
    } catch (e) {
      throw new EalOptionError(`vdevs[${i}]`, v, (e as Error).message);
    }
    check(!isPciAddress(v.split(',')[0] ?? ''), `vdevs[${i}]`, v, 'a PCI device goes in pciAllow');
    args.push('--vdev', v);
  }
  const levels = opts.logLevel === undefined ? [] : [opts.logLevel].flat();
  for (const l of levels) args.push(`--log-level=${l}`);
  args.push('--no-telemetry');
  args.push(...(opts.extraArgs ?? []));
  return args;
}

const EAL_MESSAGES: [RegExp, string][] = [
  [/process type/i, '--proc-type'],
  [/main lcore/i, '--main-lcore'],
  [/lcore|coremask|core list|cores/i, '-l'],
  [/file.?prefix/i, '--file-prefix'],
  [/huge.?dir|hugetlbfs/i, '--huge-dir'],
  [/socket.?mem/i, '--socket-mem'],
  [/memory|hugepage/i, '-m'],
  [/vdev|virtual device|driver|probe/i, '--vdev'],
  [/pci|allow/i, '-a'],
  [/iova/i, '--iova-mode'],
  [/log.?level/i, '--log-level'],
];

/** Lines of the EAL log that explain a failure, and the EAL argument they name if any. */
export function explainEalLog(log: string): { argument?: string; lines: string[] } {
  const lines = log
    .split('\n')
    .map((l) => l.trim())
    .filter((l) =>
      /error|invalid|cannot|can't|fail|unable|not |no |ignored|unrecognized|unknown/i.test(l),
    )
    .filter((l) => !/^EAL: (Detected|No free|No available)/.test(l));
  for (const l of lines) {
    if (/Invalid 'command line' arguments/.test(l)) continue;
    const opt = /(--?[a-z][\w-]*)/.exec(l.replace(/^EAL:\s*/, ''));
    if (opt && opt[1]!.length > 2) return { argument: opt[1], lines };
    for (const [re, arg] of EAL_MESSAGES) if (re.test(l)) return { argument: arg, lines };
  }
  return { lines };
}

/** hugetlbfs mounts from /proc/mounts. */
export function hugetlbfsMounts(): string[] {
  try {
    return readFileSync('/proc/mounts', 'utf8')
      .split('\n')
      .map((l) => l.split(' '))
      .filter((f) => f[2] === 'hugetlbfs')
      .map((f) => f[1]!);
  } catch {
    return [];
  }
}

export interface Lcores {
  main: number;
  workers: number[];
}

export class Eal {
  private cleaned = false;
  private readonly cleanups = new Set<() => void>();

  constructor(
    readonly options: Readonly<EalOptions>,
    readonly args: readonly string[],
    /** EAL's own log of the init (captured, not printed). */
    readonly initLog: string,
  ) {}

  get running(): boolean {
    return !this.cleaned;
  }

  /** EAL lcores: the main one (this thread) and the workers free for pipelines. */
  lcores(): Lcores {
    this.assertRunning();
    return native().lcores();
  }

  /**
   * Bytes allocated from DPDK's heap (rte_malloc: tables, rings, pools' memory), all sockets:
   * the difference across a table build is that table's hugepage memory.
   */
  heapBytes(): number {
    this.assertRunning();
    return native().heapBytes();
  }

  /**
   * How long a cache line written by this (the main) lcore takes to reach worker `lcore` and come
   * back written by it: the median of 5 batches of round trips, in TSC cycles and nanoseconds.
   * Every pair of polling cores pays about this for each line they hand each other (a vhost-user
   * virtqueue's descriptors and indexes, a packet's data), so it says how far a two-core path can
   * go on this machine. Blocks this thread for the round trips (20,000 by default: milliseconds).
   * Throws DpdkError when `lcore` is not an idle worker or does not answer within 5 s.
   */
  lcoreRoundTrip(lcore: number, rounds = 20_000): { lcore: number; cycles: number; ns: number } {
    this.assertRunning();
    const n = native();
    let cycles: number;
    try {
      cycles = n.lcoreRoundTrip(lcore, rounds);
    } catch (e) {
      const x = nativeError(e);
      throw new DpdkError(x.message, 'lcore_round_trip', x.errno);
    }
    return { lcore, cycles, ns: (cycles * 1e9) / n.tscHz() };
  }

  /** @internal resources (ports, pools, pipelines) register their teardown here. */
  track(fn: () => void): () => void {
    this.cleanups.add(fn);
    return () => this.cleanups.delete(fn);
  }

  assertRunning(): void {
    if (this.cleaned)
      throw new EalStateError(
        'the EAL was cleaned up; DPDK cannot initialise it again in this process',
      );
  }

  /**
   * Stops pipelines, closes ports, frees pools, runs rte_eal_cleanup, then removes any hugepage
   * file or runtime dir left under this prefix. Returns the files it had to remove (none with
   * the default --in-memory).
   */
  cleanup(): string[] {
    if (this.cleaned) return [];
    for (const fn of [...this.cleanups].reverse()) {
      try {
        fn();
      } catch {
        // keep tearing down the rest
      }
    }
    this.cleanups.clear();
    this.cleaned = true;
    current = undefined;
    native().ealCleanup();
    const left = leftoverFiles(this.options.filePrefix, { hugeDir: this.options.hugeDir });
    for (const f of left) rmSync(f, { recursive: true, force: true });
    return left;
  }
}

let current: Eal | undefined;

/** The running EAL of this process, if any. */
export function currentEal(): Eal | undefined {
  return current;
}

/**
 * Initialises the EAL once per process. Invalid options throw EalOptionError (the process stays
 * usable); DPDK's own refusal throws EalInitError with the EAL log and the argument it named.
 */
export function initEal(opts: EalOptions): Eal {
  const state = native().ealState();
  if (state === 'running')
    throw new EalStateError(
      'the EAL is already running in this process: initEal() may be called once',
    );
  if (state === 'failed')
    throw new EalStateError(
      'an earlier initEal failed inside DPDK, which keeps its parsed state: start a new process',
    );
  if (state === 'cleaned-up')
    throw new EalStateError(
      'the EAL was cleaned up in this process and DPDK cannot initialise it twice: start a new process',
    );
  const args = buildEalArgs(opts);
  if (opts.hugeDir !== undefined) {
    if (!existsSync(opts.hugeDir) || !statSync(opts.hugeDir).isDirectory())
      throw new EalOptionError(
        'hugeDir',
        opts.hugeDir,
        'does not exist; mount hugetlbfs there (tools/setup/setup.sh does)',
      );
    if (!hugetlbfsMounts().includes(opts.hugeDir))
      throw new EalOptionError(
        'hugeDir',
        opts.hugeDir,
        'is not a hugetlbfs mount (see /proc/mounts)',
      );
  }
  let log: string;
  try {
    log = native().ealInit(args);
  } catch (e) {
    const n = nativeError(e);
    const why = explainEalLog(n.log ?? '');
    throw new EalInitError(
      `${n.message}${why.argument ? ` (EAL argument ${why.argument})` : ''}${why.lines.length ? `: ${why.lines.join('; ')}` : ''}; args: ${args.join(' ')}`,
      args,
      n.log ?? '',
      why.argument,
      n.errno,
    );
  }
  current = new Eal(opts, args, log);
  return current;
}

export function requireEal(): Eal {
  if (!current) throw new EalStateError('the EAL is not running: call initEal() first');
  return current;
}

/**
 * The worker lcore a poller asks for, or the first worker when it asks for none; `refuse` makes
 * the error to throw (with what is wrong) when that is no worker lcore of this EAL.
 */
export function workerLcore(requested: number | undefined, refuse: (why: string) => Error): number {
  const workers = requireEal().lcores().workers;
  const lcore = requested ?? workers[0];
  if (lcore === undefined || !workers.includes(lcore))
    throw refuse(
      `${String(lcore)} is not an EAL worker lcore (workers: ${workers.join(',') || 'none'})`,
    );
  return lcore;
}
