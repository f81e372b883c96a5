// The files in examples/ parse as what the walk-through hands them to, with no node needed:
// the node config, the pods (their NF configs found beside them), the chains (naming the
// examples' own pods and interfaces), the flows.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadNodeConfig, parsePods, resolveManifestFiles } from '@flowline/node';
import { describe, expect, it } from 'vitest';
import { checkChainPods, parseChainFile } from './chain-file';
import { parseFlowsFile } from './traffic';

const dir = resolve(__dirname, '..', '..', '..', 'examples');
const read = (f: string): string => readFileSync(join(dir, f), 'utf8');

describe('examples/', () => {
  it('the node config and the three pods, each with its NF config beside it', () => {
    expect(loadNodeConfig(join(dir, 'node.yaml')).networks['flowline-net']).toBeDefined();
    const pods = ['gen', 'fw', 'rtr'].flatMap((p) => {
      const file = join(dir, `${p}.yaml`);
      return parsePods(resolveManifestFiles(read(`${p}.yaml`), file), file);
    });
    expect(pods.map((p) => [p.name, p.env.FLOWLINE_CONFIG])).toEqual(
      ['gen', 'fw', 'rtr'].map((p) => [p, join(dir, `${p}-config.yaml`)]),
    );
    for (const p of pods) expect(p.networks.map((n) => n.interface)).toEqual(['net1', 'net2']);
  });

  it('both chains name only the example pods and their interfaces', () => {
    const pods = ['gen', 'fw', 'rtr'].map((p) => ({
      key: `default/${p}`,
      interfaces: ['net1', 'net2'],
    }));
    for (const f of ['chain.yaml', 'chain-deny-dns.yaml']) {
      const docs = parseChainFile(read(f), f);
      expect(docs.map((d) => d.name)).toEqual(['demo']);
      expect(() => checkChainPods(docs, pods, f)).not.toThrow();
    }
  });

  it('the flows are count-limited, so --wait knows when they are done', () => {
    const req = parseFlowsFile(read('flows.yaml'), 'flows.yaml');
    expect(req.flows!.map((f) => f.name)).toEqual(['web', 'dns', 'telnet']);
    for (const f of req.flows!) expect(Number(f.count)).toBeGreaterThan(0);
  });
});
