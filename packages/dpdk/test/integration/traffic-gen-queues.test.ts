/**
 * The traffic generator's queues against its ports' (root, hugepages, net_ring ports): a tx or
 * rx queue the port was not configured with is refused at create, naming the field, since
 * rte_eth_tx_burst and rx_burst do not check it and the poller's lcore would crash on it.
 */
import { describe, expect, it } from 'vitest';

import { TrafficGenError, TrafficGenerator, type GenFlowSpec, type Port } from '../../src/index';
import { dataplaneReady, waitFor } from '../support/env';
import { eachFileRig } from '../support/rig';

const rigOf = eachFileRig('tgq', 1);

describe.skipIf(dataplaneReady())('traffic generator queues (root, hugepages)', () => {
  const flow = (port: Port): GenFlowSpec => ({
    port,
    protocol: 'udp',
    srcIp: '10.0.0.1',
    dstIp: '10.0.0.2',
    srcPort: 1000,
    dstPort: 2000,
    count: 10,
  });

  it('refuses a tx or rx queue its port does not have (one of each here), naming the field', () => {
    const [port] = rigOf().ports as [Port];
    const pool = rigOf().pool;
    const create = (spec: Partial<Parameters<typeof TrafficGenerator.create>[0]>) => () =>
      TrafficGenerator.create({ pool, flows: [flow(port)], ...spec });
    expect(create({ txQueue: 1 })).toThrow(TrafficGenError);
    expect(create({ txQueue: 1 })).toThrow(
      /^txQueue: port \d+ of flow 0 has 1 tx queue, not queue 1/,
    );
    expect(
      create({
        rx: [
          { port, queue: 0 },
          { port, queue: 1 },
        ],
      }),
    ).toThrow(/^rx\[1\]\.queue: port \d+ has 1 rx queue, not queue 1/);
    expect(create({ flows: [], rx: [{ port, queue: 3 }] })).toThrow(
      expect.objectContaining({ path: 'rx[0].queue', op: 'gen_create' }),
    );
  });

  it('runs on the queues the port has: ten packets out of tx queue 0, counted on rx queue 0', async () => {
    const [port] = rigOf().ports as [Port];
    const g = TrafficGenerator.create({
      pool: rigOf().pool,
      flows: [flow(port)],
      rx: [{ port, queue: 0 }],
      backoff: { spinPolls: 64, sleepMinUs: 10, sleepMaxUs: 200 },
    });
    try {
      g.start();
      expect(await waitFor(() => g.results().flows[0]?.rxPackets === 10)).toBe(true);
      expect(g.results().flows[0]).toMatchObject({ txPackets: 10, rxPackets: 10, lost: 0 });
    } finally {
      g.close();
    }
  });
});
