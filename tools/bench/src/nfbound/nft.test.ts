import { describe, expect, it } from 'vitest';

import { aclFlows, benchRules, nftAcl } from './rules';
import { TCP } from './trace';

const num = (ip: string): number =>
  ip.split('.').reduce((a, o) => ((a << 8) | Number(o)) >>> 0, 0) >>> 0;
const inPrefix = (a: number, p: string, len: string): boolean =>
  Number(len) === 0 || a >>> (32 - Number(len)) === num(p) >>> (32 - Number(len));

interface NftRule {
  proto: string;
  src: [string, string];
  dst: [string, string];
  lo: number;
  hi: number;
  verdict: string;
}

/** The verdict map's elements and the chain's rules after it, read back from the text. */
function parseNft(text: string): { elems: NftRule[]; chain: NftRule[] } {
  const elems: NftRule[] = [
    ...text.matchAll(
      /(tcp|udp) \. ([\d.]+)\/(\d+) \. ([\d.]+)\/(\d+) \. (\d+)(?:-(\d+))? : (accept|drop|jump permit_flow)/g,
    ),
  ].map((m) => ({
    proto: m[1]!,
    src: [m[2]!, m[3]!],
    dst: [m[4]!, m[5]!],
    lo: Number(m[6]),
    hi: Number(m[7] ?? m[6]),
    verdict: m[8]!,
  }));
  const chain = [
    ...text.matchAll(
      /^ {4}(?:ip saddr ([\d.]+)\/(\d+) )?ip daddr ([\d.]+)\/(\d+) (tcp|udp) dport (\d+)(?:-(\d+))? counter (accept|drop|jump permit_flow)$/gm,
    ),
  ].map((m): NftRule => ({
    proto: m[5]!,
    src: [m[1] ?? '0.0.0.0', m[2] ?? '0'],
    dst: [m[3]!, m[4]!],
    lo: Number(m[6]),
    hi: Number(m[7] ?? m[6]),
    verdict: m[8]!,
  }));
  expect(text).toMatch(/counter drop\n {2}\}/);
  return { elems, chain };
}

/** What the ruleset decides for a packet: the verdict map first, then the rules in order. */
function nftVerdict(
  nft: ReturnType<typeof parseNft>,
  src: number,
  dst: number,
  proto: number,
  dport: number,
): string {
  const p = proto === TCP ? 'tcp' : 'udp';
  const hit = (r: NftRule): boolean =>
    r.proto === p &&
    inPrefix(src, ...r.src) &&
    inPrefix(dst, ...r.dst) &&
    dport >= r.lo &&
    dport <= r.hi;
  const matched = nft.elems.filter(hit);
  // an interval map refuses overlapping keys: at most one element may match any packet
  expect(matched.length).toBeLessThanOrEqual(1);
  if (matched[0]) return matched[0].verdict;
  return nft.chain.find(hit)?.verdict ?? 'drop';
}

describe('the ACL as nftables for the kernel peer', () => {
  it('decides every flow of the trace as the rules do (first match), statelessly and statefully', () => {
    const rules = benchRules(1000);
    const flows = aclFlows(rules, 4096);
    const src = flows.src as Uint32Array;
    const dst = flows.dst as Uint32Array;
    for (const stateful of [false, true]) {
      const nft = parseNft(nftAcl(rules, { stateful }));
      expect(nft.elems).toHaveLength(rules.length - 4);
      expect(nft.chain).toHaveLength(4);
      const permit = stateful ? 'jump permit_flow' : 'accept';
      let permitted = 0;
      for (let i = 0; i < flows.length; i++) {
        const want = flows.expect[i]! < rules.length ? rules[flows.expect[i]!]!.action : 'deny';
        const got = nftVerdict(nft, src[i]!, dst[i]!, flows.proto[i]!, flows.dport[i]!);
        expect(got, `flow ${i}`).toBe(want === 'permit' ? permit : 'drop');
        if (want === 'permit') permitted++;
      }
      // the trace reaches both verdicts in bulk
      expect(permitted).toBeGreaterThan(flows.length / 3);
      expect(permitted).toBeLessThan(flows.length);
    }
  });

  it('the stateful ruleset lets marked flows skip the ACL and marks what it permits', () => {
    const text = nftAcl(benchRules(10), { stateful: true });
    expect(text.indexOf('ct mark 1 counter accept')).toBeLessThan(text.indexOf('vmap @acl'));
    expect(text).toContain('ct mark set 1 accept');
    expect(nftAcl(benchRules(10), { stateful: false })).not.toContain('ct ');
  });
});
