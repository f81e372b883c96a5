import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { startOvsDpdk, type OvsDpdk } from '@flowline/ovs';
import { runPlugin, type PluginEnv, type PluginRun } from './exec';

export const CNI_PATH = '/usr/lib/cni';

/**
 * One private OVS-DPDK, a socket dir, a host-local store and container netns for a test file,
 * all under names with this process's pid; `stop()` removes every one of them.
 */
export class CniFixture {
  ovs!: OvsDpdk;
  readonly id = `${process.pid}`;
  readonly base = `/tmp/flcni-${process.pid}`;
  readonly socketDir = `${this.base}/s`;
  readonly ipamDir = `${this.base}/ipam`;
  readonly network = 'flowline-test';
  private readonly netnsNames: string[] = [];

  async start(): Promise<void> {
    rmSync(this.base, { recursive: true, force: true });
    mkdirSync(this.socketDir, { recursive: true });
    this.ovs = await startOvsDpdk({
      runDir: `${this.base}/ovs`,
      netns: `flcni-ovs-${this.id}`,
      maxLifetimeSec: 900,
    });
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
    return runPlugin({ CNI_PATH, ...env }, conf);
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

  async portNames(): Promise<string[]> {
    return (await this.ovs.vswitch.listPorts(this.ovs.bridge)).map((p) => p.name).sort();
  }

  async stop(): Promise<void> {
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
