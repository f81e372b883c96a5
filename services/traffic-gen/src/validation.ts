/**
 * Validation of flowline.trafficgen.v1 Start requests. Every error names the proto field
 * (flows[2].rate_pps) so a client can fix its request; nothing reaches DPDK before it passes.
 */
import { MAX_FRAME_SIZE, minFrameSize } from '@flowline/dpdk';
import { formatMac, parseAddress, parseMac } from '@flowline/packet';
import type { trafficGenV1 } from '@flowline/proto';
import { InvalidArgumentError } from './errors';

export const MAX_FLOWS = 1024;
const NAME = /^[A-Za-z0-9]([A-Za-z0-9_.-]{0,62})$/;

export interface PlannedFlow {
  name: string;
  txPort: string;
  protocol: 'udp' | 'tcp';
  family: 4 | 6;
  srcIp: string;
  dstIp: string;
  srcPort: number;
  dstPort: number;
  srcMac?: string;
  dstMac?: string;
  /** Frame size with FCS, or IMIX. */
  size: number | 'imix';
  /** 0: unpaced. */
  ratePps: number;
  /** 0: until stopped. */
  count: number;
  ttl: number;
  tcpFlags: number;
}

/** A Start request as it arrives: every field may be missing or of the wrong kind. */
export type FlowInput = { [K in keyof trafficGenV1.Flow__Output]?: unknown };
export interface StartInput {
  flows?: readonly FlowInput[];
  totalRatePps?: unknown;
  rxPorts?: readonly unknown[];
  countAnyRun?: unknown;
}

export interface StartPlan {
  flows: PlannedFlow[];
  rxPorts: string[];
  countAnyRun: boolean;
}

function bad(field: string, reason: string): never {
  throw new InvalidArgumentError(field, reason);
}

function rate(v: unknown, field: string): number {
  const n = typeof v === 'number' ? v : Number(v ?? 0);
  if (!Number.isFinite(n) || n < 0) bad(field, `must be a finite number >= 0, got ${String(v)}`);
  if (n > 1e9) bad(field, `${n} packets per second is more than any port sends (max 1e9)`);
  return n;
}

function uint(v: unknown, field: string, max: number): number {
  const n = typeof v === 'string' ? Number(v) : (v as number);
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > max)
    bad(field, `must be an integer in 0..${max}, got ${String(v)}`);
  return n;
}

function protocolOf(p: unknown, field: string): 'udp' | 'tcp' {
  if (p === undefined || p === 'PROTOCOL_UNSPECIFIED' || p === 'UDP' || p === 0 || p === 1)
    return 'udp';
  if (p === 'TCP' || p === 2) return 'tcp';
  return bad(field, `must be UDP or TCP, got ${String(p)}`);
}

const str = (v: unknown): string => (typeof v === 'string' ? v : v == null ? '' : String(v));

function mac(raw: unknown, field: string): string | undefined {
  const v = str(raw);
  if (!v) return undefined;
  try {
    return formatMac(parseMac(v));
  } catch (err) {
    return bad(field, (err as Error).message);
  }
}

function addressFamily(raw: string, field: string): 4 | 6 {
  try {
    return parseAddress(raw).family;
  } catch (err) {
    return bad(field, (err as Error).message);
  }
}

/** Checks a Start request against the NF's ports; returns what the dataplane runs. */
export function validateStart(req: StartInput, ports: readonly string[]): StartPlan {
  const flowsIn = req.flows ?? [];
  if (flowsIn.length > MAX_FLOWS) bad('flows', `at most ${MAX_FLOWS} flows, got ${flowsIn.length}`);
  const total = rate(req.totalRatePps, 'total_rate_pps');
  if (total > 0 && flowsIn.length === 0) bad('total_rate_pps', 'needs at least one flow');
  const names = new Set<string>();
  const flows = flowsIn.map((f, i): PlannedFlow => {
    const at = `flows[${i}]`;
    const name = str(f.name) || `flow-${i}`;
    if (!NAME.test(name))
      bad(
        `${at}.name`,
        `"${name}" must be 1-63 characters of [A-Za-z0-9_.-], starting alphanumeric`,
      );
    if (names.has(name)) bad(`${at}.name`, `"${name}" is used by another flow`);
    names.add(name);
    const txPort = str(f.txPort) || ports[0];
    if (!txPort) bad(`${at}.tx_port`, 'the NF has no ports to send on');
    if (!ports.includes(txPort))
      bad(`${at}.tx_port`, `no port "${txPort}" (ports: ${ports.join(', ') || 'none'})`);
    const protocol = protocolOf(f.protocol, `${at}.protocol`);
    const srcIp = str(f.srcIp);
    const dstIp = str(f.dstIp);
    const srcFamily = addressFamily(srcIp, `${at}.src_ip`);
    const dstFamily = addressFamily(dstIp, `${at}.dst_ip`);
    if (srcFamily !== dstFamily)
      bad(`${at}.dst_ip`, `is IPv${dstFamily} while src_ip is IPv${srcFamily}`);
    const family = srcFamily;
    const min = minFrameSize(family, protocol);
    const frameSize = uint(f.frameSize ?? 0, `${at}.frame_size`, 65535);
    let size: number | 'imix';
    if (f.imix) {
      if (frameSize) bad(`${at}.frame_size`, 'cannot be set together with imix');
      size = 'imix';
    } else {
      size = frameSize || min;
      if (size < min || size > MAX_FRAME_SIZE)
        bad(
          `${at}.frame_size`,
          `${size} is outside ${min}..${MAX_FRAME_SIZE} (the smallest IPv${family}/${protocol.toUpperCase()} frame that carries the 16-byte tag, with FCS)`,
        );
    }
    let ratePps = rate(f.ratePps, `${at}.rate_pps`);
    if (total > 0) {
      if (ratePps > 0) bad(`${at}.rate_pps`, 'cannot be set together with total_rate_pps');
      ratePps = total / flowsIn.length;
    }
    const count = uint(f.count ?? 0, `${at}.count`, Number.MAX_SAFE_INTEGER);
    const ttl = uint(f.ttl ?? 0, `${at}.ttl`, 255) || 64;
    const flags = uint(f.tcpFlags ?? 0, `${at}.tcp_flags`, 255);
    if (flags && protocol !== 'tcp') bad(`${at}.tcp_flags`, 'only with protocol TCP');
    const srcMac = mac(f.srcMac, `${at}.src_mac`);
    const dstMac = mac(f.dstMac, `${at}.dst_mac`);
    return {
      name,
      txPort,
      protocol,
      family,
      srcIp,
      dstIp,
      srcPort: uint(f.srcPort ?? 0, `${at}.src_port`, 65535),
      dstPort: uint(f.dstPort ?? 0, `${at}.dst_port`, 65535),
      ...(srcMac ? { srcMac } : {}),
      ...(dstMac ? { dstMac } : {}),
      size,
      ratePps,
      count,
      ttl,
      tcpFlags: flags || 0x10,
    };
  });
  const rxIn = (req.rxPorts ?? []).map(str);
  rxIn.forEach((p, i) => {
    if (!ports.includes(p))
      bad(`rx_ports[${i}]`, `no port "${p}" (ports: ${ports.join(', ') || 'none'})`);
    if (rxIn.indexOf(p) !== i) bad(`rx_ports[${i}]`, `"${p}" is listed twice`);
  });
  const rxPorts = rxIn.length ? [...rxIn] : [...ports];
  if (flows.length === 0 && rxPorts.length === 0)
    bad('flows', 'give flows to send or ports to count on (the NF has no ports)');
  if (rxPorts.length > 16) bad('rx_ports', `at most 16 ports, got ${rxPorts.length}`);
  return { flows, rxPorts, countAnyRun: req.countAnyRun === true };
}
