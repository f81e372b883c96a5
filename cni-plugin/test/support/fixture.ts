import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { startOvsDpdk, type OvsDpdk } from '@flowline/ovs';
import { IN_PROCESS, runPlugin, type PluginEnv, type PluginRun } from './exec';
import { waitFor } from './wait';

/**
 * How the plugin runs: 'daemon' as deployed (the native executable hands each invocation to a
 * resident `flowline-cni daemon`), 'in-process' as without a daemon (the executable execs the
 * bundled plugin for the one invocation).
 */
export type PluginMode = 'daemon' | 'in-process';
export const PLUGIN_MODES: readonly PluginMode[] = ['daemon', 'in-process'];

/** A running `flowline-cni daemon` and what it has logged so far. */
export type DaemonProcess = ChildProcess & { log(): string };

/**
 * Starts `flowline-cni daemon` on `socket` and resolves once it accepts connections. Metrics
 * are off unless `args` say otherwise (daemons of parallel tests would share a port).
 */
export async function startDaemon(
  socket: string,
  args: string[] = ['--metrics-port', 'off'],
): Promise<DaemonProcess> {
  const child = spawn(IN_PROCESS, ['daemon', '--socket', socket, ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const daemon = Object.assign(child, { log: () => stderr });
  try {
    await waitFor(() => {
      if (daemon.exitCode !== null) throw new Error(`exited ${daemon.exitCode}`);
      return stderr.includes('"listening"') && existsSync(socket);
    }, `flowline-cni daemon to listen on ${socket}`);
  } catch (err) {
    daemon.kill('SIGKILL');
    throw new Error(
      `flowline-cni daemon did not start on ${socket}: ${(err as Error).message}: ${stderr}`,
    );
  }
  return daemon;
}

/** SIGTERM, then the exit (SIGKILL after `graceMs`): the daemon's own graceful stop. */
export async function stopDaemon(daemon: ChildProcess, graceMs = 10_000): Promise<number | null> {
  if (daemon.exitCode !== null || daemon.signalCode !== null) return daemon.exitCode;
  const exited = new Promise<number | null>((r) => daemon.once('exit', (code) => r(code)));
  daemon.kill('SIGTERM');
  const timer = setTimeout(() => daemon.kill('SIGKILL'), graceMs);
  try {
    return await exited;
  } finally {
    clearTimeout(timer);
  }
}

export const CNI_PATH = '/usr/lib/cni';

/**
 * One private OVS-DPDK, a socket dir, a host-local store and container netns for a test file,
 * all under names with this process's pid; `stop()` removes every one of them.
 */
export class CniFixture {
  ovs!: OvsDpdk;
  readonly id: string;
  readonly base: string;
  private daemon: DaemonProcess | undefined;
  get socketDir(): string {
    return `${this.base}/s`;
  }
  get ipamDir(): string {
    return `${this.base}/ipam`;
  }
  /** The device-info folder the fixture's configs name (the spec's default is host-wide). */
  get deviceInfoDir(): string {
    return `${this.base}/devinfo/cni`;
  }
  readonly network = 'flowline-test';
  private readonly netnsNames: string[] = [];

  constructor(readonly mode: PluginMode = 'daemon') {
    this.id = `${process.pid}${mode === 'daemon' ? 'd' : 'p'}`;
    this.base = `/tmp/flcni-${this.id}`;
  }

  /** What the daemon has logged so far ('' without one). */
  daemonLog(): string {
    return this.daemon?.log() ?? '';
  }

  /** The daemon's socket; in 'in-process' mode nothing listens there, so the executable falls back. */
  get daemonSocket(): string {
    return `${this.base}/daemon/cni.sock`;
  }

  async start(): Promise<void> {
    rmSync(this.base, { recursive: true, force: true });
    mkdirSync(this.socketDir, { recursive: true });
    this.ovs = await startOvsDpdk({
      runDir: `${this.base}/ovs`,
      netns: `flcni-ovs-${this.id}`,
      maxLifetimeSec: 900,
      // Two vhost-user devices come up together: each port's own pool, made at the first try
      // (with the shared one's tries, the second device's handshake once found no memory).
      perPortMemory: true,
    });
    if (this.mode === 'daemon') this.daemon = await startDaemon(this.daemonSocket);
  }

  /** A container network namespace, as a runtime creates before calling ADD. */
  netns(name: string): string {
    const ns = `flcni-${this.id}-${name}`;
    if (!existsSync(`/run/netns/${ns}`)) {
      execFileSync('ip', ['netns', 'add', ns]);
      this.netnsNames.push(ns);
    }
    return `/run/netns/${ns}`;
  }

  deleteNetns(path: string): void {
    const ns = path.replace('/run/netns/', '');
    execFileSync('ip', ['netns', 'del', ns]);
    this.netnsNames.splice(this.netnsNames.indexOf(ns), 1);
  }

  conf(overrides: Record<string, unknown> = {}): Record<string, unknown> {
    return {
      cniVersion: '1.1.0',
      name: this.network,
      type: 'flowline',
      bridge: this.ovs.bridge,
      socketDir: this.socketDir,
      mtu: 1500,
      ovsdbSocket: this.ovs.dbSocket,
      deviceInfoDir: this.deviceInfoDir,
      ipam: {
        type: 'host-local',
        dataDir: this.ipamDir,
        ranges: [[{ subnet: '10.77.0.0/24', gateway: '10.77.0.1' }]],
        routes: [{ dst: '10.0.0.0/8' }],
      },
      dns: { nameservers: ['10.77.0.53'] },
      ...overrides,
    };
  }

  run(env: PluginEnv, conf: unknown): Promise<PluginRun> {
    return runPlugin({ CNI_PATH, FLOWLINE_CNI_SOCKET: this.daemonSocket, ...env }, conf);
  }

  /**
   * run(), with the invocation's log lines (JSON, parsed): its stderr in-process, the daemon's
   * lines since the call in daemon mode, waiting until one with msg `until` has arrived (the
   * daemon's stderr may reach us after its answer). One invocation at a time.
   */
  async runLogged(
    env: PluginEnv,
    conf: unknown,
    until: string,
  ): Promise<PluginRun & { log: Record<string, unknown>[] }> {
    const daemon = this.daemon;
    const mark = daemon?.log().length ?? 0;
    const r = await this.run(env, conf);
    const text = (): string => (daemon ? daemon.log().slice(mark) : r.stderr);
    const lines = (): Record<string, unknown>[] =>
      text()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    await waitFor(() => lines().some((l) => l.msg === until), `a log line "${until}"`);
    return { ...r, log: lines() };
  }

  /** Lease files of host-local (one per IP; the allocator's cursor and lock left out). */
  leases(): string[] {
    const dir = join(this.ipamDir, this.network);
    if (!existsSync(dir)) return [];
    return readdirSync(dir)
      .filter((f) => f !== 'lock' && !f.startsWith('last_reserved_ip'))
      .sort();
  }

  /** Everything under socketDir but the plugin's own dot folders (.locks, .cache). */
  socketTree(): string[] {
    const out: string[] = [];
    if (!existsSync(this.socketDir)) return out;
    for (const d of readdirSync(this.socketDir)) {
      if (d.startsWith('.')) continue;
      out.push(d);
      for (const f of readdirSync(join(this.socketDir, d))) out.push(`${d}/${f}`);
    }
    return out.sort();
  }

  /** Device-info files (and leftovers) in the fixture's device-info folder. */
  deviceInfoFiles(): string[] {
    if (!existsSync(this.deviceInfoDir)) return [];
    return readdirSync(this.deviceInfoDir).sort();
  }

  /** The plugin's attachment records (`<socketDir>/.index`). */
  records(socketDir?: string): string[] {
    const dir = join(socketDir ?? this.socketDir, '.index');
    if (!existsSync(dir)) return [];
    return readdirSync(dir).sort();
  }

  async portNames(): Promise<string[]> {
    return (await this.ovs.vswitch.listPorts(this.ovs.bridge)).map((p) => p.name).sort();
  }

  async stop(): Promise<void> {
    try {
      if (this.daemon) {
        const code = await stopDaemon(this.daemon);
        this.daemon = undefined;
        if (code !== 0) throw new Error(`flowline-cni daemon exited ${code} at stop`);
      }
    } finally {
      await this.stopOvsAndFiles();
    }
  }

  private async stopOvsAndFiles(): Promise<void> {
    try {
      await this.ovs?.stop();
    } finally {
      for (const ns of this.netnsNames.splice(0)) {
        try {
          execFileSync('ip', ['netns', 'del', ns]);
        } catch {
          /* already gone */
        }
      }
      rmSync(this.base, { recursive: true, force: true });
    }
  }
}
