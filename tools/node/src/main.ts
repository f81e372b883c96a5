#!/usr/bin/env node
// flowline-node agent: the long-lived local node (the CLI starts it with `flowline up`).
import { parseArgs } from 'node:util';
import { createLogger } from '@flowline/telemetry';
import { NodeAgent } from './agent';
import { loadNodeConfig, nodePaths } from './config';

const HELP = `flowline-node agent [--state-dir DIR] [--config node.yaml]
  Runs the local node in the foreground: OVS-DPDK, the device plugin over emulated NICs, the
  chain controller, and the pods whose manifests are in <state dir>/manifests. SIGTERM tears
  everything down and exits 0. Normally started by \`flowline up\`.`;

const { values, positionals } = parseArgs({
  options: {
    'state-dir': { type: 'string' },
    config: { type: 'string' },
    help: { type: 'boolean' },
  },
  allowPositionals: true,
});
if (values.help || positionals[0] !== 'agent') {
  process.stdout.write(`${HELP}\n`);
  process.exit(values.help ? 0 : 64);
}
const log = createLogger('node');
let config;
try {
  config = loadNodeConfig(values.config);
} catch (err) {
  log.error((err as Error).message);
  process.exit(1);
}
if (values['state-dir']) config.stateDir = values['state-dir'];
const agent = new NodeAgent(config, nodePaths(config.stateDir), log);
let stopping = false;
const stop = (signal: string): void => {
  if (stopping) return;
  stopping = true;
  log.info('stopping the node', { signal });
  agent.stop().then(
    () => process.exit(0),
    (err: unknown) => {
      log.error('teardown failed', { err });
      process.exit(1);
    },
  );
};
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
agent.start().then(
  () => log.info('node ready', { stateDir: config.stateDir }),
  (err: unknown) => {
    log.error('node failed to start', { err });
    process.exit(1);
  },
);
