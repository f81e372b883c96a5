import type { chainV1 } from '@flowline/proto';
import { describe, expect, it } from 'vitest';
import { recordingLogger } from '../test/support/recording-logger';
import type { NfDirectory, NfRecord } from './directory';
import { HopConfigError } from './errors';
import { HopConfigs } from './hop-configs';
import type { NfConfigurator } from './nf-config';

const directory: NfDirectory = {
  lookup: async (nf): Promise<NfRecord | undefined> =>
    ({
      'default/fw': { name: nf, interfaces: {}, grpcAddress: 'fw:1' },
      'default/rt': { name: nf, interfaces: {}, grpcAddress: 'rt:1' },
      'default/noaddr': { name: nf, interfaces: {} },
    })[nf],
};

const rules = (id: string): chainV1.HopConfig => ({ firewallRules: [{ id }] });
const hop = (nf: string, config?: chainV1.HopConfig): chainV1.Hop => ({
  nf,
  ingressInterface: 'net1',
  egressInterface: 'net2',
  ...(config ? { config } : {}),
});

/** A configurator that logs what it does and refuses at the addresses in `refuse`. */
function recordingConfigurator(refuse: string[] = []) {
  const log: string[] = [];
  const configurator: NfConfigurator = {
    apply: async (address, _config, at) => {
      if (refuse.includes(address)) throw new HopConfigError(`${at}.firewall_rules[0]`, 'refused');
      log.push(`apply ${address} ${at}`);
      return async () => void log.push(`undo ${address}`);
    },
  };
  return { log, configurator };
}

describe('HopConfigs', () => {
  it('applies each configured hop at its NF, in hop order, and takes them back last first', async () => {
    const { log, configurator } = recordingConfigurator();
    const configs = new HopConfigs(directory, configurator);
    const undos = await configs.apply([
      hop('default/fw', rules('a')),
      hop('default/noaddr'),
      hop('default/rt', { routes: [{ prefix: '10.0.0.0/8' }] }),
    ]);
    expect(log).toEqual(['apply fw:1 spec.hops[0].config', 'apply rt:1 spec.hops[2].config']);
    // each undo says whose config it takes back
    expect(undos.map((u) => u.nf)).toEqual(['default/fw', 'default/rt']);
    await configs.takeBack('demo', undos);
    expect(log.slice(2)).toEqual(['undo rt:1', 'undo fw:1']);
  });

  it('a refusal takes back what the call applied and fails naming the item', async () => {
    const { log, configurator } = recordingConfigurator(['rt:1']);
    const configs = new HopConfigs(directory, configurator);
    const err = await configs
      .apply([hop('default/fw', rules('a')), hop('default/rt', rules('b'))])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HopConfigError);
    expect((err as Error).message).toBe('spec.hops[1].config.firewall_rules[0]: refused');
    expect(log).toEqual(['apply fw:1 spec.hops[0].config', 'undo fw:1']);
  });

  it('refuses a hop config without a configurator, or for an NF without a gRPC address', async () => {
    await expect(new HopConfigs(directory).apply([hop('default/fw', rules('a'))])).rejects.toThrow(
      'spec.hops[0].config: this controller has no NF client configured',
    );
    const { configurator } = recordingConfigurator();
    await expect(
      new HopConfigs(directory, configurator).apply([hop('default/noaddr', rules('a'))]),
    ).rejects.toThrow('spec.hops[0].nf: "default/noaddr" has no known gRPC address');
    // Hops without a config need neither.
    expect(await new HopConfigs(directory).apply([hop('default/noaddr')])).toEqual([]);
  });

  it('takeBack logs an undo that fails, naming the chain, and runs the others', async () => {
    const logger = recordingLogger();
    const ran: string[] = [];
    const undo = (nf: string, fn: () => Promise<void>) => Object.assign(fn, { nf, rollback: fn });
    await new HopConfigs(directory, undefined, logger).takeBack('demo', [
      undo('default/a', async () => void ran.push('first')),
      undo('default/b', async () => {
        throw new Error('NF gone');
      }),
    ]);
    expect(ran).toEqual(['first']);
    expect(logger.lines).toMatchObject([
      { level: 'warn', msg: 'taking a hop config back failed', chain: 'demo' },
    ]);
  });
});
