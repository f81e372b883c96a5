/**
 * The vhost-user topology's generator process (replay-gen.ts) seen from the bench, spoken to in
 * JSON lines (line-child.ts). Its stdin is its tie to this process: it stops when that closes,
 * however this process ends.
 */
import { existsSync, rmSync } from 'node:fs';
import * as path from 'node:path';

import { leftoverFiles } from '@flowline/dpdk';

import { LineChild } from '../line-child';

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

export class ReplayGenerator {
  frameBytes = 0;

  private constructor(
    private readonly io: LineChild,
    private readonly prefix: string,
  ) {}

  static spawn(o: GeneratorOptions): ReplayGenerator {
    return new ReplayGenerator(
      LineChild.spawn('the generator', [...ENTRY, JSON.stringify(o)]),
      o.prefix,
    );
  }

  /** Waits until every port is open (a virtio-user server port waits for its NF to connect). */
  async ready(timeoutMs: number): Promise<void> {
    this.frameBytes = Number((await this.io.next(timeoutMs)).frameBytes);
  }

  /** Sends on port k from now on (null: on none). */
  async select(k: number | null): Promise<void> {
    await this.io.request({ select: k }, 10_000);
  }

  async counters(k: number): Promise<GeneratorCounters> {
    const r = await this.io.request({ counters: k }, 10_000);
    return { tried: Number(r.tried), sent: Number(r.sent), received: Number(r.received) };
  }

  async linkUp(k: number): Promise<boolean> {
    return (await this.io.request({ link: k }, 10_000)).up === true;
  }

  /** Ends it (its stdin closed, then SIGKILL) and removes what its EAL left (its own prefix). */
  async stop(): Promise<void> {
    await this.io.stop(undefined, 10_000);
    for (const f of leftoverFiles(this.prefix)) rmSync(f, { recursive: true, force: true });
  }
}
