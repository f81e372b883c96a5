import { describe, expect, it } from 'vitest';
import { until } from '../test/support/until';
import type { NfDirectory, NfRecord } from './directory';
import type { ResolvedChain } from './flows';
import { type HealthWatch, HopHealth } from './hop-health';
import { validateChainSpec } from './spec';

/** A directory whose gRPC addresses a test may change, and a watch that records what runs. */
function setup(wanted: string[]) {
  const addresses: Record<string, string | undefined> = {
    'default/fw': 'fw:1',
    'default/rt': 'rt:1',
  };
  const directory: NfDirectory = {
    lookup: async (nf): Promise<NfRecord | undefined> => {
      const grpcAddress = addresses[nf];
      return { name: nf, interfaces: {}, ...(grpcAddress ? { grpcAddress } : {}) };
    },
  };
  const running = new Map<string, (healthy: boolean, message: string) => void>();
  const watch: HealthWatch = (address, onChange) => {
    running.set(address, onChange);
    return () => running.delete(address);
  };
  const reports: string[] = [];
  const health = new HopHealth({
    directory,
    watch,
    wanted: () => wanted,
    onReport: (nf, healthy, message) => reports.push(`${nf} ${healthy} ${message}`),
  });
  return { addresses, running, reports, health, wanted };
}

describe('HopHealth', () => {
  it('watches each wanted NF at its gRPC address, and only those', async () => {
    const { running, health, wanted } = setup(['default/fw', 'default/rt']);
    health.sync();
    await until('both watches', () => running.size === 2);
    expect([...running.keys()].sort()).toEqual(['fw:1', 'rt:1']);
    wanted.splice(1);
    health.sync();
    expect([...running.keys()]).toEqual(['fw:1']);
    health.stop();
    expect(running.size).toBe(0);
  });

  it("passes a watch's reports on; record() counts a change of health only", async () => {
    const { running, reports, health } = setup(['default/fw']);
    health.sync();
    const fw = await until('fw watch', () => running.get('fw:1'));
    fw(false, 'NOT_SERVING');
    expect(reports).toEqual(['default/fw false NOT_SERVING']);
    expect(health.healthy('default/fw')).toBe(true); // not recorded yet
    expect(health.record('default/fw', false, 'NOT_SERVING')).toBe(true);
    expect(health.record('default/fw', false, 'unreachable')).toBe(false);
    expect(health.of('default/fw')).toEqual({ healthy: false, message: 'unreachable' });
    expect(health.record('default/fw', true, 'SERVING')).toBe(true);
  });

  it('forgets the health of an NF no chain wants any more', async () => {
    const { running, health, wanted } = setup(['default/fw']);
    health.sync();
    await until('fw watch', () => running.get('fw:1'));
    health.record('default/fw', false, 'NOT_SERVING');
    wanted.splice(0);
    health.sync();
    expect(health.of('default/fw')).toBeUndefined();
    expect(health.healthy('default/fw')).toBe(true);
  });

  it('an NF without a gRPC address is healthy and not watched', async () => {
    const { addresses, running, health } = setup(['default/fw']);
    addresses['default/fw'] = undefined;
    health.sync();
    await until('lookup', () => health.of('default/fw'));
    expect(health.of('default/fw')).toEqual({
      healthy: true,
      message: 'no gRPC address known: health not watched',
    });
    expect(running.size).toBe(0);
  });

  it('a lookup that fails is not an unhandled rejection, and the next sync looks again', async () => {
    let fail = true;
    let lookups = 0;
    const running: string[] = [];
    const health = new HopHealth({
      directory: {
        lookup: async (nf) => {
          lookups++;
          if (fail) throw new Error('OVSDB client is closed');
          return { name: nf, interfaces: {}, grpcAddress: 'fw:1' };
        },
      },
      watch: (address) => {
        running.push(address);
        return () => undefined;
      },
      wanted: () => ['default/fw'],
      onReport: () => undefined,
    });
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      health.sync();
      await new Promise((r) => setTimeout(r, 20));
      expect(unhandled).toEqual([]);
      fail = false;
      health.sync();
      await until('watch', () => running.length > 0);
      expect([lookups, running]).toEqual([2, ['fw:1']]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('restart looks the address up again and keeps the last health until the new watch reports', async () => {
    const { addresses, running, health } = setup(['default/fw']);
    health.sync();
    await until('fw watch', () => running.get('fw:1'));
    health.record('default/fw', false, 'NOT_SERVING');
    addresses['default/fw'] = 'fw:2';
    health.restart('default/fw');
    await until('new fw watch', () => running.get('fw:2'));
    expect(running.has('fw:1')).toBe(false);
    expect(health.healthy('default/fw')).toBe(false);
    health.restart('default/unwatched'); // nothing to restart
    expect([...running.keys()]).toEqual(['fw:2']);
  });

  it('a watch stopped while its address is looked up never starts', async () => {
    const { running, health, wanted } = setup(['default/fw']);
    health.sync();
    wanted.splice(0);
    health.sync();
    await new Promise((r) => setTimeout(r, 20));
    expect(running.size).toBe(0);
  });

  it('without a watch function nothing is watched', async () => {
    const health = new HopHealth({
      directory: { lookup: async () => undefined },
      wanted: () => ['default/fw'],
      onReport: () => undefined,
    });
    health.sync();
    await new Promise((r) => setTimeout(r, 20));
    expect(health.of('default/fw')).toBeUndefined();
  });

  it("marks a resolved chain's hops with their health for the flows", () => {
    const { health } = setup([]);
    const spec = validateChainSpec({
      classifier: { ingressPort: 'a' },
      hops: [
        { nf: 'default/fw', ingressInterface: 'net1', egressInterface: 'net2' },
        { nf: 'default/rt', ingressInterface: 'net1', egressInterface: 'net2' },
      ],
      egressPort: 'b',
    });
    const chain: ResolvedChain = {
      name: 'demo',
      spec,
      ingressPort: 'a',
      egressPort: 'b',
      hops: [
        { nf: 'default/fw', ingressPort: 'fw1', egressPort: 'fw2', healthy: true },
        { nf: 'default/rt', ingressPort: 'rt1', egressPort: 'rt2', healthy: true },
      ],
    };
    health.record('default/rt', false, 'NOT_SERVING');
    expect(health.mark(chain).hops.map((h) => h.healthy)).toEqual([true, false]);
    expect(chain.hops[1]!.healthy).toBe(true); // the chain itself is left as it was
  });
});
