// The node's devices: emulated SR-IOV NICs (veth-backed VFs in a sysfs-shaped tree, in their own
// netns), kubelet's side of the device plugin API (KubeletPeer, serving Registration), and the
// device plugin's real binary over them, as a node in a cluster runs it.
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { EmulatedHost, KubeletPeer } from '@flowline/emulation';
import { resolveCommand } from './commands';
import { writeDerivedFile } from './derived-files';
import { NodeStepError } from './errors';
import { deleteNetns } from './netns';
import type { NodeContext } from './node-context';
import { isAlive, startProcess } from './processes';
import { type StopReport, netnsExists, stopAndRecord } from './stop-report';

export const EMU_NETNS = 'flowline-node-emu';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The resources the device plugin's config says it serves (`flowline.io/<pool>`). */
export function poolResources(devicePlugin: Record<string, unknown>): string[] {
  return ((devicePlugin.pools as { name: string }[] | undefined) ?? []).map(
    (pool) => `flowline.io/${pool.name}`,
  );
}

/**
 * The emulated NICs, kubelet's side and the device plugin process. What it made is kept here
 * (`emulated`, `kubelet`) as soon as it is made, so stop() undoes a start that failed halfway.
 */
export class NodeDevicePlugin {
  emulated?: EmulatedHost;
  kubelet?: KubeletPeer;

  constructor(private readonly ctx: NodeContext) {}

  /** Makes the NICs, serves Registration, starts the plugin; resolves once every pool registered. */
  async start(): Promise<void> {
    const { ctx } = this;
    const p = ctx.paths;
    const nics = ctx.config.emulatedNics;
    if (existsSync(p.sysfs)) {
      try {
        EmulatedHost.open(p.sysfs).destroy();
      } catch {
        rmSync(p.sysfs, { recursive: true, force: true });
      }
    }
    ctx.state.emulated = { root: p.sysfs, pfs: nics.map((n) => n.pf) };
    ctx.save();
    this.emulated = EmulatedHost.create({
      root: p.sysfs,
      veth: true,
      netns: EMU_NETNS,
      hugepages: 'host',
      pfs: nics.map((n) => ({ name: n.pf, numVfs: n.vfs, numaNode: n.numa })),
    });
    writeDerivedFile(p.devicePluginConfig, ctx.config.devicePlugin);
    // Kubelet serves Registration before any plugin starts.
    this.kubelet = new KubeletPeer(p.pluginDir);
    await this.kubelet.start();
    const argv = resolveCommand([
      'flowline-device-plugin',
      'serve',
      '--config',
      p.devicePluginConfig,
      '--plugin-dir',
      p.pluginDir,
      '--sysfs-root',
      p.sysfs,
      '--devinfo-dir',
      p.devinfo,
      '--cdi-dir',
      join(p.stateDir, 'cdi'),
      '--metrics-port',
      '0',
    ]);
    ctx.state.devicePlugin = startProcess({
      argv,
      log: join(p.logs, 'device-plugin.log'),
    });
    ctx.save();
    const pools = poolResources(ctx.config.devicePlugin);
    const deadline = Date.now() + 20_000;
    while (pools.some((r) => this.kubelet!.devices(r) === undefined)) {
      if (!isAlive(ctx.state.devicePlugin))
        throw new NodeStepError(
          'start device plugin',
          'it exited',
          `read ${ctx.state.devicePlugin.log}`,
        );
      if (Date.now() > deadline)
        throw new NodeStepError(
          'start device plugin',
          `no registration of ${pools.join(', ')} within 20 s`,
          `read ${ctx.state.devicePlugin.log}`,
        );
      await sleep(100);
    }
    ctx.log.info('device plugin registered', {
      resources: [...this.kubelet.connections.keys()],
    });
  }

  /**
   * Stops the plugin process, kubelet's side and the NICs (from the state when another process
   * made them), and the NICs' netns. Notes what was there.
   */
  async stop(report: StopReport): Promise<void> {
    const { state } = this.ctx;
    await stopAndRecord(report, 'device-plugin', state.devicePlugin);
    await this.kubelet?.stop().catch(() => undefined);
    this.kubelet = undefined;
    const emuNetns = netnsExists(EMU_NETNS);
    if (state.emulated) {
      try {
        (this.emulated ?? EmulatedHost.open(state.emulated.root)).destroy();
      } catch {
        rmSync(state.emulated.root, { recursive: true, force: true });
      }
    }
    if (emuNetns && !netnsExists(EMU_NETNS)) report.namespaces.push(EMU_NETNS);
    deleteNetns(EMU_NETNS, report);
  }
}
