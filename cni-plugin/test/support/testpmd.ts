import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { rmSync } from 'node:fs';
import { ealRuntimeDirs } from '@flowline/dpdk';

export interface PortCounters {
  rxPackets: number;
  txPackets: number;
}

/**
 * dpdk-testpmd in interactive mode on virtio-user ports that are vhost-user servers on the
 * given sockets (OVS's dpdkvhostuserclient ports connect to them). One forwarding lcore on CPU
 * 0, the main lcore on CPU 1; --no-pci, in-memory, single-file segments (memory shared with
 * the vhost backend through memfd).
 */
export class Testpmd {
  /** stdout: prompts and command output are matched here. */
  private out = '';
  /** stdout and stderr as they came, for messages: an EAL or driver line written to stderr can
   * land inside the prompt text of the merged stream ("tes<line>tpmd> "). */
  private all = '';
  private constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    private readonly sockets: string[],
    private readonly prefix: string,
  ) {
    child.stdout.on('data', (d: Buffer) => {
      this.out += d.toString();
      this.all += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => (this.all += d.toString()));
  }

  static async start(sockets: string[], prefix: string, timeoutSec = 120): Promise<Testpmd> {
    for (const s of sockets) rmSync(s, { force: true }); // a killed server=1 leaves its socket
    const vdevs = sockets.flatMap((s, i) => [
      '--vdev',
      `net_virtio_user${i},path=${s},server=1,queues=1`,
    ]);
    const argv = [
      '-s',
      'KILL',
      String(timeoutSec),
      'stdbuf',
      '-o0',
      'dpdk-testpmd',
      '-l',
      '0,1',
      '--main-lcore',
      '1',
      '--no-pci',
      '--in-memory',
      '--single-file-segments',
      `--file-prefix=${prefix}`,
      '-m',
      '256',
      ...vdevs,
      '--',
      '-i',
      '--nb-cores=1',
      '--total-num-mbufs=8192',
      '--port-topology=paired',
      '--forward-mode=io',
    ];
    const child = spawn('timeout', argv, { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    const t = new Testpmd(child, sockets, prefix);
    await t.waitFor(/testpmd> /, 60_000);
    return t;
  }

  get output(): string {
    return this.all;
  }

  async waitFor(re: RegExp, timeoutMs: number, from = 0): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!re.test(this.out.slice(from))) {
      if (this.child.exitCode !== null)
        throw new Error(`testpmd exited (${this.child.exitCode}):\n${this.all.slice(-3000)}`);
      if (Date.now() > deadline)
        throw new Error(`testpmd: no ${re} within ${timeoutMs} ms:\n${this.all.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Sends a command and waits for the next prompt; returns what it printed. */
  async command(cmd: string, timeoutMs = 20_000): Promise<string> {
    const from = this.out.length;
    this.child.stdin.write(cmd + '\n');
    await this.waitFor(/testpmd> /, timeoutMs, from);
    return this.out.slice(from);
  }

  /** Parses "Forward statistics for port N" blocks printed by `stop`. */
  static parseForwardStats(text: string): Map<number, PortCounters> {
    const out = new Map<number, PortCounters>();
    const re =
      /Forward statistics for port (\d+)\s*-+\s*\n\s*RX-packets:\s*(\d+)[^\n]*\n[^\n]*TX-packets:\s*(\d+)/g;
    for (const m of text.matchAll(re))
      out.set(Number(m[1]), { rxPackets: Number(m[2]), txPackets: Number(m[3]) });
    return out;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null) {
      this.child.stdin.write('quit\n');
      const exited = new Promise((r) => this.child.once('exit', r));
      const done = await Promise.race([
        exited.then(() => true),
        new Promise((r) => setTimeout(() => r(false), 10_000)),
      ]);
      if (!done && this.child.pid) {
        process.kill(-this.child.pid, 'SIGKILL'); // its process group: timeout and testpmd
        await exited;
      }
    }
    for (const s of this.sockets) rmSync(s, { force: true });
    // in-memory: no hugepage files, but DPDK does not remove its runtime directory
    for (const d of ealRuntimeDirs(this.prefix)) rmSync(d, { recursive: true, force: true });
  }
}
