import { describe, expect, it } from 'vitest';
import type { ChainSwitch } from './chain-switch';
import { ChainController } from './controller';
import type { NfDirectory, NfRecord } from './directory';
import {
  ChainExistsError,
  ChainKeyConflictError,
  ChainNotFoundError,
  HopConfigError,
  StaleGenerationError,
  UnresolvedPortError,
} from './errors';
import { chainKey } from './flows';
import { MemoryChainStore } from './store';
import { until } from '../test/support/until';

class RecordingSwitch implements ChainSwitch {
  tables: string[][] = [];
  ports = new Set(['gen1', 'fw1', 'fw2', 'sink1', 'uplink']);
  refuse = false;
  async apply(flows: string[]) {
    if (this.refuse) throw new Error('ovs-ofctl: bundle rejected');
    this.tables.push(flows);
  }
  async flowStats() {
    return (this.tables.at(-1) ?? []).map((f) => ({
      cookie: /cookie=(0x[0-9a-f]+)/.exec(f)?.[1] ?? '0x0',
      table: 0,
      priority: 0,
      durationSec: 0,
      nPackets: 7,
      nBytes: 0,
      match: '',
      actions: '',
    }));
  }
  async portNames() {
    return this.ports;
  }
  get table() {
    return this.tables.at(-1)!;
  }
}

const directory: NfDirectory = {
  lookup: async (nf): Promise<NfRecord | undefined> =>
    ({
      'default/gen': { name: nf, interfaces: { net1: 'gen1' }, grpcAddress: 'gen:1' },
      'default/fw': { name: nf, interfaces: { net1: 'fw1', net2: 'fw2' }, grpcAddress: 'fw:1' },
      'default/sink': { name: nf, interfaces: { net1: 'sink1' } },
    })[nf],
};

const spec = {
  classifier: { ingressPort: 'default/gen/net1', protocol: 'udp' },
  hops: [{ nf: 'default/fw', ingressInterface: 'net1', egressInterface: 'net2' }],
  egressPort: 'default/sink/net1',
  failurePolicy: 'BYPASS' as const,
};

function setup() {
  const sw = new RecordingSwitch();
  const store = new MemoryChainStore();
  const healthCallbacks = new Map<string, (healthy: boolean, message: string) => void>();
  const controller = new ChainController({
    store,
    directory,
    switch: sw,
    health: (address, onChange) => {
      healthCallbacks.set(address, onChange);
      return () => healthCallbacks.delete(address);
    },
  });
  return { sw, store, controller, healthCallbacks };
}

describe('ChainController', () => {
  it('creates a chain: resolves NF interfaces to OVS ports, programs, persists, reports ACTIVE', async () => {
    const { sw, store, controller } = setup();
    await controller.start();
    const chain = await controller.create('demo', spec);
    expect(chain.status).toMatchObject({
      phase: 'ACTIVE',
      hops: [{ nf: 'default/fw', ingressOvsPort: 'fw1', egressOvsPort: 'fw2', healthy: true }],
    });
    expect(sw.table.filter((f) => f.includes('in_port=gen1'))[0]).toMatch(/actions=output:fw1$/);
    expect(await store.load()).toEqual([{ name: 'demo', spec, generation: '1' }]);
  });

  it('refuses duplicates, unknown chains and stale generations', async () => {
    const { controller } = setup();
    await controller.create('demo', spec);
    await expect(controller.create('demo', spec)).rejects.toThrow(ChainExistsError);
    await expect(controller.update('nope', spec)).rejects.toThrow(ChainNotFoundError);
    await expect(controller.update('demo', spec, 7n)).rejects.toThrow(StaleGenerationError);
    expect((await controller.update('demo', spec, 1n)).generation).toBe('2');
    await controller.delete('demo');
    await expect(controller.delete('demo')).rejects.toThrow(ChainNotFoundError);
  });

  it("refuses a name whose flow key is another chain's (the key keeps chains' traffic apart), and nothing changes", async () => {
    const { sw, store, controller } = setup();
    // Two DNS labels with one 32-bit FNV-1a key (found by a birthday search).
    expect(chainKey('chain-mvja')).toBe(chainKey('chain-5pfs'));
    await controller.create('chain-5pfs', spec);
    const table = [...sw.table];
    const stored = await store.load();
    const err = await controller.create('chain-mvja', spec).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ChainKeyConflictError);
    expect(err).toMatchObject({ field: 'name', holder: 'chain-5pfs', key: 0x68b04e4f });
    expect((err as Error).message).toMatch(/^name: .*0x68b04e4f.*"chain-5pfs"/);
    expect(sw.table).toEqual(table);
    expect(await store.load()).toEqual(stored);
    expect(controller.list().map((c) => c.name)).toEqual(['chain-5pfs']);
    // the key is free again once its holder is gone
    await controller.delete('chain-5pfs');
    expect((await controller.create('chain-mvja', spec)).status?.phase).toBe('ACTIVE');
  });

  it('an unresolvable hop is refused naming the field, and nothing changes', async () => {
    const { sw, store, controller } = setup();
    const bad = {
      ...spec,
      hops: [{ nf: 'default/fw', ingressInterface: 'net1', egressInterface: 'net9' }],
    };
    const err = await controller.create('demo', bad).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnresolvedPortError);
    expect((err as UnresolvedPortError).message).toMatch(
      /^spec\.hops\[0\]\.egress_interface: NF "default\/fw" has no interface net9/,
    );
    expect(sw.tables).toEqual([]);
    expect(await store.load()).toEqual([]);
    expect(controller.list()).toEqual([]);
  });

  it('a bundle the switch rejects leaves state and store unchanged', async () => {
    const { sw, store, controller } = setup();
    await controller.create('demo', spec);
    sw.refuse = true;
    await expect(
      controller.update('demo', { ...spec, failurePolicy: 'FAIL_CLOSED' }),
    ).rejects.toThrow(/bundle rejected/);
    expect(controller.get('demo').generation).toBe('1');
    expect((await store.load())[0]!.generation).toBe('1');
  });

  it('a dead hop applies the failure policy and recovers when it is healthy again', async () => {
    const { sw, controller, healthCallbacks } = setup();
    const events: string[] = [];
    controller.watch((type, c) => events.push(`${type}:${c.status?.phase}`));
    await controller.create('demo', spec);
    // The health watch starts once the directory lookup answers.
    const fwHealth = await until('fw health watch', () => healthCallbacks.get('fw:1'));
    fwHealth(false, 'NOT_SERVING');
    await controller.reconcile();
    expect(controller.get('demo').status).toMatchObject({
      phase: 'DEGRADED',
      message: expect.stringMatching(/bypassed/),
    });
    expect(sw.table.find((f) => f.includes('in_port=gen1'))).toMatch(/actions=output:sink1$/);
    fwHealth(true, 'SERVING');
    await controller.reconcile();
    expect(controller.get('demo').status?.phase).toBe('ACTIVE');
    expect(sw.table.find((f) => f.includes('in_port=gen1'))).toMatch(/actions=output:fw1$/);
    expect(events).toEqual(['ADDED:ACTIVE', 'MODIFIED:DEGRADED', 'MODIFIED:ACTIVE']);
  });

  it('a hop that comes back gets its hop config again before traffic is steered into it; one that cannot take it stays out of the path', async () => {
    const sw = new RecordingSwitch();
    const healthCallbacks = new Map<string, (healthy: boolean, message: string) => void>();
    const log: string[] = [];
    let refuse = false;
    const controller = new ChainController({
      store: new MemoryChainStore(),
      directory,
      switch: sw,
      health: (address, onChange) => {
        healthCallbacks.set(address, onChange);
        return () => healthCallbacks.delete(address);
      },
      nfConfig: {
        apply: async (address, _config, at) => {
          if (refuse) throw new HopConfigError(`${at}.firewall_rules[0]`, 'NF not ready');
          log.push(`apply ${address}`);
          return async () => void log.push(`undo ${address}`);
        },
      },
    });
    const configured = {
      ...spec,
      hops: [{ ...spec.hops[0]!, config: { firewallRules: [{ id: 'chain-allow' }] } }],
    };
    await controller.create('demo', configured);
    expect(log).toEqual(['apply fw:1']);
    const fwHealth = await until('fw health watch', () => healthCallbacks.get('fw:1'));
    const steered = () => sw.table.find((f) => f.includes('in_port=gen1'));
    fwHealth(false, 'unreachable'); // killed: its rules went with it
    await controller.reconcile();
    expect(steered()).toMatch(/actions=output:sink1$/);
    // Back (a new instance), but it refuses the config: still bypassed, and the status says why.
    refuse = true;
    fwHealth(true, 'SERVING');
    await controller.reconcile();
    expect(steered()).toMatch(/actions=output:sink1$/);
    expect(controller.get('demo').status).toMatchObject({
      phase: 'DEGRADED',
      hops: [{ healthy: false, message: expect.stringMatching(/hop config.*NF not ready/) }],
    });
    // It takes it at the next reconcile: configured first, then steered into.
    refuse = false;
    await controller.reconcile();
    expect(log).toEqual(['apply fw:1', 'apply fw:1']);
    expect(steered()).toMatch(/actions=output:fw1$/);
    expect(controller.get('demo').status?.phase).toBe('ACTIVE');
    // Deleting the chain takes the config back once, from the instance that has it.
    await controller.delete('demo');
    expect(log).toEqual(['apply fw:1', 'apply fw:1', 'undo fw:1']);
  });

  it('survives a restart: a new controller on the same store programs the same table', async () => {
    const first = setup();
    await first.controller.create('demo', spec);
    const table = first.sw.table;
    const sw2 = new RecordingSwitch();
    const again = new ChainController({ store: first.store, directory, switch: sw2 });
    await again.start();
    expect(sw2.table).toEqual(table);
    expect(again.get('demo').status?.phase).toBe('ACTIVE');
  });

  it("keeps a chain's owner through updates and restarts", async () => {
    const first = setup();
    await first.controller.create('owned', spec, 'ServiceChain/nfs/owned');
    await first.controller.create('plain', spec);
    await first.controller.update('owned', { ...spec, failurePolicy: 'FAIL_CLOSED' });
    expect((await first.store.load()).map((c) => [c.name, c.owner])).toEqual([
      ['owned', 'ServiceChain/nfs/owned'],
      ['plain', undefined],
    ]);
    const again = new ChainController({
      store: first.store,
      directory,
      switch: new RecordingSwitch(),
    });
    await again.start();
    expect(again.owners()).toEqual(new Map([['owned', 'ServiceChain/nfs/owned']]));
  });

  it('re-programs the switch when its flows vanish (ovs-vswitchd restart)', async () => {
    const { sw, controller } = setup();
    await controller.create('demo', spec);
    expect(await controller.reconcileIfLost()).toBe(false);
    sw.tables.push(['priority=0,actions=NORMAL']);
    expect(await controller.reconcileIfLost()).toBe(true);
    expect(sw.table.some((f) => f.includes('in_port=gen1'))).toBe(true);
  });

  it('reports per-hop packet counters from flow stats', async () => {
    const { controller } = setup();
    await controller.create('demo', spec);
    const [chain] = await controller.statsSnapshot();
    // "udp" with no prefixes is two flows per step (udp and udp6), 7 packets each.
    expect(chain!.status).toMatchObject({ classifiedPackets: '14', hops: [{ packets: '14' }] });
  });
});
