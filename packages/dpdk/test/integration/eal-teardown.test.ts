/**
 * Teardown with hugepage files on disk (no --in-memory, no unlink): they exist while the EAL
 * runs and none is left after Eal.cleanup().
 */
import { readdirSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';

import { Mempool, initEal, leftoverFiles } from '../../src/index';
import { dataplaneReady, scrubPrefix, testPrefix } from '../support/env';

const prefix = testPrefix('teardown');
afterAll(() => scrubPrefix(prefix));

const files = (): string[] => readdirSync('/dev/hugepages').filter((f) => f.startsWith(prefix));

describe.skipIf(dataplaneReady())('EAL teardown (root, hugepages)', () => {
  it('removes every hugepage file and the runtime dir of its prefix', () => {
    const eal = initEal({
      filePrefix: prefix,
      lcores: [0],
      inMemory: false,
      hugeUnlink: false,
      memoryMb: 64,
    });
    const pool = Mempool.create({ size: 2047 });
    expect(pool.info().available).toBe(2047);
    expect(files().length).toBeGreaterThan(0);
    expect(leftoverFiles(prefix).length).toBeGreaterThan(0);
    const removed = eal.cleanup();
    expect(removed.length).toBeGreaterThan(0);
    expect(files()).toEqual([]);
    expect(leftoverFiles(prefix)).toEqual([]);
  });
});
