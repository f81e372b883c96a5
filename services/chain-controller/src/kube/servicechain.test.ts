import { describe, expect, it } from 'vitest';
import { InvalidChainError } from '../errors';
import { MAX_HOPS } from '../limits';
import { validateChainName } from '../spec';
import { chainNameFor, crField, toChainSpec } from './servicechain';

const good = {
  classifier: {
    ingress: { nf: 'traffic-gen-0', interface: 'net1' },
    match: {
      ipVersion: 4,
      protocol: 'udp',
      srcCIDR: '10.0.0.0/8',
      dstPorts: { from: 1000, to: 2000 },
      srcPorts: { from: 53 },
    },
  },
  hops: [
    { nf: 'firewall-0', ingress: 'net1', egress: 'net2' },
    { nf: 'router-0', ingress: 'net1', egress: 'net1' },
  ],
  egress: { nf: 'sink-0', interface: 'net1' },
  bidirectional: true,
  priority: 200,
  failurePolicy: 'bypass',
};

function fieldOf(spec: unknown): string {
  try {
    toChainSpec('nfs', spec);
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidChainError);
    return (err as InvalidChainError).field;
  }
  throw new Error('the spec was accepted');
}

describe('toChainSpec (ServiceChain spec → flowline.chain.v1 ChainSpec)', () => {
  it('maps every field, qualifying NF names with the namespace', () => {
    expect(toChainSpec('nfs', good)).toEqual({
      classifier: {
        ingressPort: 'nfs/traffic-gen-0/net1',
        ipVersion: 4,
        srcPrefix: '10.0.0.0/8',
        protocol: 'udp',
        srcPorts: { first: 53, last: 53 },
        dstPorts: { first: 1000, last: 2000 },
      },
      hops: [
        { nf: 'nfs/firewall-0', ingressInterface: 'net1', egressInterface: 'net2' },
        { nf: 'nfs/router-0', ingressInterface: 'net1', egressInterface: 'net1' },
      ],
      egressPort: 'nfs/sink-0/net1',
      failurePolicy: 'BYPASS',
      bidirectional: true,
      priority: 200,
    });
  });

  it('applies the CRD defaults: fail-closed, one direction, priority 100, any protocol', () => {
    const spec = toChainSpec('default', {
      classifier: { ingress: { nf: 'gen', interface: 'net1' } },
      hops: [{ nf: 'fw', ingress: 'net1', egress: 'net2' }],
      egress: { nf: 'sink', interface: 'net1' },
    });
    expect(spec).toEqual({
      classifier: { ingressPort: 'default/gen/net1' },
      hops: [{ nf: 'default/fw', ingressInterface: 'net1', egressInterface: 'net2' }],
      egressPort: 'default/sink/net1',
      failurePolicy: 'FAIL_CLOSED',
      bidirectional: false,
      priority: 100,
    });
  });

  it('names the CR field of a structural error', () => {
    const hops = good.hops;
    expect(fieldOf(undefined)).toBe('spec');
    expect(fieldOf({ ...good, classifier: undefined })).toBe('spec.classifier');
    expect(fieldOf({ ...good, classifier: { ...good.classifier, ingress: undefined } })).toBe(
      'spec.classifier.ingress',
    );
    expect(
      fieldOf({
        ...good,
        classifier: { ...good.classifier, ingress: { nf: 'a', interface: 'net1', ovsPort: 'p' } },
      }),
    ).toBe('spec.classifier.ingress.ovsPort');
    expect(fieldOf({ ...good, egress: { nf: 'sink' } })).toBe('spec.egress.interface');
    expect(fieldOf({ ...good, egress: { interface: 'net1' } })).toBe('spec.egress.nf');
    expect(fieldOf({ ...good, hops: [] })).toBe('spec.hops');
    expect(fieldOf({ ...good, hops: [hops[0], { nf: 'r', ingress: 'net1' }] })).toBe(
      'spec.hops[1].egress',
    );
    expect(fieldOf({ ...good, hops: [hops[0], { ...hops[1], nf: 'other/router' }] })).toBe(
      'spec.hops[1].nf',
    );
    expect(
      fieldOf({ ...good, hops: [{ ...hops[0], ingress: 'an-interface-name-too-long' }] }),
    ).toBe('spec.hops[0].ingress');
    expect(fieldOf({ ...good, failurePolicy: 'drop' })).toBe('spec.failurePolicy');
    expect(fieldOf({ ...good, priority: 0 })).toBe('spec.priority');
    expect(fieldOf({ ...good, bidirectional: 'yes' })).toBe('spec.bidirectional');
  });

  it('names the CR field of a semantic error found by the chain.v1 validation', () => {
    const match = good.classifier.match;
    const withMatch = (m: object) => ({ ...good, classifier: { ...good.classifier, match: m } });
    expect(fieldOf(withMatch({ ...match, srcCIDR: '10.0.0.0/40' }))).toBe(
      'spec.classifier.match.srcCIDR',
    );
    expect(fieldOf(withMatch({ ...match, dstCIDR: '2001:db8::/32' }))).toBe(
      'spec.classifier.match.dstCIDR',
    );
    expect(fieldOf(withMatch({ ...match, ipVersion: 6 }))).toBe('spec.classifier.match.ipVersion');
    expect(fieldOf(withMatch({ ...match, protocol: 'icmp' }))).toBe(
      'spec.classifier.match.srcPorts',
    );
    expect(fieldOf(withMatch({ ...match, dstPorts: { from: 2000, to: 1000 } }))).toBe(
      'spec.classifier.match.dstPorts.to',
    );
    expect(fieldOf(withMatch({ protocol: 'gre' }))).toBe('spec.classifier.match.protocol');
    const twice = { ...good, hops: [good.hops[0], good.hops[1], good.hops[0]] };
    expect(fieldOf(twice)).toBe('spec.hops[2].nf');
    const message = (() => {
      try {
        toChainSpec('nfs', twice);
      } catch (err) {
        return (err as Error).message;
      }
    })();
    expect(message).toMatch(/^spec\.hops\[2\]\.nf: "nfs\/firewall-0" is also hops\[0\]/);
    // One hop past the limit the CRD's maxItems also sets.
    const hops = (n: number) =>
      Array.from({ length: n }, (_, i) => ({ nf: `nf-${i}`, ingress: 'net1', egress: 'net2' }));
    expect(toChainSpec('nfs', { ...good, hops: hops(MAX_HOPS) }).hops).toHaveLength(MAX_HOPS);
    expect(fieldOf({ ...good, hops: hops(MAX_HOPS + 1) })).toBe('spec.hops');
  });

  it("tenancy: a raw OVS port or another namespace's NF is refused, naming the field", () => {
    const refused = (spec: unknown): string => {
      try {
        toChainSpec('nfs', spec);
      } catch (err) {
        return (err as Error).message;
      }
      throw new Error('the spec was accepted');
    };
    const raw = /: a raw OVS port is not allowed in a ServiceChain: name a pod of this namespace/;
    expect(
      refused({ ...good, classifier: { ...good.classifier, ingress: { ovsPort: 'dpdk0' } } }),
    ).toMatch(new RegExp(`^spec\\.classifier\\.ingress\\.ovsPort${raw.source}`));
    expect(refused({ ...good, egress: { ovsPort: 'uplink' } })).toMatch(
      new RegExp(`^spec\\.egress\\.ovsPort${raw.source}`),
    );
    const other = /names another namespace: a ServiceChain names only pods in its own namespace/;
    expect(
      refused({ ...good, hops: [good.hops[0], { ...good.hops[1], nf: 'tenant-b/router-0' }] }),
    ).toMatch(new RegExp(`^spec\\.hops\\[1\\]\\.nf: "tenant-b/router-0" ${other.source}`));
    expect(refused({ ...good, egress: { nf: 'tenant-b/sink', interface: 'net1' } })).toMatch(
      new RegExp(`^spec\\.egress\\.nf: "tenant-b/sink" ${other.source}`),
    );
    expect(
      refused({
        ...good,
        classifier: { ...good.classifier, ingress: { nf: 'kube-system/x', interface: 'eth0' } },
      }),
    ).toMatch(/^spec\.classifier\.ingress\.nf: "kube-system\/x" names another namespace/);
  });

  it('translates chain.v1 field names of resolution errors', () => {
    expect(crField('spec.hops[3].egress_interface')).toBe('spec.hops[3].egress');
    expect(crField('spec.hops[0].ingress_interface')).toBe('spec.hops[0].ingress');
    expect(crField('spec.classifier.ingress_port')).toBe('spec.classifier.ingress');
    expect(crField('spec.egress_port')).toBe('spec.egress');
  });
});

describe('chainNameFor', () => {
  it('is a DNS-1123 label, stable, and distinct for namespace/name pairs that join alike', () => {
    const a = chainNameFor('a-b', 'c');
    expect(a).toBe(chainNameFor('a-b', 'c'));
    expect(a).not.toBe(chainNameFor('a', 'b-c'));
    expect(a).toMatch(/^a-b-c-[0-9a-f]{16}$/); // 64 bits: no name of a tenant's own can be found to claim it
    const long = chainNameFor('n'.repeat(63), 'chain.with.dots'.repeat(10));
    expect(validateChainName(long)).toBe(long);
    expect(long.length).toBeLessThanOrEqual(63);
  });
});
