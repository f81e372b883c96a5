import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROTOCOLS } from '@flowline/packet';
import { describe, expect, it } from 'vitest';
import { MAX_HOPS } from './limits';

const CRD = join(__dirname, '../../../charts/flowline/templates/servicechain-crd.yaml');

/**
 * The value at `path` in a YAML block mapping, by indentation (the CRD is a Helm template, so
 * not YAML until rendered; its schema part has no template directives). Each key must be a
 * direct child of the one before; a list item (`- name: v1alpha1`) counts as its first key.
 */
function valueAt(text: string, path: string[]): string {
  const lines = text.split('\n');
  let from = 0;
  let parentIndent = -1;
  for (const [depth, key] of path.entries()) {
    let childIndent: number | undefined;
    let found = -1;
    for (let i = from; i < lines.length; i++) {
      const m = /^(\s*)(?:- )?([A-Za-z0-9_-]+):(.*)$/.exec(lines[i]!);
      if (!m) continue;
      const indent = m[1]!.length + (lines[i]!.trimStart().startsWith('- ') ? 2 : 0);
      if (indent <= parentIndent) break;
      childIndent ??= indent;
      if (indent !== childIndent || m[2] !== key) continue;
      found = i;
      if (depth === path.length - 1) return m[3]!.trim();
      parentIndent = indent;
      from = i + 1;
      break;
    }
    if (found < 0) throw new Error(`${path.slice(0, depth + 1).join('.')} not found in ${CRD}`);
  }
  throw new Error(`${path.join('.')} is not a scalar`);
}

describe('limits', () => {
  it('the ServiceChain CRD allows exactly MAX_HOPS hops (spec.hops.maxItems)', () => {
    const text = readFileSync(CRD, 'utf8');
    const schema = ['spec', 'versions', 'schema', 'openAPIV3Schema', 'properties'];
    const hops = [...schema, 'spec', 'properties', 'hops'];
    expect(Number(valueAt(text, [...hops, 'maxItems']))).toBe(MAX_HOPS);
    expect(valueAt(text, [...hops, 'minItems'])).toBe('1');
  });

  it('the CRD names the protocols of the one table (any, and @flowline/packet PROTOCOLS)', () => {
    const text = readFileSync(CRD, 'utf8');
    const schema = ['spec', 'versions', 'schema', 'openAPIV3Schema', 'properties'];
    const match = [...schema, 'spec', 'properties', 'classifier', 'properties', 'match'];
    const list = valueAt(text, [...match, 'properties', 'protocol', 'enum']);
    const names = list
      .replace(/^\[|\]$/g, '')
      .split(',')
      .map((n) => n.trim());
    expect(names.sort()).toEqual(['any', ...Object.keys(PROTOCOLS)].sort());
  });
});
