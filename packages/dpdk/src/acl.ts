/** ACL rules: the TypeScript form, its validation, and translation to the native rule layout. */
import { PipelineError } from './errors';
import { parsePrefix, type Prefix } from './ip';

export type PortMatch = number | readonly [number, number];

export interface AclRule {
  /** Name shown with the rule's counter; default "rule<index>". */
  id?: string;
  action: 'permit' | 'deny';
  /** Higher wins when several rules match; default: earlier rules win (first match). */
  priority?: number;
  /** 4 or 6; inferred from src/dst. A rule with neither applies to both families. */
  family?: 4 | 6;
  proto?: number | 'tcp' | 'udp' | 'icmp' | 'icmpv6' | 'sctp';
  /** CIDR prefix, e.g. "10.0.0.0/8" or "2001:db8::/32". */
  src?: string;
  dst?: string;
  srcPort?: PortMatch;
  dstPort?: PortMatch;
}

export const MAX_ACL_PRIORITY = 0x1fffffff;
const PROTOS: Record<string, number> = { icmp: 1, tcp: 6, udp: 17, icmpv6: 58, sctp: 132 };

/** The native layout (see fl_acl_rule in native/fl.h). */
export interface NativeAclRule {
  family: 4 | 6;
  proto: number;
  protoMask: number;
  src: Buffer;
  srcLen: number;
  dst: Buffer;
  dstLen: number;
  sportLo: number;
  sportHi: number;
  dportLo: number;
  dportHi: number;
  priority: number;
  action: number;
  /** index of the AclRule this came from */
  owner: number;
}

function ports(m: PortMatch | undefined, where: string): [number, number] {
  if (m === undefined) return [0, 65535];
  const [lo, hi] = typeof m === 'number' ? [m, m] : m;
  const ok = (x: unknown): boolean =>
    Number.isInteger(x) && (x as number) >= 0 && (x as number) <= 65535;
  if (!ok(lo) || !ok(hi) || lo > hi)
    throw new PipelineError(
      `port match ${JSON.stringify(m)} must be a port or [lo, hi] within 0..65535`,
      where,
    );
  return [lo, hi];
}

/** Validates rules and expands them to native rules; throws PipelineError with the rule path. */
export function compileAcl(rules: readonly AclRule[], where = 'rules'): NativeAclRule[] {
  if (!Array.isArray(rules)) throw new PipelineError('rules must be an array', where);
  const out: NativeAclRule[] = [];
  rules.forEach((r, i) => compileRule(r, i, where, out));
  return out;
}

/**
 * compileAcl in slices of `slice` rules, yielding to the event loop between them, so that tens
 * of thousands of rules never hold it for long. Rejects with the same PipelineError.
 */
export async function compileAclAsync(
  rules: readonly AclRule[],
  where = 'rules',
  slice = 2000,
): Promise<NativeAclRule[]> {
  if (!Array.isArray(rules)) throw new PipelineError('rules must be an array', where);
  const out: NativeAclRule[] = [];
  for (let i = 0; i < rules.length; i++) {
    if (i > 0 && i % slice === 0) await new Promise((r) => setImmediate(r));
    compileRule(rules[i]!, i, where, out);
  }
  return out;
}

/** Bytes per rule in the packed form the addon reads (see AclRules in native/addon.cc). */
export const ACL_RULE_WIRE_SIZE = 52;

/**
 * Native rules packed for the addon, one ACL_RULE_WIRE_SIZE record each: family, proto,
 * protoMask, srcLen, dstLen, action (bytes 0..5); sportLo, sportHi, dportLo, dportHi (u16 LE at
 * 6..13); priority (u32 LE at 16); src (16 bytes at 20); dst (16 bytes at 36).
 */
export function packAcl(rules: readonly NativeAclRule[]): Buffer {
  const b = Buffer.alloc(rules.length * ACL_RULE_WIRE_SIZE);
  rules.forEach((r, i) => {
    const o = i * ACL_RULE_WIRE_SIZE;
    b[o] = r.family;
    b[o + 1] = r.proto;
    b[o + 2] = r.protoMask;
    b[o + 3] = r.srcLen;
    b[o + 4] = r.dstLen;
    b[o + 5] = r.action;
    b.writeUInt16LE(r.sportLo, o + 6);
    b.writeUInt16LE(r.sportHi, o + 8);
    b.writeUInt16LE(r.dportLo, o + 10);
    b.writeUInt16LE(r.dportHi, o + 12);
    b.writeUInt32LE(r.priority, o + 16);
    r.src.copy(b, o + 20, 0, 16);
    r.dst.copy(b, o + 36, 0, 16);
  });
  return b;
}

function compileRule(r: AclRule, i: number, where: string, out: NativeAclRule[]): void {
  const at = `${where}[${i}]`;
  if (r === null || typeof r !== 'object') throw new PipelineError('a rule must be an object', at);
  if (r.action !== 'permit' && r.action !== 'deny')
    throw new PipelineError(
      `action must be "permit" or "deny", got ${JSON.stringify(r.action)}`,
      `${at}.action`,
    );
  const priority = r.priority ?? Math.max(1, MAX_ACL_PRIORITY - i);
  if (!Number.isInteger(priority) || priority < 1 || priority > MAX_ACL_PRIORITY)
    throw new PipelineError(
      `priority must be an integer in 1..${MAX_ACL_PRIORITY}`,
      `${at}.priority`,
    );
  let proto = 0;
  let protoMask = 0;
  if (r.proto !== undefined) {
    proto = typeof r.proto === 'string' ? (PROTOS[r.proto] ?? -1) : r.proto;
    if (!Number.isInteger(proto) || proto < 0 || proto > 255)
      throw new PipelineError(
        `proto ${JSON.stringify(r.proto)} is not a protocol number or one of ${Object.keys(PROTOS).join(', ')}`,
        `${at}.proto`,
      );
    protoMask = 0xff;
  }
  const src = r.src !== undefined ? parsePrefix(r.src, `${at}.src`) : undefined;
  const dst = r.dst !== undefined ? parsePrefix(r.dst, `${at}.dst`) : undefined;
  const fams = new Set<4 | 6>(
    [src?.family, dst?.family, r.family].filter((f): f is 4 | 6 => f !== undefined),
  );
  if (r.family !== undefined && r.family !== 4 && r.family !== 6)
    throw new PipelineError('family must be 4 or 6', `${at}.family`);
  if (fams.size > 1) throw new PipelineError('src, dst and family disagree on the IP version', at);
  if (
    (r.srcPort !== undefined || r.dstPort !== undefined) &&
    r.proto !== undefined &&
    ![6, 17, 132].includes(proto)
  )
    throw new PipelineError('ports can only be matched for tcp, udp or sctp', at);
  const [sportLo, sportHi] = ports(r.srcPort, `${at}.srcPort`);
  const [dportLo, dportHi] = ports(r.dstPort, `${at}.dstPort`);
  const any: Prefix = { family: 4, addr: Buffer.alloc(16), len: 0 };
  for (const family of fams.size ? [...fams] : ([4, 6] as const)) {
    if (family === 4 && proto === 58 && protoMask) continue;
    if (family === 6 && proto === 1 && protoMask) continue;
    out.push({
      family,
      proto,
      protoMask,
      src: (src ?? any).addr,
      srcLen: (src ?? any).len,
      dst: (dst ?? any).addr,
      dstLen: (dst ?? any).len,
      sportLo,
      sportHi,
      dportLo,
      dportHi,
      priority,
      action: r.action === 'permit' ? 0 : 1,
      owner: i,
    });
  }
}
