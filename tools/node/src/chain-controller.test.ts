import { describe, expect, it } from 'vitest';
import { nodePaths, parseNodeConfig } from './config';
import { controllerAddress, controllerArgs } from './chain-controller';

const paths = nodePaths('/s');

describe("the node's chain controller", () => {
  it('listens on a unix socket in the state dir unless the config gives an address', () => {
    expect(controllerAddress(parseNodeConfig({ stateDir: '/s' }), paths)).toBe(
      'unix:///s/chain-controller.sock',
    );
    const config = parseNodeConfig({
      stateDir: '/s',
      controller: { grpcAddress: '127.0.0.1:7000' },
    });
    expect(controllerAddress(config, paths)).toBe('127.0.0.1:7000');
  });

  it("runs beside the node's OVS, with the node's NF addresses and its chains in the state dir", () => {
    const config = parseNodeConfig({
      stateDir: '/s',
      controller: { reconcileMs: 250 },
    });
    expect(controllerArgs(config, paths, '/s/ovs/db.sock')).toEqual([
      'flowline-chain-controller',
      '--listen',
      'unix:///s/chain-controller.sock',
      '--ovsdb',
      '/s/ovs/db.sock',
      '--ovs-run-dir',
      '/s/ovs',
      '--bridge',
      'br-flowline',
      '--socket-dir',
      '/s/sockets',
      '--state-file',
      '/s/chains.json',
      '--nf-addresses',
      '/s/nf-addresses.json',
      '--reconcile-ms',
      '250',
      '--metrics-port',
      'off',
    ]);
  });
});
