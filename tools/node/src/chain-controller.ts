// The node's chain controller: its real binary beside the node's OVS (unix sockets), reading NF
// addresses from the node and keeping its chains in the state dir.
import { join } from 'node:path';
import { resolveCommand } from './commands';
import type { NodeConfig, NodePaths } from './config';
import { nfAddressesFile, writeDerivedFile } from './derived-files';
import type { NodeContext } from './node-context';
import { startProcess } from './processes';
import type { NodeState } from './state';
import { type StopReport, stopAndRecord } from './stop-report';

/** Where the controller listens: the config's address, else a unix socket in the state dir. */
export const controllerAddress = (config: NodeConfig, paths: NodePaths): string =>
  config.controller.grpcAddress ?? `unix://${join(paths.stateDir, 'chain-controller.sock')}`;

/** The controller's command line (before resolveCommand), given the switch's OVSDB socket. */
export function controllerArgs(config: NodeConfig, paths: NodePaths, ovsdb: string): string[] {
  return [
    'flowline-chain-controller',
    '--listen',
    controllerAddress(config, paths),
    '--ovsdb',
    ovsdb,
    '--ovs-run-dir',
    paths.ovsRunDir,
    '--bridge',
    config.bridge,
    '--socket-dir',
    paths.sockets,
    '--state-file',
    paths.chainState,
    '--nf-addresses',
    nfAddressesFile(paths.stateDir),
    '--reconcile-ms',
    String(config.controller.reconcileMs),
    '--metrics-port',
    'off',
  ];
}

/** Starts the controller (with its certificate) over an empty NF address map; needs the switch. */
export function startController(ctx: NodeContext): void {
  const { config, paths } = ctx;
  writeDerivedFile(nfAddressesFile(paths.stateDir), {});
  const argv = resolveCommand(controllerArgs(config, paths, ctx.state.ovs!.dbSocket));
  const rec = startProcess({
    argv,
    env: { ...process.env, ...ctx.securityEnv((pki) => pki.controller()) },
    log: join(paths.logs, 'chain-controller.log'),
  });
  ctx.state.controller = {
    ...rec,
    grpcAddress: controllerAddress(config, paths),
  };
  ctx.save();
}

/** Stops the controller the state names, if it runs. */
export function stopController(state: NodeState, report: StopReport): Promise<void> {
  return stopAndRecord(report, 'chain-controller', state.controller);
}
