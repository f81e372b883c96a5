import type { FlowStats } from '@flowline/ovs';
import type { chainV1 } from '@flowline/proto';
import type { ChainController } from '../../src/controller';

/** An in-memory node's flow stats: one per flow of its table, each having counted `nPackets`. */
export function tableStats(table: readonly string[], nPackets: number): FlowStats[] {
  return table.map((f) => ({
    cookie: /cookie=(0x[0-9a-f]+)/.exec(f)?.[1] ?? '0x0',
    table: 0,
    priority: 1,
    durationSec: 0,
    nPackets,
    nBytes: 0,
    match: f,
    actions: '',
  }));
}

/**
 * Creates chain `cross` (`spec`, spanning the nodes) and chain `local` (`<ns>/sink` back through
 * `<ns>/fw`, net2 to net1, to `<ns>/gen`: all on fw's node), lets `count` set what each node's
 * flows have counted, and returns both as the controller's statsSnapshot reports them.
 */
export async function countedCrossAndLocal(
  controller: ChainController,
  spec: chainV1.ChainSpec,
  ns: string,
  count: () => void,
): Promise<chainV1.Chain[]> {
  await controller.start();
  await controller.create('cross', spec);
  await controller.create('local', {
    classifier: { ingressPort: `${ns}/sink/net1`, ipVersion: 4, protocol: 'udp' },
    hops: [{ nf: `${ns}/fw`, ingressInterface: 'net2', egressInterface: 'net1' }],
    egressPort: `${ns}/gen/net1`,
  });
  count();
  return controller.statsSnapshot();
}
