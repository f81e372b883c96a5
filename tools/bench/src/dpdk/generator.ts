/**
 * The vhost-user topology's generator process (replay-gen.ts) seen from the bench: requests are
 * JSON lines on its stdin, answered in order by JSON lines on its stdout. Its stdin is its tie
 * to this process: it stops when that closes, however this process ends.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as path from 'node:path';

import { leftoverFiles } from '@flowline/dpdk';
import { rmSync } from 'node:fs';

export interface GeneratorOptions {
  prefix: string;
  /** devargs of the ports: the reference's first, then one per NF */
  ports: string[];
  burst: number;
  singleFileSegments: boolean;
}

export interface GeneratorCounters {
  tried: number;
  sent: number;
  received: number;
}

const ENTRY = existsSync(path.join(__dirname, 'replay-gen.ts'))
  ? ['--import', 'tsx', path.join(__dirname, 'replay-gen.ts')]
  : [path.join(__dirname, 'replay-gen.js')];

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class GeneratorError extends Error {
  constructor(
    message: string,
    readonly output: string,
  ) {
    super(message);
    this.name = 'GeneratorError';
  }
}

export class ReplayGenerator {
  private out = '';
  private err = '';
  private lines: string[] = [];
  private waiters: (() => void)[] = [];
  private readonly exited: Promise<void>;
  /** requests answered in order: one at a time */
  private queue: Promise<unknown> = Promise.resolve();
  frameBytes = 0;

  private constructor(
    private readonly child: ChildProcess,
    private readonly prefix: string,
  ) {
    child.stdout?.on('data', (b: Buffer) => {
      this.out += b.toString('utf8');
      const parts = this.out.split('\n');
      this.out = parts.pop() ?? '';
      this.lines.push(...parts.filter((l) => l.trim() !== ''));
      for (const w of this.waiters.splice(0)) w();
    });
    child.stderr?.on('data', (b: Buffer) => (this.err += b.toString('utf8')));
    this.exited = new Promise((resolve) =>
      child.once('exit', () => {
        for (const w of this.waiters.splice(0)) w();
        // its own --file-prefix: once it has exited nobody else uses what it left
        for (const f of leftoverFiles(this.prefix)) rmSync(f, { recursive: true, force: true });
        resolve();
      }),
    );
  }

  static spawn(o: GeneratorOptions): ReplayGenerator {
    const child = spawn(process.execPath, [...ENTRY, JSON.stringify(o)], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    return new ReplayGenerator(child, o.prefix);
  }

  /** The next line out, within timeoutMs. */
  private async nextLine(timeoutMs: number): Promise<Record<string, unknown>> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const line = this.lines.shift();
      if (line !== undefined) return JSON.parse(line) as Record<string, unknown>;
      if (this.child.exitCode !== null || this.child.signalCode !== null)
        throw new GeneratorError(`the generator exited (${this.child.exitCode})`, this.err);
      const left = end - Date.now();
      if (left <= 0) throw new GeneratorError(`no answer within ${timeoutMs} ms`, this.err);
      await Promise.race([new Promise<void>((r) => this.waiters.push(r)), sleep(left)]);
    }
  }

  /** Waits until every port is open (a virtio-user server port waits for its NF to connect). */
  async ready(timeoutMs: number): Promise<void> {
    const r = await this.nextLine(timeoutMs);
    if (r.ready !== true) throw new GeneratorError(`not ready: ${JSON.stringify(r)}`, this.err);
    this.frameBytes = Number(r.frameBytes);
  }

  private request(q: object, timeoutMs = 10_000): Promise<Record<string, unknown>> {
    const next = this.queue.then(async () => {
      this.child.stdin?.write(`${JSON.stringify(q)}\n`);
      const r = await this.nextLine(timeoutMs);
      if (typeof r.error === 'string') throw new GeneratorError(r.error, this.err);
      return r;
    });
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** Sends on port k from now on (null: on none). */
  async select(k: number | null): Promise<void> {
    await this.request({ select: k });
  }

  async counters(k: number): Promise<GeneratorCounters> {
    const r = await this.request({ counters: k });
    return { tried: Number(r.tried), sent: Number(r.sent), received: Number(r.received) };
  }

  async linkUp(k: number): Promise<boolean> {
    return (await this.request({ link: k })).up === true;
  }

  /** Ends it: stdin closed, then SIGTERM, then SIGKILL. */
  async stop(timeoutMs = 10_000): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return this.exited;
    this.child.stdin?.end();
    await Promise.race([this.exited, sleep(timeoutMs)]);
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGTERM');
      await Promise.race([this.exited, sleep(2000)]);
      if (this.child.exitCode === null && this.child.signalCode === null)
        this.child.kill('SIGKILL');
      await this.exited;
    }
  }

  get log(): string {
    return this.err;
  }
}
