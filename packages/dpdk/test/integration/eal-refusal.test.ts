/** DPDK refusing an argument: a typed error naming it; the process then says why it cannot retry. */
import { afterAll, describe, expect, it } from 'vitest';

import { EalInitError, EalStateError, initEal } from '../../src/index';
import { dataplaneReady, scrubPrefix, testPrefix } from '../support/env';

const prefix = testPrefix('refusal');
afterAll(() => scrubPrefix(prefix));

describe.skipIf(dataplaneReady())('EAL refusal (root)', () => {
  it('names the EAL argument DPDK rejected and keeps the process able to explain itself', () => {
    let err: unknown;
    try {
      initEal({ filePrefix: prefix, lcores: [0], extraArgs: ['--proc-type=bogus'] });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(EalInitError);
    const e = err as EalInitError;
    expect(e.argument).toBe('--proc-type');
    expect(e.message).toMatch(
      /rte_eal_init failed.*EAL argument --proc-type.*Invalid process type/,
    );
    expect(e.errno).toBe(22);
    expect(() => initEal({ filePrefix: prefix })).toThrow(EalStateError);
    expect(() => initEal({ filePrefix: prefix })).toThrow(/start a new process/);
  });
});
