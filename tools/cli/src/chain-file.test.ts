import { describe, expect, it } from 'vitest';
import { ChainFileError, parseChainFile } from './chain-file';
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
});
