import { describe, expect, it } from 'vitest';
import type { NfDirectory, NfRecord } from './directory';
import { UnresolvedPortError } from './errors';
import type { ResolvedChain } from './flows';
import { PortResolver, samePorts } from './port-resolver';
import { validateChainSpec } from './spec';

const records: Record<string, NfRecord> = {
  'default/gen': { name: 'default/gen', interfaces: { net1: 'gen1' } },
  'default/fw': { name: 'default/fw', interfaces: { net1: 'fw1', net2: 'fw2' } },
  'default/sink': { name: 'default/sink', interfaces: { net1: 'sink1' } },
};
const directory: NfDirectory = { lookup: async (nf) => records[nf] };

function rawSpec() {
  return {
    classifier: { ingressPort: 'default/gen/net1', protocol: 'udp' },
    hops: [{ nf: 'default/fw', ingressInterface: 'net1', egressInterface: 'net2' }],
    egressPort: 'default/sink/net1',
  };
}
const spec = validateChainSpec(rawSpec());

function resolver(ports: string[], nodes?: Record<string, string[]>) {
  return new PortResolver(
    {
      portNames: async () => new Set(ports),
      ...(nodes ? { nodesOf: (p: string) => nodes[p] ?? [] } : {}),
    },
    directory,
  );
}

/** The error `p` rejects with, as "<message>" of an UnresolvedPortError. */
async function refusal(p: Promise<unknown>): Promise<string> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(UnresolvedPortError);
  return (err as Error).message;
}

describe('PortResolver', () => {
  it("resolves every endpoint to the OVS port the directory has for the NF's interface", async () => {
    const chain = await resolver(['gen1', 'fw1', 'fw2', 'sink1']).resolve('demo', spec);
    expect(chain).toEqual({
      name: 'demo',
      spec,
      ingressPort: 'gen1',
      egressPort: 'sink1',
      hops: [{ nf: 'default/fw', ingressPort: 'fw1', egressPort: 'fw2', healthy: true }],
    });
  });

  it('takes a raw OVS port as it is when it is on the bridge', async () => {
    const raw = validateChainSpec({ ...rawSpec(), egressPort: 'uplink' });
    const chain = await resolver(['gen1', 'fw1', 'fw2', 'uplink']).resolve('demo', raw);
    expect(chain.egressPort).toBe('uplink');
    expect(await refusal(resolver(['gen1', 'fw1', 'fw2']).resolve('demo', raw))).toBe(
      'spec.egress_port: OVS port "uplink" is not on the bridge',
    );
  });

  it('names the field of an NF interface the directory does not know or the bridge lacks', async () => {
    const unknownIface = validateChainSpec({
      ...rawSpec(),
      hops: [{ nf: 'default/fw', ingressInterface: 'net1', egressInterface: 'net9' }],
    });
    expect(
      await refusal(resolver(['gen1', 'fw1', 'fw2', 'sink1']).resolve('demo', unknownIface)),
    ).toMatch(/^spec\.hops\[0\]\.egress_interface: NF "default\/fw" has no interface net9 /);
    expect(await refusal(resolver(['gen1', 'fw2', 'sink1']).resolve('demo', spec))).toBe(
      'spec.hops[0].ingress_interface: default/fw/net1 is OVS port "fw1", which is not on the bridge',
    );
  });

  it('with a switch per node, refuses a chain whose endpoints are on different nodes', async () => {
    const ports = ['gen1', 'fw1', 'fw2', 'sink1'];
    const one = { gen1: ['n0'], fw1: ['n0'], fw2: ['n0'], sink1: ['n0', 'n1'] };
    expect((await resolver(ports, one).resolve('demo', spec)).egressPort).toBe('sink1');
    const split = { ...one, fw2: ['n1'] };
    expect(await refusal(resolver(ports, split).resolve('demo', spec))).toMatch(
      /^spec\.hops\[0\]\.egress_interface: OVS port "fw2" is on node n1, but spec\.classifier\.ingress_port \("gen1"\) is on n0; /,
    );
  });
});

describe('samePorts', () => {
  const chain: ResolvedChain = {
    name: 'demo',
    spec,
    ingressPort: 'gen1',
    egressPort: 'sink1',
    hops: [{ nf: 'default/fw', ingressPort: 'fw1', egressPort: 'fw2', healthy: true }],
  };
  it('is true for the same ports whatever the health, false when any port moved', () => {
    expect(samePorts(chain, { ...chain, hops: [{ ...chain.hops[0]!, healthy: false }] })).toBe(
      true,
    );
    expect(samePorts(chain, { ...chain, hops: [{ ...chain.hops[0]!, egressPort: 'fw3' }] })).toBe(
      false,
    );
    expect(samePorts(chain, { ...chain, ingressPort: 'gen2' })).toBe(false);
  });
});
