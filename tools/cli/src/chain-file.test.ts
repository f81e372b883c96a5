import { describe, expect, it } from 'vitest';
import { ChainFileError, checkChainPods, parseChainFile } from './chain-file';
import { renderTable } from './table';

describe('chain files', () => {
  it('reads one or several chains', () => {
    const docs = parseChainFile(
      `name: a\nspec:\n  classifier: { ingressPort: default/gen/net1, protocol: udp }\n  hops: [{ nf: default/fw, ingressInterface: net1, egressInterface: net2 }]\n  egressPort: default/gen/net2\n---\nname: b\nspec: { egressPort: x }\n`,
      'c.yaml',
    );
    expect(docs.map((d) => d.name)).toEqual(['a', 'b']);
    expect(docs[0]!.spec.hops).toEqual([
      { nf: 'default/fw', ingressInterface: 'net1', egressInterface: 'net2' },
    ]);
  });

  it('says what is wrong with the envelope', () => {
    expect(() => parseChainFile('spec: {}', 'c.yaml')).toThrow(
      /c\.yaml \(document 1\): name must be a non-empty string/,
    );
    expect(() => parseChainFile('name: a\nspec: [1]', 'c.yaml')).toThrow(ChainFileError);
    expect(() => parseChainFile('', 'c.yaml')).toThrow(/holds no chain/);
    expect(() => parseChainFile('name: [', 'c.yaml')).toThrow(/not valid YAML/);
  });
});

describe('tables', () => {
  it('aligns columns: text left, numbers right', () => {
    expect(
      renderTable(
        ['nf', 'Mpps'],
        [
          ['fw', '1.5'],
          ['router', '12.25'],
        ],
      ),
    ).toBe(['nf       Mpps', '------  -----', 'fw        1.5', 'router  12.25'].join('\n'));
  });

  it('shows control characters an NF answered as ?', () => {
    expect(renderTable(['flow'], [['a\x1b]0;pwned\x07b\n']])).toBe(
      'flow\n' + '-'.repeat(13) + '\na?]0;pwned?b?',
    );
  });
});

describe('chains naming pods', () => {
  const pods = [
    { key: 'default/gen', interfaces: ['net1', 'net2'] },
    { key: 'default/fw', interfaces: ['net1', 'net2'] },
  ];
  const chain = (hopNf: string, egress = 'default/gen/net2') =>
    parseChainFile(
      `name: c\nspec:\n  classifier: { ingressPort: default/gen/net1 }\n  hops: [{ nf: ${hopNf}, ingressInterface: net1, egressInterface: net2 }]\n  egressPort: ${egress}\n`,
      'c.yaml',
    );

  it("passes when every pod and interface runs here; raw ports and instance names are the controller's", () => {
    expect(() => checkChainPods(chain('default/fw'), pods, 'c.yaml')).not.toThrow();
    expect(() => checkChainPods(chain('fw-0', 'br-uplink'), pods, 'c.yaml')).not.toThrow();
  });

  it('an unknown pod is refused naming the field and listing the pods that run', () => {
    expect(() => checkChainPods(chain('default/rtr'), pods, 'c.yaml')).toThrow(
      'c.yaml: chain c: spec.hops[0].nf: no pod default/rtr runs on this node (pods: default/gen, default/fw); run it with flowline apply -f <pod.yaml>, or name one of these',
    );
    expect(() => checkChainPods(chain('default/fw', 'default/sink/net1'), pods, 'c.yaml')).toThrow(
      /spec\.egressPort: no pod default\/sink runs on this node \(pods: default\/gen, default\/fw\)/,
    );
    expect(() => checkChainPods(chain('default/fw'), [], 'c.yaml')).toThrow(/\(pods: none\)/);
  });

  it("an unknown interface is refused listing the pod's interfaces", () => {
    expect(() => checkChainPods(chain('default/fw', 'default/gen/net9'), pods, 'c.yaml')).toThrow(
      'c.yaml: chain c: spec.egressPort: pod default/gen has no interface net9 (interfaces: net1, net2)',
    );
  });
});
