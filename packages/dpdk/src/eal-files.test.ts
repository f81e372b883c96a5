import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { ealHugepageFiles, ealRuntimeDirs, leftoverFiles } from './eal-files';

let dir: string, huge: string, run: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'fldpdk-ealfiles-'));
  huge = join(dir, 'huge');
  run = join(dir, 'run');
  mkdirSync(huge);
  mkdirSync(run);
  for (const f of [
    'fwmap_0',
    'fwseg0-1',
    'fw-41map_0',
    'fw-41seg0',
    'fw2map_0', // another prefix that extends fw
    'fw-xmap_0',
    'fw-map_0', // prefix "fw-": no pid after the dash
    'fwconfig', // not a hugepage file's name
    'rt-44map_0',
  ])
    writeFileSync(join(huge, f), '');
  for (const d of ['fw', 'fw-41', 'fw2', 'fw-x', 'rt-44'])
    mkdirSync(join(run, d, 'sub'), { recursive: true });
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const names = (paths: string[]) => paths.map((p) => basename(p)).sort();

describe('EAL leftovers by file prefix', () => {
  it("exact: the prefix's own hugepage files and runtime directory, no other prefix's", () => {
    const o = { hugeDir: huge, runDir: run };
    expect(names(ealHugepageFiles('fw', o))).toEqual(['fwmap_0', 'fwseg0-1']);
    expect(names(ealRuntimeDirs('fw', o))).toEqual(['fw']);
    expect(leftoverFiles('fw', o).sort()).toEqual(
      [join(huge, 'fwmap_0'), join(huge, 'fwseg0-1'), join(run, 'fw')].sort(),
    );
  });

  it('process: the prefix with or without a "-<pid>", never a prefix that extends it', () => {
    const o = { hugeDir: huge, runDir: run, match: 'process' as const };
    expect(names(ealHugepageFiles('fw', o))).toEqual([
      'fw-41map_0',
      'fw-41seg0',
      'fwmap_0',
      'fwseg0-1',
    ]);
    expect(names(ealRuntimeDirs('fw', o))).toEqual(['fw', 'fw-41']);
  });

  it('family: every prefix that starts with it', () => {
    const o = { hugeDir: huge, runDir: run, match: 'family' as const };
    expect(names(ealRuntimeDirs('fw', o))).toEqual(['fw', 'fw-41', 'fw-x', 'fw2']);
    expect(names(ealHugepageFiles('r', o))).toEqual(['rt-44map_0']);
  });

  it('names nothing for a prefix that is not one plain name, or where there is no directory', () => {
    // '..' would name the run directory's parent, 'a/b' a path under another prefix's directory
    for (const p of ['..', '.', '../etc', 'a/b', ''])
      for (const match of ['exact', 'process', 'family'] as const)
        expect(leftoverFiles(p, { hugeDir: huge, runDir: run, match })).toEqual([]);
    expect(leftoverFiles('fw', { hugeDir: join(dir, 'none'), runDir: join(dir, 'none') })).toEqual(
      [],
    );
  });
});
