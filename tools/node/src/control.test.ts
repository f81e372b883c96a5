import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sweepConfig } from './control';
import { emptyState, readState, writeState } from './state';

let dir: string;
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'flnode-control-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("flowline down's sweep without a config", () => {
  it('cleans up hugepage files in the hugepages dir the node was brought up with', () => {
    const file = join(dir, 'state.json');
    writeState(file, { ...emptyState(), hugepagesDir: '/mnt/huge-1G' });
    const config = sweepConfig(dir, readState(file));
    expect(config.hugepagesDir).toBe('/mnt/huge-1G');
    expect(config.stateDir).toBe(dir);
  });

  it('falls back to the default for a state that does not record it (or records no path)', () => {
    expect(sweepConfig(dir, emptyState()).hugepagesDir).toBe('/dev/hugepages');
    expect(sweepConfig(dir, undefined).hugepagesDir).toBe('/dev/hugepages');
    expect(sweepConfig(dir, { ...emptyState(), hugepagesDir: 'huge' }).hugepagesDir).toBe(
      '/dev/hugepages',
    );
  });
});
