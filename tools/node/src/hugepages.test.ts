import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { removeHugepageFiles } from './hugepages';

let dir: string;
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'flnode-huge-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('removeHugepageFiles', () => {
  it("removes the files of one EAL file prefix, counts them, and leaves the others'", () => {
    for (const f of ['flpod_default_fw.map_0', 'flpod_default_fw.map_1', 'flpod_default_rt.map_0'])
      writeFileSync(join(dir, f), '');
    expect(removeHugepageFiles(dir, 'flpod_default_fw')).toBe(2);
    expect(readdirSync(dir)).toEqual(['flpod_default_rt.map_0']);
    expect(removeHugepageFiles(dir, 'flpod_default_fw')).toBe(0);
  });

  it('finds nothing where no hugetlbfs is mounted', () => {
    expect(removeHugepageFiles(join(dir, 'missing'), 'flpod_')).toBe(0);
  });
});
