/**
 * dpdk-testpmd as a child process: interactive (a command, then its output up to the next
 * prompt) for the generator, or auto-started for the reference NF. Every instance gets its own
 * --file-prefix and --in-memory, so nothing is left in /dev/hugepages when it ends.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';

import { leftoverFiles } from '@flowline/dpdk';

export class TestpmdError extends Error {
  constructor(
    message: string,
    readonly output: string,
  ) {
    super(message);
    this.name = 'TestpmdError';
  }
}

export interface TestpmdOptions {
  /** EAL arguments (before "--"). */
  eal: string[];
  /** testpmd's own arguments (after "--"). */
  app: string[];
  binary?: string;
}

export interface PortStats {
  rxPackets: number;
  txPackets: number;
  rxBytes: number;
}

export interface FwdStats {
  txPackets: number;
  txDropped: number;
}

export class Testpmd {
  /** stdout, which commands and prompts are matched against; stderr interleaves into `log`. */
  private out = '';
  private all = '';
  private waiters: (() => void)[] = [];
  private exited: Promise<number | null>;

  private constructor(
    private readonly child: ChildProcess,
    /** The EAL's --file-prefix arguments: what it leaves is removed once it has exited. */
    private readonly eal: readonly string[] = [],
  ) {
    child.stdout?.on('data', (b: Buffer) => {
      this.out += b.toString('utf8');
      this.all += b.toString('utf8');
      for (const w of this.waiters.splice(0)) w();
    });
    child.stderr?.on('data', (b: Buffer) => (this.all += b.toString('utf8')));
    this.exited = new Promise((resolve) =>
      child.once('exit', (code) => {
        for (const w of this.waiters.splice(0)) w();
        // testpmd leaves its EAL runtime directory behind; the prefix is this instance's own,
        // so once it has exited nobody else is using it
        for (const f of ealLeftovers(this.eal)) rmSync(f, { recursive: true, force: true });
        resolve(code);
      }),
    );
  }

  static spawn(o: TestpmdOptions): Testpmd {
    // stdbuf: testpmd's stdout is a pipe here, which libc would block-buffer
    const child = spawn(
      'stdbuf',
      ['-oL', '-eL', o.binary ?? 'dpdk-testpmd', ...o.eal, '--', ...o.app],
      {
        stdio: ['pipe', 'pipe', 'pipe'],
      },
    );
    return new Testpmd(child, o.eal);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get log(): string {
    return this.all;
  }

  /** Waits until the output (from `from` on) matches re; returns the match's end offset. */
  async waitFor(re: RegExp, timeoutMs: number, from = 0): Promise<number> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const m = re.exec(this.out.slice(from));
      if (m) return from + m.index + m[0].length;
      if (this.child.exitCode !== null || this.child.signalCode !== null)
        throw new TestpmdError(
          `testpmd exited (${this.child.exitCode ?? this.child.signalCode}) before ${re}`,
          this.all,
        );
      const left = end - Date.now();
      if (left <= 0)
        throw new TestpmdError(`testpmd did not print ${re} within ${timeoutMs} ms`, this.all);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 200));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /**
   * Interactive mode: runs one command and returns its output up to the end of `until` (testpmd
   * may print its prompt before a command's output, so the prompt is no end marker).
   */
  async command(cmd: string, until: RegExp, timeoutMs = 10_000): Promise<string> {
    const from = this.out.length;
    this.child.stdin?.write(`${cmd}\n`);
    const end = await this.waitFor(until, timeoutMs, from);
    return this.out.slice(from, end);
  }

  async portStats(port = 0): Promise<PortStats> {
    const s = await this.command(`show port stats ${port}`, /Tx-bps:\s*\d+[^\n]*\n\s*#+/);
    const num = (re: RegExp): number => {
      const m = re.exec(s);
      if (!m) throw new TestpmdError(`no ${re} in port stats`, s);
      return Number(m[1]);
    };
    return {
      rxPackets: num(/RX-packets:\s*(\d+)/),
      txPackets: num(/TX-packets:\s*(\d+)/),
      rxBytes: num(/RX-bytes:\s*(\d+)/),
    };
  }

  /**
   * The forwarding engine's counters since `start`, summed over the ports it forwards on: what
   * it sent and what its tx burst did not take (a full ring: the peer is slower than it).
   */
  async fwdStats(): Promise<FwdStats> {
    const s = await this.command(
      'show fwd stats all',
      /Accumulated forward statistics[^\n]*\n[^\n]*\n[^\n]*TX-total:\s*\d+/,
    );
    const acc = s.slice(s.indexOf('Accumulated forward statistics'));
    const num = (re: RegExp): number => {
      const m = re.exec(acc);
      if (!m) throw new TestpmdError(`no ${re} in forward stats`, s);
      return Number(m[1]);
    };
    return { txPackets: num(/TX-packets:\s*(\d+)/), txDropped: num(/TX-dropped:\s*(\d+)/) };
  }

  async linkUp(port = 0): Promise<boolean> {
    const s = await this.command(`show port info ${port}`, /Link status:\s*\w+/);
    return /Link status:\s*up/i.test(s);
  }

  /** Ends testpmd: "quit" (interactive) or Enter (auto-start), then SIGTERM, then SIGKILL. */
  async stop(interactive: boolean, timeoutMs = 10_000): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.stdin?.write(interactive ? 'quit\n' : '\n');
    const timer = (ms: number): Promise<'timeout'> =>
      new Promise((r) => setTimeout(() => r('timeout'), ms).unref());
    if ((await Promise.race([this.exited, timer(timeoutMs)])) !== 'timeout') return;
    this.child.kill('SIGTERM');
    if ((await Promise.race([this.exited, timer(3000)])) !== 'timeout') return;
    this.child.kill('SIGKILL');
    await this.exited;
  }
}

/**
 * What an EAL with these arguments leaves behind: the package's leftoverFiles for its
 * --file-prefix (nothing for none, or for a prefix that is not one plain name).
 */
export function ealLeftovers(eal: readonly string[]): string[] {
  const i = eal.indexOf('--file-prefix');
  const prefix = i >= 0 ? eal[i + 1] : undefined;
  return prefix ? leftoverFiles(prefix) : [];
}
