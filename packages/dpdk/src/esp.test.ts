import { validateMatch } from '@flowline/packet';
import { describe, expect, it } from 'vitest';

import { PipelineError } from './errors';
import { ACL_RULE_WIRE_SIZE } from './acl';
import { ESP_MAX_POLICY_RULES, espPolicyConf, espSaConf, type EspPolicy, type EspSa } from './esp';

const base = (more: Partial<EspSa> = {}): EspSa => ({
  spi: 4096,
  algorithm: 'aes-gcm-128',
  key: Buffer.alloc(20, 1),
  innerFamily: 4,
  tunnel: { src: '192.0.2.1', dst: '192.0.2.2' },
  ...more,
});

/** The path of the PipelineError fn throws. */
function pathOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(PipelineError);
    return (e as PipelineError).path;
  }
  throw new Error('accepted');
}

/** The path of the PipelineError espSaConf throws for sa. */
const refusedAt = (sa: EspSa): string => pathOf(() => espSaConf(sa, 'sas[0]'));

describe('ESP SA configuration', () => {
  it('makes the native configuration: algorithm code, outer family and addresses, defaults', () => {
    const c = espSaConf(
      base({
        algorithm: 'aes-cbc-256-hmac-sha256',
        key: Buffer.alloc(32, 2),
        authKey: Buffer.alloc(32, 3),
        innerFamily: 6,
        tunnel: { src: '2001:db8::1', dst: '2001:db8::2' },
      }),
      'sas[0]',
    );
    expect(c).toMatchObject({ alg: 4, innerFamily: 6, outerFamily: 6, replayWindow: 64, seq: 0n });
    expect(c.outerDst).toEqual(Buffer.from('20010db8000000000000000000000002', 'hex'));
    expect(espSaConf(base(), 'x')).not.toHaveProperty('authKey');
  });

  it('refuses each bad field by name', () => {
    expect(refusedAt(base({ spi: 255 }))).toBe('sas[0].spi');
    expect(refusedAt(base({ spi: 2 ** 32 }))).toBe('sas[0].spi');
    expect(refusedAt(base({ algorithm: 'aes-ctr' as EspSa['algorithm'] }))).toBe(
      'sas[0].algorithm',
    );
    expect(refusedAt(base({ algorithm: 'toString' as EspSa['algorithm'] }))).toBe(
      'sas[0].algorithm',
    );
    expect(refusedAt(base({ key: Buffer.alloc(16) }))).toBe('sas[0].key');
    expect(refusedAt(base({ algorithm: 'aes-gcm-256', key: Buffer.alloc(32) }))).toBe('sas[0].key');
    expect(refusedAt(base({ authKey: Buffer.alloc(32) }))).toBe('sas[0].authKey');
    expect(refusedAt(base({ algorithm: 'aes-cbc-128-hmac-sha256', key: Buffer.alloc(16) }))).toBe(
      'sas[0].authKey',
    );
    expect(refusedAt(base({ innerFamily: 5 as 4 }))).toBe('sas[0].innerFamily');
    expect(refusedAt(base({ tunnel: { src: '192.0.2.1', dst: '2001:db8::2' } }))).toBe(
      'sas[0].tunnel.dst',
    );
    expect(refusedAt(base({ tunnel: { src: 'gateway', dst: '192.0.2.2' } }))).toBe(
      'sas[0].tunnel.src',
    );
    expect(refusedAt(base({ replayWindow: 4097 }))).toBe('sas[0].replayWindow');
    expect(refusedAt(base({ seq: 2 ** 32 }))).toBe('sas[0].seq');
    expect(refusedAt(base({ seq: -1 }))).toBe('sas[0].seq');
    expect(refusedAt(base({ ttl: 0 }))).toBe('sas[0].ttl');
    expect(refusedAt(base({ lifetime: { hardPackets: 0 } }))).toBe('sas[0].lifetime.hardPackets');
    expect(refusedAt(base({ lifetime: { softBytes: 10, hardBytes: 5 } }))).toBe(
      'sas[0].lifetime.softBytes',
    );
  });

  it('takes a 64-bit sequence number with ESN', () => {
    expect(espSaConf(base({ esn: true, seq: 2n ** 40n }), 'x')).toMatchObject({
      esn: true,
      seq: 2n ** 40n,
    });
  });
});

describe('ESP policies: their native form and checks', () => {
  const match = (fields: Parameters<typeof validateMatch>[0]) => validateMatch(fields, 'match');
  const policyRefusedAt = (policies: EspPolicy[]): string =>
    pathOf(() => espPolicyConf(policies, 'policies'));

  it('lays out one selector per family, each with its policy index, action and SPI', () => {
    const { selectors, actions } = espPolicyConf(
      [
        { id: 'p', action: 'protect', spi: 0x1234, match: match({ dstPrefix: '10.2.0.0/16' }) },
        { id: 'b', action: 'bypass' }, // no match: both families
        { id: 'd', action: 'discard', match: match({ ipVersion: 6 }) },
      ],
      'policies',
    );
    expect(selectors.length).toBe(4 * ACL_RULE_WIRE_SIZE);
    const rows = [0, 1, 2, 3].map((i) => [
      selectors[i * ACL_RULE_WIRE_SIZE], // family
      actions.readUInt32LE(i * 12), // policy
      actions[i * 12 + 4], // action
      actions.readUInt32LE(i * 12 + 8), // spi
    ]);
    expect(rows).toEqual([
      [4, 0, 2, 0x1234],
      [4, 1, 1, 0],
      [6, 1, 1, 0],
      [6, 2, 0, 0],
    ]);
  });

  it('refuses each bad field by its path', () => {
    expect(policyRefusedAt([{ id: '', action: 'bypass' }])).toBe('policies[0].id');
    expect(
      policyRefusedAt([
        { id: 'a', action: 'bypass' },
        { id: 'a', action: 'discard' },
      ]),
    ).toBe('policies[1].id');
    expect(policyRefusedAt([{ id: 'a', action: 'allow' as EspPolicy['action'] }])).toBe(
      'policies[0].action',
    );
    expect(policyRefusedAt([{ id: 'a', action: 'protect' }])).toBe('policies[0].spi');
    expect(policyRefusedAt([{ id: 'a', action: 'protect', spi: 255 }])).toBe('policies[0].spi');
    expect(policyRefusedAt([{ id: 'a', action: 'bypass', spi: 4096 }])).toBe('policies[0].spi');
    const many = Array.from({ length: ESP_MAX_POLICY_RULES / 2 + 1 }, (_, i) => ({
      id: `p${i}`,
      action: 'bypass' as const,
    }));
    expect(policyRefusedAt(many)).toBe('policies');
  });
});
