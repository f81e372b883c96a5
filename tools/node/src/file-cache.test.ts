import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileDerived, ManifestCache, fileVersion } from './file-cache';

const pod = (name: string): string =>
  `apiVersion: v1\nkind: Pod\nmetadata: { name: ${name}, namespace: default }\nspec:\n  containers:\n    - { name: nf, image: flowline/firewall:0.1.0, command: [flowline-firewall] }\n`;

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'flowline-file-cache-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('ManifestCache', () => {
  it('parses a file once while it stays the same, again when it changes or is replaced', () => {
    const cache = new ManifestCache();
    writeFileSync(join(dir, 'a.yaml'), pod('fw'));
    writeFileSync(join(dir, 'b.yml'), pod('rtr'));
    writeFileSync(join(dir, 'notes.txt'), 'not a manifest');
    const names = () => cache.read(dir).map((m) => [m.file, m.pods?.map((p) => p.spec.name)]);
    expect(names()).toEqual([
      ['a.yaml', ['fw']],
      ['b.yml', ['rtr']],
    ]);
    expect(cache.parses).toBe(2);
    for (let i = 0; i < 5; i++) cache.read(dir);
    expect(cache.parses).toBe(2);
    // Rewritten in place (same size), and replaced by a rename (a new inode): both parsed again.
    writeFileSync(join(dir, 'a.yaml'), pod('gw'));
    writeFileSync(join(dir, 'tmp'), pod('lb'));
    renameSync(join(dir, 'tmp'), join(dir, 'b.yml'));
    expect(names()).toEqual([
      ['a.yaml', ['gw']],
      ['b.yml', ['lb']],
    ]);
    expect(cache.parses).toBe(4);
    rmSync(join(dir, 'a.yaml'));
    expect(names()).toEqual([['b.yml', ['lb']]]);
    expect(cache.parses).toBe(4);
  });

  it('keeps no result for a file it cannot parse: it says why each time until the file is fixed', () => {
    const cache = new ManifestCache();
    writeFileSync(join(dir, 'bad.yaml'), 'kind: [');
    expect(cache.read(dir)[0]?.error).toMatch(/bad\.yaml/);
    expect(cache.read(dir)[0]?.error).toMatch(/bad\.yaml/);
    expect(cache.parses).toBe(2);
    writeFileSync(join(dir, 'bad.yaml'), pod('fw'));
    expect(cache.read(dir)[0]?.pods?.[0]?.text).toBe(
      JSON.stringify(cache.read(dir)[0]?.pods?.[0]?.spec),
    );
  });

  it('reads a missing folder as no manifests', () => {
    expect(new ManifestCache().read(join(dir, 'none'))).toEqual([]);
  });
});

describe('FileDerived', () => {
  it('derives again only when the file changed, and every time while it is missing', () => {
    const file = join(dir, 'state.json');
    let reads = 0;
    const owner = new FileDerived(() => ++reads);
    expect(owner.get(file)).toBe(1); // missing
    expect(owner.get(file)).toBe(2);
    writeFileSync(file, '{"agent":{"pid":1}}');
    expect(owner.get(file)).toBe(3);
    expect(owner.get(file)).toBe(3);
    writeFileSync(file, '{"agent":{"pid":2}}');
    expect(owner.get(file)).toBe(4);
    expect(owner.derivations).toBe(4);
    expect(fileVersion(join(dir, 'none'))).toBeUndefined();
  });
});
