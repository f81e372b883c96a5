/**
 * Packet I/O for pipeline tests, with no test-runner dependency (so that a child process can use
 * it too): sending into a ring port, waiting until a pipeline has decided every packet, draining
 * an output, tagged frames, punted packets, the test back-off.
 */
import { parseAddress, parseMac } from '@flowline/packet';

import {
  buildPacket,
  ipv4Checksum,
  type Mempool,
  type PacketBatch,
  type Pipeline,
  type PipelineCounters,
  type Port,
} from '../../src/index';
import { sleep } from './env';

/** Packets whose fate the pipeline has decided (stage drops, final drops, punts, sent). */
export function decided(c: PipelineCounters): number {
  const sum = (r: Record<string, number>): number => Object.values(r).reduce((a, b) => a + b, 0);
  return c.tx + sum(c.drops) + sum(c.punts) + c.stages.reduce((a, s) => a + sum(s.drops), 0);
}

/** Sends every packet into port's queue 0, retrying while the ring is full. */
export async function sendAll(port: Port, pool: Mempool, pkts: Buffer[]): Promise<void> {
  let sent = 0;
  const end = Date.now() + 10_000;
  while (sent < pkts.length) {
    sent += port.send(0, pool, pkts.slice(sent, sent + 256));
    if (sent < pkts.length) {
      if (Date.now() > end) throw new Error(`only ${sent}/${pkts.length} packets were taken`);
      await sleep(1);
    }
  }
}

/** Waits until the pipeline has decided the fate of `total` packets since it started. */
export async function settle(p: Pipeline, total: number, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const c = p.counters();
    const d = decided(c);
    if (d === total && c.rx === total) return;
    if (d > total || Date.now() > end)
      throw new Error(`pipeline decided ${d} of ${total} packets: ${JSON.stringify(c)}`);
    await sleep(2);
  }
}

/** Everything waiting on port's queue 0. */
export function drain(port: Port): Buffer[] {
  const out: Buffer[] = [];
  for (;;) {
    const got = port.receive(0, 256);
    if (got.length === 0) return out;
    out.push(...got);
  }
}

/** Every punted packet: [reason code, bytes] pairs (the batch keeps them until released). */
export function takePunted(p: Pipeline, batch: PacketBatch): { reason: number; bytes: Buffer }[] {
  const out: { reason: number; bytes: Buffer }[] = [];
  for (;;) {
    const n = p.punted(batch);
    if (n === 0) return out;
    for (let i = 0; i < n; i++)
      out.push({ reason: batch.reasonCode(i), bytes: Buffer.from(batch.packet(i)) });
    batch.release();
  }
}

/** A packet tagged with an id in its payload (bytes 60..63 of an untagged frame). */
export function tagged(id: number, spec: Parameters<typeof buildPacket>[0]): Buffer {
  const payload = Buffer.alloc(4);
  payload.writeUInt32BE(id);
  return buildPacket({ size: 80, ...spec, payload });
}

/** The id written by tagged(): the last 4 bytes before the zero padding. */
export function tagOf(frame: Buffer, l4Len: number): number {
  const l3 = frame.readUInt16BE(12) === 0x86dd ? 40 : 20;
  return frame.readUInt32BE(14 + l3 + l4Len);
}

export function ipv4ChecksumOk(frame: Buffer, l3 = 14): boolean {
  const hdr = frame.subarray(l3, l3 + (frame[l3]! & 0xf) * 4);
  return ipv4Checksum(hdr) === hdr.readUInt16BE(10);
}

/** An ARP request frame (who-has target tell sender). */
export function arpRequest(sender: string, target: string, srcMac = '02:00:00:00:00:01'): Buffer {
  const b = Buffer.alloc(60);
  Buffer.from('ffffffffffff', 'hex').copy(b, 0);
  b.set(parseMac(srcMac), 6);
  b.writeUInt16BE(0x0806, 12);
  b.writeUInt16BE(1, 14); // Ethernet
  b.writeUInt16BE(0x0800, 16);
  b[18] = 6;
  b[19] = 4;
  b.writeUInt16BE(1, 20); // request
  b.set(parseMac(srcMac), 22);
  b.set(parseAddress(sender).bytes, 28);
  b.set(parseAddress(target).bytes, 38);
  return b;
}

/** Idle back-off for test pipelines: a worker that sleeps soon, so tests share 2 cores well. */
export const BACKOFF = { spinPolls: 64, sleepMinUs: 10, sleepMaxUs: 200 };
