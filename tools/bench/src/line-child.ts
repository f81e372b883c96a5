/**
 * A bench child process spoken to in JSON lines: requests on its stdin, one answer per request,
 * in order, on its stdout as a line that starts with "@@" (EAL and drivers print there too). An
 * answer {ok: false, error} is a refusal. Its stdin is its tie to the bench: the child stops when
 * that closes, however the bench ends. Used for the NF-bound bench's Flowline NF and the vhost
 * bench's generator.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A request waiting for its answer. */
interface Waiter {
  answer: (v: Record<string, unknown>) => void;
  fail: (e: Error) => void;
}

export class LineChild {
  /** in the order the answers come (a timed-out request keeps its place and drops its answer) */
  private waiting: Waiter[] = [];
  private log = '';
  /** the child's exit code once it has exited */
  private exitCode: number | null | undefined;
  readonly exited: Promise<number | null>;

  private constructor(
    readonly name: string,
    private readonly child: ChildProcessByStdio<Writable, Readable, Readable>,
  ) {
    createInterface({ input: child.stdout }).on('line', (l) => {
      if (l.startsWith('@@'))
        this.waiting.shift()?.answer(JSON.parse(l.slice(2)) as Record<string, unknown>);
      else this.log += `${l}\n`;
    });
    child.stderr.on('data', (b: Buffer) => (this.log += b.toString()));
    this.exited = new Promise((r) =>
      child.once('exit', (c) => {
        this.exitCode = c;
        for (const w of this.waiting.splice(0)) w.fail(this.exitError());
        r(c);
      }),
    );
  }

  /** Node running `args`; env is added to this process's environment. */
  static spawn(name: string, args: string[], env: Record<string, string> = {}): LineChild {
    const child = spawn(process.execPath, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    return new LineChild(name, child);
  }

  /** The next answer (the first one is what the child says when it is ready). */
  next(timeoutMs: number): Promise<Record<string, unknown>> {
    if (this.exitCode !== undefined) return Promise.reject(this.exitError());
    return new Promise((resolve, reject) => {
      const t = setTimeout(
        () => reject(new Error(`${this.name}: no answer in ${timeoutMs} ms\n${this.tail()}`)),
        timeoutMs,
      );
      this.waiting.push({
        answer: (v) => {
          clearTimeout(t);
          if (v.ok === false) reject(new Error(`${this.name}: ${String(v.error)}`));
          else resolve(v);
        },
        fail: (e) => {
          clearTimeout(t);
          reject(e);
        },
      });
    });
  }

  request(q: object, timeoutMs = 30_000): Promise<Record<string, unknown>> {
    const p = this.next(timeoutMs);
    this.child.stdin.write(`${JSON.stringify(q)}\n`);
    return p;
  }

  /** Ends it: `quit` asked for (or its stdin closed), then SIGKILL after graceMs. */
  async stop(quit?: object, graceMs = 15_000): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    if (quit) await this.request(quit, graceMs).catch(() => undefined);
    else this.child.stdin.end();
    await Promise.race([this.exited, sleep(graceMs)]);
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGKILL');
      await this.exited;
    }
  }

  get output(): string {
    return this.log;
  }

  private tail(): string {
    return this.log.slice(-3000);
  }

  private exitError(): Error {
    return new Error(`${this.name} exited (${this.exitCode})\n${this.tail()}`);
  }
}
