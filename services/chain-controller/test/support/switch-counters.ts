import type { FlowStats } from '@flowline/ovs';
import type { chainV1 } from '@flowline/proto';
import type { ChainSwitch } from '../../src/chain-switch';
import { ChainController } from '../../src/controller';
import type { NfDirectory } from '../../src/directory';
import { MemoryChainStore } from '../../src/store';

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

/** The chain the cross-node tests carry: UDP over IPv4 from `<ns>/gen` through fw and rtr to `<ns>/sink`. */
export function crossSpec(ns: string): chainV1.ChainSpec {
  return {
    classifier: { ingressPort: `${ns}/gen/net1`, ipVersion: 4, protocol: 'udp' },
    hops: [
      { nf: `${ns}/fw`, ingressInterface: 'net1', egressInterface: 'net2' },
      { nf: `${ns}/rtr`, ingressInterface: 'net1', egressInterface: 'net2' },
    ],
    egressPort: `${ns}/sink/net1`,
  };
}

/** A ChainController on `sw` with an in-memory store, the default flow drop and no health watches. */
export function dropController(sw: ChainSwitch, directory: NfDirectory): ChainController {
  return new ChainController({
    store: new MemoryChainStore(),
    directory,
    switch: sw,
    health: () => () => undefined,
    compile: { defaultAction: 'drop' },
  });
}
