/**
 * ACL rules: the TypeScript form and its translation to the native rule layout. A rule's match
 * is @flowline/packet's `Match`, parsed and validated there (validateMatch): here only what the
 * ACL adds (action, priority) is checked.
 */
import type { Match } from '@flowline/packet';

import { PipelineError } from './errors';

export interface AclRule {
  /** Name shown with the rule's counter; default "rule<index>". */
  id?: string;
  action: 'permit' | 'deny';
  /** Higher wins when several rules match; default: earlier rules win (first match). */
  priority?: number;
  /**
   * What the rule matches, from validateMatch of @flowline/packet: one native rule per family
   * in `match.families`. No match: every packet of both families.
   */
  match?: Match;
}

export const MAX_ACL_PRIORITY = 0x1fffffff;

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

/** Expands rules to native rules; throws PipelineError with the rule path (action, priority). */
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

/** Bytes per rule in the packed form the addon reads (see AclRules in native/addon_pipeline.cc). */
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

const ANY_PORT: readonly [number, number] = [0, 65535];

/** Any address: only read (packAcl copies it), so one buffer serves every rule. */
const ANY_ADDRESS = Buffer.alloc(16);

/** A prefix's network address in the native rule's 16 bytes (an IPv4 one in the first 4). */
function prefixBytes(prefix: Match['src']): Buffer {
  if (!prefix) return ANY_ADDRESS;
  const out = Buffer.alloc(16);
  out.set(prefix.bytes.subarray(0, 16));
  return out;
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
  const m: Match = r.match ?? { families: [4, 6] };
  const [sportLo, sportHi] = m.srcPorts ?? ANY_PORT;
  const [dportLo, dportHi] = m.dstPorts ?? ANY_PORT;
  for (const family of m.families) {
    out.push({
      family,
      proto: m.protocol ?? 0,
      protoMask: m.protocol === undefined ? 0 : 0xff,
      src: prefixBytes(m.src),
      srcLen: m.src?.length ?? 0,
      dst: prefixBytes(m.dst),
      dstLen: m.dst?.length ?? 0,
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
