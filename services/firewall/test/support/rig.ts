/**
 * The firewall's dataplane between two net_ring ports in this process. A ring port hands what
 * is sent on its queue q to its own rx queue q: the test sends on queue 0 (which the worker
 * polls) and reads queue 1 (where the worker's tx queue 1 lands), so the worker never sees its
 * own output.
 */
import { existsSync, rmSync } from 'node:fs';
import {
  Mempool,
  Pipeline,
  Port,
  buildPacket,
  devargs,
  initEal,
  leftoverFiles,
  type Eal,
  type PacketSpec,
} from '@flowline/dpdk';
import { FirewallPipeline, type FirewallPipelineOptions } from '../../src/dataplane';

export function dataplaneReady(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root';
  if (!existsSync('/dev/hugepages')) return 'needs hugetlbfs on /dev/hugepages';
  return undefined;
}

/** Removes anything an EAL with this prefix (or one that extends it) could have left. */
export function scrubPrefix(prefix: string): void {
  for (const f of leftoverFiles(prefix, { match: 'family' }))
    rmSync(f, { recursive: true, force: true });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function waitFor(fn: () => boolean, timeoutMs = 5000): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (fn()) return true;
    await sleep(2);
  }
  return fn();
}

export const TCP = { FIN: 0x01, SYN: 0x02, RST: 0x04, ACK: 0x10 };

/** A frame per buildPacket; TCP flags and the ICMP echo identifier set when given. */
export function frame(spec: PacketSpec & { flags?: number; echoId?: number }): Buffer {
  const b = buildPacket(spec);
  const l4 = 14 + (spec.src.includes(':') ? 40 : 20);
  if (spec.flags !== undefined) b[l4 + 13] = spec.flags;
  if (spec.echoId !== undefined) b.writeUInt16BE(spec.echoId, l4 + 4);
  return b;
}

export class RingRig {
  readonly pool: Mempool;
  readonly a: Port;
  readonly b: Port;
  fw: FirewallPipeline | undefined;

  private constructor(readonly eal: Eal) {
    this.pool = Mempool.create({ size: 8191 });
    this.a = Port.open(devargs.ring({ id: 'fwA' }), this.pool, { rxQueues: 2, txQueues: 2 });
    this.b = Port.open(devargs.ring({ id: 'fwB' }), this.pool, { rxQueues: 2, txQueues: 2 });
  }

  static open(prefix: string): RingRig {
    return new RingRig(initEal({ filePrefix: prefix, lcores: [0, 1], memoryMb: 256 }));
  }

  /** A firewall between a (inside) and b (outside); the worker sends on tx queue 1. */
  firewall(
    o: Omit<FirewallPipelineOptions, 'ports' | 'lcore' | 'topology'> & {
      topology?: FirewallPipelineOptions['topology'];
    },
  ): FirewallPipeline {
    this.fw?.close();
    this.fw = new FirewallPipeline({
      ...o,
      topology: o.topology ?? 'two-armed',
      ports: [
        { name: 'a', port: this.a },
        { name: 'b', port: this.b },
      ].slice(0, (o.topology ?? 'two-armed') === 'two-armed' ? 2 : 1),
      lcore: this.eal.lcores().workers[0]!,
      txQueue: 1,
      backoff: { spinPolls: 64, sleepMinUs: 10, sleepMaxUs: 200 },
    });
    return this.fw;
  }

  get pipeline(): Pipeline {
    return this.fw!.pipeline;
  }

  /** Everything the firewall sent out of port since the last drain. */
  drain(port: Port): Buffer[] {
    const out: Buffer[] = [];
    for (let got = port.receive(1, 256); got.length; got = port.receive(1, 256)) out.push(...got);
    return out;
  }

  /** Sends packets into `from` (all of them, retrying while its ring is full). */
  async push(from: Port, packets: Buffer[]): Promise<void> {
    let sent = 0;
    const end = Date.now() + 10_000;
    while (sent < packets.length) {
      sent += from.send(0, this.pool, packets.slice(sent, sent + 256));
      if (sent < packets.length) {
        if (Date.now() > end) throw new Error(`only ${sent}/${packets.length} packets were taken`);
        await sleep(1);
      }
    }
  }

  /** Sends packets in and returns what left by the other port once all were decided. */
  async send(from: Port, packets: Buffer[]): Promise<Buffer[]> {
    const fw = this.fw!;
    const before = fw.pipeline.counters().rx;
    await this.push(from, packets);
    const ok = await waitFor(
      () => fw.pipeline.counters().rx >= before + packets.length && fw.idle(),
      10_000,
    );
    if (!ok) throw new Error('the firewall did not decide every packet within 10 s');
    const oneArmed = this.fw!.topology === 'one-armed';
    return this.drain(oneArmed || from === this.b ? this.a : this.b);
  }

  /** Whether each packet, sent alone, passes. */
  async passes(from: Port, packets: Buffer[]): Promise<boolean[]> {
    const out: boolean[] = [];
    for (const p of packets) out.push((await this.send(from, [p])).length === 1);
    return out;
  }

  close(): void {
    this.fw?.close();
    this.eal.cleanup();
  }
}
