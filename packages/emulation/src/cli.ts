#!/usr/bin/env node
// flowline-emulate: the emulated-NIC tool (what `flowline-device-plugin emulate` was). The device
// plugin reads the tree it makes through --sysfs-root; tools/node, the device plugin's tests and
// the kind nodes (tools/kind/e2e.sh) run it.
import { nonNegativeIntFlag, requiredFlag } from '@flowline/cli-flags';
import { createLogger } from '@flowline/telemetry';
import { parseArgs } from 'node:util';
import { EmulatedHost, parsePfSpec } from './emulate';
import { EmulationError, UsageError } from './errors';

const USAGE = `flowline-emulate — emulated SR-IOV NICs: a sysfs-shaped tree for --sysfs-root

  flowline-emulate create --root DIR --pf NAME:VFS[:NUMA[:VFDRIVER]]... [--veth]
                          [--netns NAME] [--hugepages N|host] [--numa-nodes N]
  flowline-emulate numvfs --root DIR --pf NAME --count N
  flowline-emulate unbind --root DIR --vf ADDRESS
  flowline-emulate bind   --root DIR --vf ADDRESS --driver DRIVER
  flowline-emulate link   --root DIR --ifname NAME --state up|down
  flowline-emulate rm-netdev --root DIR --vf ADDRESS
  flowline-emulate destroy --root DIR
`;

const intOption = (value: string | undefined, name: string, fallback: number): number =>
  nonNegativeIntFlag(value, name, fallback, UsageError);

const need = (value: string | undefined, name: string): string =>
  requiredFlag(value, name, USAGE, UsageError);

const log = createLogger('emulation');

function emulate(args: string[]): void {
  const [action, ...rest] = args;
  if (action === '--help' || action === '-h' || action === 'help') {
    process.stdout.write(USAGE);
    return;
  }
  const { values } = parseArgs({
    args: rest,
    options: {
      root: { type: 'string' },
      pf: { type: 'string', multiple: true },
      veth: { type: 'boolean' },
      netns: { type: 'string' },
      hugepages: { type: 'string' },
      'numa-nodes': { type: 'string' },
      count: { type: 'string' },
      vf: { type: 'string' },
      driver: { type: 'string' },
      ifname: { type: 'string' },
      state: { type: 'string' },
    },
  });
  const root = need(values.root, 'root');
  const one = (v: string[] | undefined): string => need(v?.[0], 'pf');
  const open = (): EmulatedHost =>
    EmulatedHost.open(root, (p) =>
      log.warn('unreadable emulated host state moved aside; the previous copy is tried', {
        file: p.file,
        error: p.error,
        ...(p.movedTo ? { movedTo: p.movedTo } : {}),
      }),
    );
  switch (action) {
    case 'create': {
      const pfs = (values.pf ?? []).map(parsePfSpec);
      if (pfs.length === 0) throw new UsageError('create needs at least one --pf NAME:VFS');
      const hp = values.hugepages;
      EmulatedHost.create({
        root,
        pfs,
        veth: values.veth ?? false,
        ...(values.netns ? { netns: values.netns } : {}),
        ...(hp === undefined
          ? {}
          : { hugepages: hp === 'host' ? 'host' : intOption(hp, 'hugepages', 0) }),
        ...(values['numa-nodes']
          ? { numaNodes: intOption(values['numa-nodes'], 'numa-nodes', 1) }
          : {}),
      });
      break;
    }
    case 'numvfs':
      open().setNumVfs(one(values.pf), intOption(need(values.count, 'count'), 'count', 0));
      break;
    case 'unbind':
      open().unbind(need(values.vf, 'vf'));
      break;
    case 'bind':
      open().bind(need(values.vf, 'vf'), need(values.driver, 'driver'));
      break;
    case 'link': {
      const state = need(values.state, 'state');
      if (state !== 'up' && state !== 'down')
        throw new UsageError(`--state ${state}: use up or down`);
      open().setLink(need(values.ifname, 'ifname'), state);
      break;
    }
    case 'rm-netdev':
      open().removeNetdev(need(values.vf, 'vf'));
      break;
    case 'destroy':
      open().destroy();
      break;
    default:
      throw new UsageError(`unknown action ${JSON.stringify(action)}\n\n${USAGE}`);
  }
}

try {
  emulate(process.argv.slice(2));
} catch (err: unknown) {
  if (err instanceof EmulationError || err instanceof UsageError)
    log.error(err.message, { error: err.name });
  else log.error('failed', { error: err });
  process.exitCode = err instanceof UsageError ? 64 : 1;
}
