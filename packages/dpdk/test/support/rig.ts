/**
 * A pipeline test rig on net_ring ports: what JavaScript sends on a ring port's queue 0 is what
 * the pipeline worker receives there, and what the worker sends on an output port's queue 0 is
 * what JavaScript receives from it. Packets are pushed in, and the rig waits until the pipeline
 * has decided the fate of every one of them (forwarded, dropped with a reason, or punted).
 */
import { afterAll, beforeAll } from 'vitest';

import {
  Mempool,
  Port,
  devargs,
  initEal,
  Pipeline,
  type AclStage,
  type Eal,
  type LpmStage,
} from '../../src/index';
import { dataplaneReady, scrubPrefix, testPrefix } from './env';
import { BACKOFF } from './io';

export * from './io';

export interface RingRig {
  pool: Mempool;
  ports: Port[];
  close(): void;
}

/** n net_ring ports with one queue each on one pool. */
export function ringPorts(tag: string, n: number, poolSize = 8191): RingRig {
  const pool = Mempool.create({ size: poolSize });
  const ports = Array.from({ length: n }, (_, i) =>
    Port.open(devargs.ring({ id: `${tag}${i}` }), pool, { rxDescriptors: 1024 }),
  );
  return {
    pool,
    ports,
    close() {
      for (const p of ports) p.close();
    },
  };
}

/**
 * The test file's one EAL (lcores 0 and 1: the worker runs on 1), set up before its tests and
 * cleaned up after them, leaving no hugepage file behind.
 */
export function eachFileEal(name: string): void {
  const prefix = testPrefix(name);
  let eal: Eal | undefined;
  beforeAll(() => {
    if (dataplaneReady()) return;
    eal = initEal({ filePrefix: prefix, lcores: [0, 1] });
  });
  afterAll(() => {
    eal?.cleanup();
    scrubPrefix(prefix);
  });
}

/** eachFileEal with n ring ports, opened before the file's tests. */
export function eachFileRig(name: string, n: number): () => RingRig {
  let rig: RingRig | undefined;
  eachFileEal(name);
  beforeAll(() => {
    if (dataplaneReady()) return;
    rig = ringPorts(name, n);
  });
  return () => {
    if (!rig) throw new Error('the rig was not set up');
    return rig;
  };
}

/** A pipeline in -> lpm stage "rt", on the test back-off. */
export function lpmPipeline(input: Port, lpm: Omit<LpmStage, 'kind' | 'name'>): Pipeline {
  return Pipeline.create({
    inputs: [input],
    backoff: BACKOFF,
    stages: [{ kind: 'lpm', name: 'rt', ...lpm }],
  });
}

/** A pipeline in -> acl stage "fw" -> l2fwd out, on the test back-off. */
export function aclForward(input: Port, output: Port, acl: Omit<AclStage, 'kind'> = {}): Pipeline {
  return Pipeline.create({
    inputs: [input],
    backoff: BACKOFF,
    stages: [
      { kind: 'acl', name: 'fw', ...acl },
      { kind: 'l2fwd', forward: [{ from: input, to: output }] },
    ],
  });
}
