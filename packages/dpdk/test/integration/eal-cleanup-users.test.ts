/**
 * Eal.cleanup() with a running pipeline and a generator that use a port opened after them (an
 * LPM next hop given by updateRoutes): cleanup goes in reverse order of creation, and a port
 * refuses to close under its users, so the port closes its users first. Everything is closed
 * after it, the port included. One EAL in this file, cleaned up by the test.
 */
import { afterAll, describe, expect, it } from 'vitest';

import { Mempool, Port, TrafficGenerator, buildPacket, devargs, initEal } from '../../src/index';
import { dataplaneReady, scrubPrefix, testPrefix } from '../support/env';
import { routingTable } from '../support/tables';
import { lpmPipeline, sendAll, settle } from '../support/rig';

const prefix = testPrefix('cleanup-users');
afterAll(() => scrubPrefix(prefix));

describe.skipIf(dataplaneReady())('Eal.cleanup with ports in use (root, hugepages)', () => {
  it('closes the users of a port opened after them, then the port', async () => {
    const eal = initEal({ filePrefix: prefix, lcores: [0, 1] });
    const pool = Mempool.create({ size: 4095 });
    const input = Port.open(devargs.ring({ id: 'cu0' }), pool);
    const p = lpmPipeline(input, {});
    const gen = TrafficGenerator.create({ flows: [], rx: [{ port: input }] });
    const hop = Port.open(devargs.ring({ id: 'cu1' }), pool);
    p.updateRoutes(
      'rt',
      routingTable({
        nextHops: [{ port: hop.id, mac: '02:00:00:00:00:0b' }],
        routes: [{ prefix: '0.0.0.0/0', nextHop: 0 }],
      }),
    );
    p.start();
    await sendAll(input, pool, [buildPacket({ src: '10.0.0.1', dst: '10.0.0.2' })]);
    await settle(p, 1);
    expect(() => hop.close()).toThrow(/still used by a pipeline on lcore 1/);
    expect(() => eal.cleanup()).not.toThrow();
    expect(p.isRunning).toBe(false);
    expect(() => p.counters()).toThrow(/the pipeline was closed/);
    expect(() => gen.results()).toThrow(/the generator was closed/);
    expect(hop.isClosed).toBe(true);
    expect(input.isClosed).toBe(true);
    expect(pool.isFreed).toBe(true);
  });
});
