import { describe, expect, it } from 'vitest';
import { InvalidChainError } from './errors';
import {
  type ResolvedChain,
  classifierMatches,
  compileFlows,
  cookieOf,
  originOf,
  chainKey,
} from './flows';
import { portRangeMasks, validateChainSpec, validateClassifier } from './spec';

const spec = (over: Record<string, unknown> = {}) =>
  validateChainSpec({
    classifier: {
      ingressPort: 'default/gen/net1',
      ipVersion: 4,
      protocol: 'udp',
      dstPorts: { first: 5000, last: 5000 },
    },
    hops: [
      { nf: 'default/fw', ingressInterface: 'net1', egressInterface: 'net2' },
      { nf: 'default/rt', ingressInterface: 'net1', egressInterface: 'net2' },
    ],
    egressPort: 'default/sink/net1',
    ...over,
  });

function resolved(
  over: Record<string, unknown> = {},
  health: boolean[] = [true, true],
): ResolvedChain {
  const s = spec(over);
  return {
    name: 'demo',
    spec: s,
    ingressPort: 'gen1',
    egressPort: 'sink1',
    hops: [
      { nf: 'default/fw', ingressPort: 'fw1', egressPort: 'fw2', healthy: health[0]! },
      { nf: 'default/rt', ingressPort: 'rt1', egressPort: 'rt2', healthy: health[1]! },
    ],
  };
}

const stripCookie = (flows: string[]) => flows.map((f) => f.replace(/^cookie=0x[0-9a-f]+,/, ''));

describe('chain spec validation', () => {
  const field = (fn: () => unknown) => {
    try {
      fn();
    } catch (e) {
      expect(e).toBeInstanceOf(InvalidChainError);
      return (e as InvalidChainError).field;
    }
    throw new Error('expected InvalidChainError');
  };
  it('names the exact field', () => {
    expect(field(() => spec({ classifier: undefined }))).toBe('spec.classifier');
    expect(field(() => spec({ classifier: { ingressPort: '' } }))).toBe(
      'spec.classifier.ingress_port',
    );
    expect(field(() => spec({ classifier: { ingressPort: 'p', srcPrefix: '10.0.0.1/8' } }))).toBe(
      'spec.classifier.src_prefix',
    );
    expect(
      field(() => spec({ classifier: { ingressPort: 'p', dstPorts: { first: 1, last: 2 } } })),
    ).toBe('spec.classifier.dst_ports');
    expect(
      field(() =>
        spec({ hops: [{ nf: 'default/fw', ingressInterface: 'net1', egressInterface: '' }] }),
      ),
    ).toBe('spec.hops[0].egress_interface');
    expect(
      field(() => spec({ hops: [{ nf: '', ingressInterface: 'net1', egressInterface: 'net2' }] })),
    ).toBe('spec.hops[0].nf');
    // A "/" in the interface is refused there, not read into the NF's name (default/fw-0).
    expect(
      field(() =>
        spec({
          hops: [{ nf: 'default', ingressInterface: 'fw-0/net1', egressInterface: 'net2' }],
        }),
      ),
    ).toBe('spec.hops[0].ingress_interface');
    expect(
      field(() =>
        spec({ hops: [{ nf: 'default/fw-0', ingressInterface: '', egressInterface: 'n' }] }),
      ),
    ).toBe('spec.hops[0].ingress_interface');
    expect(
      field(() =>
        spec({ hops: [{ nf: 'a/b/c', ingressInterface: 'net1', egressInterface: 'n' }] }),
      ),
    ).toBe('spec.hops[0].nf');
    expect(
      field(() =>
        spec({
          hops: [
            { nf: 'a', ingressInterface: 'net1', egressInterface: 'net2' },
            { nf: 'a', ingressInterface: 'net3', egressInterface: 'net4' },
          ],
        }),
      ),
    ).toBe('spec.hops[1].nf');
    expect(field(() => spec({ egressPort: 'x/y/z/net1' }))).toBe('spec.egress_port');
    expect(field(() => spec({ priority: 5000 }))).toBe('spec.priority');
  });
  it('defaults: fail-closed, priority 100, one direction', () => {
    expect(spec()).toMatchObject({
      failurePolicy: 'fail-closed',
      priority: 100,
      bidirectional: false,
    });
  });
});

describe('port ranges as OpenFlow masks', () => {
  it('covers a range exactly with aligned blocks', () => {
    const covered = new Set<number>();
    const masks = portRangeMasks(1000, 1999);
    for (const { value, mask } of masks)
      for (let p = 0; p < 65536; p++) if ((p & mask) === value) covered.add(p);
    expect(covered.size).toBe(1000);
    expect(Math.min(...covered)).toBe(1000);
    expect(Math.max(...covered)).toBe(1999);
    expect(portRangeMasks(80, 80)).toEqual([{ value: 80, mask: 0xffff }]);
    expect(portRangeMasks(0, 65535)).toEqual([{ value: 0, mask: 0 }]);
  });
});

describe('classifier matches', () => {
  it('builds per-family matches and swaps them for the reverse direction', () => {
    const c = validateClassifier(
      {
        ingressPort: 'p',
        srcPrefix: 'fd00::/64',
        protocol: 'tcp',
        dstPorts: { first: 443, last: 443 },
      },
      'c',
    );
    expect(classifierMatches(c, false)).toEqual(['tcp6,ipv6_src=fd00::/64,tp_dst=443']);
    expect(classifierMatches(c, true)).toEqual(['tcp6,ipv6_dst=fd00::/64,tp_src=443']);
    const both = validateClassifier({ ingressPort: 'p', protocol: 'udp' }, 'c');
    expect(classifierMatches(both, false)).toEqual(['udp', 'udp6']);
    expect(classifierMatches(validateClassifier({ ingressPort: 'p' }, 'c'), false)).toEqual(['']);
  });
});

describe('compileFlows', () => {
  it('steers hop by hop and ends with the default flow', () => {
    expect(stripCookie(compileFlows([resolved()]))).toEqual([
      'priority=10100,in_port=gen1,udp,tp_dst=5000,actions=output:fw1',
      'priority=10100,in_port=fw2,udp,tp_dst=5000,actions=output:rt1',
      'priority=10100,in_port=rt2,udp,tp_dst=5000,actions=output:sink1',
      'priority=0,actions=NORMAL',
    ]);
  });

  it('bypass skips a dead hop; fail-closed drops at it', () => {
    expect(
      stripCookie(
        compileFlows([resolved({ failurePolicy: 'BYPASS' }, [false, true])]).slice(0, -1),
      ),
    ).toEqual([
      'priority=10100,in_port=gen1,udp,tp_dst=5000,actions=output:rt1',
      'priority=10100,in_port=rt2,udp,tp_dst=5000,actions=output:sink1',
    ]);
    expect(stripCookie(compileFlows([resolved({}, [true, false])]).slice(0, -1))).toEqual([
      'priority=10100,in_port=gen1,udp,tp_dst=5000,actions=output:fw1',
      'priority=10100,in_port=fw2,udp,tp_dst=5000,actions=drop',
    ]);
  });

  it('bidirectional chains also steer the return path in reverse', () => {
    const flows = stripCookie(compileFlows([resolved({ bidirectional: true })]));
    expect(flows).toContain('priority=10100,in_port=sink1,udp,tp_src=5000,actions=output:rt2');
    expect(flows).toContain('priority=10100,in_port=rt1,udp,tp_src=5000,actions=output:fw2');
    expect(flows).toContain('priority=10100,in_port=fw1,udp,tp_src=5000,actions=output:gen1');
  });

  it('cookies encode chain, direction and step, and decode back', () => {
    const o = { chainKey: chainKey('demo'), reverse: true, step: 2 };
    expect(originOf(cookieOf(o))).toEqual(o);
    const flows = compileFlows([resolved()]);
    expect(originOf(/cookie=(0x[0-9a-f]+)/.exec(flows[1]!)![1]!)).toEqual({
      chainKey: chainKey('demo'),
      reverse: false,
      step: 1,
    });
  });
});
