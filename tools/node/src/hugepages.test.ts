import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { removeEalRuntimeDirs, removeHugepageFiles } from './hugepages';

let dir: string;
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'flnode-huge-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('removeHugepageFiles', () => {
  it("removes the files of one EAL file prefix (with the NF's -<pid> or without), counts them, and leaves the others'", () => {
    for (const f of [
      'flpod_default_fw-41map_0',
      'flpod_default_fwmap_1',
      'flpod_default_fw-41seg0',
      'flpod_default_fw2-42map_0', // pod fw2: its prefix extends fw's
      'flpod_default_fw_x-43map_0',
      'flpod_default_rt-44map_0',
    ])
      writeFileSync(join(dir, f), '');
    expect(removeHugepageFiles(dir, 'flpod_default_fw')).toBe(3);
    expect(readdirSync(dir).sort()).toEqual([
      'flpod_default_fw2-42map_0',
      'flpod_default_fw_x-43map_0',
      'flpod_default_rt-44map_0',
    ]);
    expect(removeHugepageFiles(dir, 'flpod_default_fw')).toBe(0);
    expect(removeHugepageFiles(dir, 'flpod_', 'family')).toBe(3);
    expect(removeHugepageFiles(dir, '', 'family')).toBe(0);
  });

  it('finds nothing where no hugetlbfs is mounted', () => {
    expect(removeHugepageFiles(join(dir, 'missing'), 'flpod_')).toBe(0);
  });
});

describe('removeEalRuntimeDirs', () => {
  it("removes one process's runtime directory, not those of a prefix that extends it", () => {
    for (const d of ['flpod_default_fw-41', 'flpod_default_fw2-42', 'flpod_default_fwx', 'other'])
      mkdirSync(join(dir, d, 'sub'), { recursive: true });
    expect(removeEalRuntimeDirs('flpod_default_fw', 'process', dir)).toBe(1);
    expect(readdirSync(dir).sort()).toEqual(['flpod_default_fw2-42', 'flpod_default_fwx', 'other']);
    expect(removeEalRuntimeDirs('flpod_', 'family', dir)).toBe(2);
    expect(readdirSync(dir)).toEqual(['other']);
    expect(removeEalRuntimeDirs('', 'family', dir)).toBe(0);
    expect(removeEalRuntimeDirs('flpod_', 'family', join(dir, 'missing'))).toBe(0);
  });
});
