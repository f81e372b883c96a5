// The single-node runtime: what kubelet and a container runtime do for Flowline pods, on one
// machine without Kubernetes. It starts the node's daemons (OVS-DPDK, the device plugin over
// emulated NICs, the chain controller), and runs pods as a network namespace plus one NF
// process: devices from the device plugin's Allocate over gRPC (as kubelet calls it), interfaces
// from the CNI plugin executed per the spec (as a runtime calls it). Every step is written to the
// state file before it is taken, so teardown (teardownNode) can undo all of it after a crash.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { EmulatedHost, KubeletPeer } from '@flowline/emulation';
import { podFolderName, startOvsDpdk, type OvsDpdk } from '@flowline/ovs';
import { writeStateFileSync } from '@flowline/state-file';
import type { LocalPki, TlsFiles } from '@flowline/grpc-auth';
import type { Logger } from '@flowline/telemetry';
import { execCni } from './cni';
import { REPO_ROOT, resolveCommand } from './commands';
import { type NodeConfig, type NodePaths, netconfFor } from './config';
import { NodeStepError } from './errors';
import { type PodSpec, podKey } from './manifest';
import { nodePki, removePodCertificate, securityEnv } from './pki';
import { isAlive, startProcess, stopProcess } from './processes';
import {
  type AttachmentRecord,
  type NodeState,
  type PodRecord,
  type ProcessRecord,
  emptyState,
  readState,
  removeState,
  writeState,
} from './state';
import {
  type StopReport,
  emptyStopReport,
  mergeStopReport,
  netnsExists,
  stopAndRecord,
} from './stop-report';

export const CNI_PATH_SYSTEM = '/usr/lib/cni';
export const OVS_NETNS = 'flowline-node-ovs';
export const EMU_NETNS = 'flowline-node-emu';
export const POD_NETNS_PREFIX = 'flpod-';
export const POD_FILE_PREFIX = 'flpod_';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function ip(args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function tryIp(args: string[]): void {
  try {
    ip(args);
  } catch {
    // already gone: teardown is idempotent
  }
}

/**
 * A file the node's daemons read (the device plugin's config, the chain controller's NF
 * addresses), written whole or not at all. Made from the node's state, so no `.prev` is kept.
 */
function writeDerivedFile(path: string, value: unknown): void {
  writeStateFileSync(path, `${JSON.stringify(value, null, 2)}\n`, {
    mode: 0o644,
    keepPrevious: false,
  });
}

export const podNetns = (namespace: string, name: string): string =>
  `${POD_NETNS_PREFIX}${namespace}-${name}`.slice(0, 60);
export const podFilePrefix = (namespace: string, name: string): string =>
  `${POD_FILE_PREFIX}${namespace}_${name}`.replace(/[^A-Za-z0-9_]/g, '_');

/** Removes hugepage files an EAL with this --file-prefix left (a SIGKILLed process leaves them). */
export function removeHugepageFiles(hugeDir: string, prefix: string): number {
  let n = 0;
  try {
    for (const f of readdirSync(hugeDir)) {
      if (f.startsWith(prefix)) {
        rmSync(join(hugeDir, f), { force: true });
        n++;
      }
    }
  } catch {
    // no hugetlbfs mounted: nothing to remove
  }
  return n;
}

/** Folders that live as long as the node is up (logs and manifests outlive it). */
const runtimeDirs = (p: NodePaths): string[] => [
  p.sockets,
  p.ipam,
  p.pluginDir,
  p.pods,
  p.netconfs,
  p.devinfo,
];

export class NodeRuntime {
  state: NodeState;
  ovs?: OvsDpdk;
  kubelet?: KubeletPeer;
  private emulated?: EmulatedHost;

  constructor(
    readonly config: NodeConfig,
    readonly paths: NodePaths,
    readonly log: Logger,
  ) {
    this.state = readState(paths.stateFile, log) ?? emptyState();
  }

  save(): void {
    writeState(this.paths.stateFile, this.state);
  }

  get controllerAddress(): string {
    return (
      this.config.controller.grpcAddress ??
      `unix://${join(this.paths.stateDir, 'chain-controller.sock')}`
    );
  }

  get cniPath(): string {
    return `${join(this.paths.stateDir, 'cni-bin')}:${CNI_PATH_SYSTEM}`;
  }

  /** Brings up the node's daemons, in order; on failure undoes what it started and rethrows. */
  async up(): Promise<void> {
    const p = this.paths;
    for (const d of [p.stateDir, p.manifests, p.logs, ...runtimeDirs(p)])
      mkdirSync(d, { recursive: true });
    this.state = emptyState();
    this.state.agent = {
      pid: process.pid,
      marker: process.argv[1] ?? 'node',
      log: join(p.logs, 'agent.log'),
    };
    this.save();
    try {
      if (!this.config.security.insecure) this.pki.operator();
      await this.startSwitch();
      this.installCniBin();
      await this.startCniDaemon();
      await this.startDevicePlugin();
      this.startController();
      this.state.ready = true;
      this.save();
    } catch (err) {
      this.log.error('bringing the node up failed; tearing down what was started', { err });
      await this.teardown();
      throw err;
    }
  }

  private async startSwitch(): Promise<void> {
    const p = this.paths;
    // A netns of an earlier, crashed run would make startOvsDpdk adopt it; start clean.
    tryIp(['netns', 'del', OVS_NETNS]);
    this.state.ovs = {
      runDir: p.ovsRunDir,
      netns: OVS_NETNS,
      filePrefix: 'flowline-node-ovs',
      dbSocket: join(p.ovsRunDir, 'db.sock'),
      bridge: this.config.bridge,
    };
    this.save();
    try {
      this.ovs = await startOvsDpdk({
        runDir: p.ovsRunDir,
        netns: OVS_NETNS,
        bridge: this.config.bridge,
        socketMemMb: this.config.ovs.socketMemMb,
        pmdCpuMask: this.config.ovs.pmdCpuMask,
        pmdMaxSleepUs: this.config.ovs.pmdMaxSleepUs,
        filePrefix: 'flowline-node-ovs',
        maxLifetimeSec: 0,
        logger: this.log.child({ part: 'ovs' }),
      });
    } catch (err) {
      throw new NodeStepError(
        'start OVS-DPDK',
        (err as Error).message,
        'read the ovs-vswitchd log in ' + p.ovsRunDir,
        { cause: err },
      );
    }
    this.log.info('switch up', { bridge: this.config.bridge, dbSocket: this.ovs.dbSocket });
  }

  private installCniBin(): void {
    const dir = join(this.paths.stateDir, 'cni-bin');
    mkdirSync(dir, { recursive: true });
    // The executable's name is the network config's `type`, as CNI requires.
    const plugin = join(REPO_ROOT, 'cni-plugin', 'dist', 'flowline');
    if (!existsSync(plugin))
      throw new NodeStepError(
        'install CNI plugin',
        'cni-plugin/dist/flowline is not built',
        'run npm run build',
      );
    rmSync(join(dir, 'flowline'), { force: true });
    symlinkSync(plugin, join(dir, 'flowline'));
  }

  get cniDaemonSocket(): string {
    return join(this.paths.stateDir, 'cni', 'cni.sock');
  }

  /**
   * The CNI plugin's resident daemon, as the chart's CNI DaemonSet runs it on a node: each CNI
   * exec then costs the native executable's hand-over instead of a Node.js start.
   */
  private async startCniDaemon(): Promise<void> {
    const socket = this.cniDaemonSocket;
    const argv = resolveCommand([
      'flowline-cni',
      'daemon',
      '--socket',
      socket,
      '--metrics-port',
      '0',
    ]);
    this.state.cniDaemon = {
      ...startProcess({ argv, log: join(this.paths.logs, 'cni-daemon.log') }),
      socket,
    };
    this.save();
    const deadline = Date.now() + 10_000;
    while (!existsSync(socket)) {
      if (!isAlive(this.state.cniDaemon) || Date.now() > deadline)
        throw new NodeStepError(
          'start CNI daemon',
          isAlive(this.state.cniDaemon) ? `no socket ${socket} within 10 s` : 'it exited',
          `read ${this.state.cniDaemon.log}`,
        );
      await sleep(50);
    }
  }

  private async startDevicePlugin(): Promise<void> {
    const p = this.paths;
    const nics = this.config.emulatedNics;
    if (existsSync(p.sysfs)) {
      try {
        EmulatedHost.open(p.sysfs).destroy();
      } catch {
        rmSync(p.sysfs, { recursive: true, force: true });
      }
    }
    this.state.emulated = { root: p.sysfs, pfs: nics.map((n) => n.pf) };
    this.save();
    this.emulated = EmulatedHost.create({
      root: p.sysfs,
      veth: true,
      netns: EMU_NETNS,
      hugepages: 'host',
      pfs: nics.map((n) => ({ name: n.pf, numVfs: n.vfs, numaNode: n.numa })),
    });
    writeDerivedFile(p.devicePluginConfig, this.config.devicePlugin);
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
    this.state.devicePlugin = startProcess({ argv, log: join(p.logs, 'device-plugin.log') });
    this.save();
    const pools = ((this.config.devicePlugin.pools as { name: string }[] | undefined) ?? []).map(
      (pool) => `flowline.io/${pool.name}`,
    );
    const deadline = Date.now() + 20_000;
    while (pools.some((r) => this.kubelet!.devices(r) === undefined)) {
      if (!isAlive(this.state.devicePlugin))
        throw new NodeStepError(
          'start device plugin',
          'it exited',
          `read ${this.state.devicePlugin.log}`,
        );
      if (Date.now() > deadline)
        throw new NodeStepError(
          'start device plugin',
          `no registration of ${pools.join(', ')} within 20 s`,
          `read ${this.state.devicePlugin.log}`,
        );
      await sleep(100);
    }
    this.log.info('device plugin registered', { resources: [...this.kubelet.connections.keys()] });
  }

  private startController(): void {
    const p = this.paths;
    writeDerivedFile(join(p.stateDir, 'nf-addresses.json'), {});
    const argv = resolveCommand([
      'flowline-chain-controller',
      '--listen',
      this.controllerAddress,
      '--ovsdb',
      this.state.ovs!.dbSocket,
      '--ovs-run-dir',
      p.ovsRunDir,
      '--bridge',
      this.config.bridge,
      '--socket-dir',
      p.sockets,
      '--state-file',
      p.chainState,
      '--nf-addresses',
      join(p.stateDir, 'nf-addresses.json'),
      '--reconcile-ms',
      String(this.config.controller.reconcileMs),
      '--metrics-port',
      'off',
    ]);
    const rec = startProcess({
      argv,
      env: { ...process.env, ...this.securityEnvFor(() => this.pki.controller()) },
      log: join(p.logs, 'chain-controller.log'),
    });
    this.state.controller = { ...rec, grpcAddress: this.controllerAddress };
    this.save();
  }

  /** The CNI plugin's folder for the pod's sockets (hashed when its readable name is too long). */
  private podSocketDir(namespace: string, name: string): string {
    const folder = podFolderName(this.paths.sockets, { containerId: '', pod: { namespace, name } });
    return join(this.paths.sockets, folder);
  }

  private get pki(): LocalPki {
    return nodePki(this.paths.stateDir, this.config.security.trustDomain);
  }

  /** FLOWLINE_TLS_* for a process holding `files()`, or FLOWLINE_INSECURE when configured so. */
  private securityEnvFor(files: () => TlsFiles): Record<string, string> {
    const { insecure, trustDomain } = this.config.security;
    return securityEnv(insecure ? { insecure: true } : files(), trustDomain);
  }

  private writeNfAddresses(): void {
    const map: Record<string, string> = {};
    for (const pod of Object.values(this.state.pods)) map[pod.key] = pod.grpcAddress;
    writeDerivedFile(join(this.paths.stateDir, 'nf-addresses.json'), map);
  }

  /** Devices this resource has that are healthy and not given to another pod. */
  private freeDevices(resource: string): string[] {
    const devices = this.kubelet?.devices(resource);
    if (!devices)
      throw new NodeStepError(
        'allocate devices',
        `no device plugin serves ${resource}`,
        'check the node config devicePlugin.pools',
      );
    const taken = new Set(
      Object.values(this.state.pods).flatMap((pod) => pod.devices[resource] ?? []),
    );
    return devices.filter((d) => d.health === 'Healthy' && !taken.has(d.ID)).map((d) => d.ID);
  }

  /**
   * Runs a pod: netns, devices (GetPreferredAllocation + Allocate, as kubelet), CNI ADD per
   * network, then the NF process. A failure undoes every step taken and rethrows.
   */
  async runPod(spec: PodSpec, manifest: string): Promise<PodRecord> {
    const key = podKey(spec);
    if (this.state.pods[key])
      throw new NodeStepError(`run pod ${key}`, 'it already runs', 'delete it first');
    const pod: PodRecord = {
      key,
      namespace: spec.namespace,
      name: spec.name,
      netns: podNetns(spec.namespace, spec.name),
      containerId: randomBytes(32).toString('hex'),
      attachments: [],
      movedNetdevs: [],
      devices: {},
      allocatedEnv: {},
      grpcAddress: `unix://${join(this.paths.pods, `${spec.namespace}_${spec.name}`, 'grpc.sock')}`,
      filePrefix: podFilePrefix(spec.namespace, spec.name),
      restarts: 0,
      phase: 'Pending',
      manifest,
    };
    this.state.pods[key] = pod;
    this.save();
    try {
      await this.setUpPod(spec, pod);
      pod.phase = 'Running';
      this.save();
      this.writeNfAddresses();
      return pod;
    } catch (err) {
      this.log.error('pod failed to start; undoing its steps', { pod: key, err });
      await this.tearDownPod(pod);
      delete this.state.pods[key];
      this.save();
      throw err;
    }
  }

  private async setUpPod(spec: PodSpec, pod: PodRecord): Promise<void> {
    const step = `run pod ${pod.key}`;
    tryIp(['netns', 'del', pod.netns]);
    ip(['netns', 'add', pod.netns]);
    ip(['-n', pod.netns, 'link', 'set', 'lo', 'up']);
    mkdirSync(join(this.paths.pods, `${spec.namespace}_${spec.name}`), { recursive: true });

    const env: Record<string, string> = {};
    for (const [resource, count] of Object.entries(spec.devices)) {
      const free = this.freeDevices(resource);
      if (free.length < count)
        throw new NodeStepError(
          step,
          `${resource}: ${count} requested, ${free.length} free and healthy`,
          'lower the request or free devices',
        );
      const ids = await this.kubelet!.preferred(resource, free, [], count);
      const chosen = ids.length === count ? ids : free.slice(0, count);
      pod.devices[resource] = chosen;
      this.save();
      const response = await this.kubelet!.allocate(resource, chosen);
      const container = response.containerResponses[0];
      Object.assign(env, container?.envs ?? {});
      for (const m of container?.mounts ?? []) {
        // No mount namespace here: the pod sees the host's tree, so a mount is only honoured
        // when its container path is where the host has it.
        if (m.containerPath !== m.hostPath)
          this.log.warn('mount not applied: the local node has no mount namespaces', {
            pod: pod.key,
            mount: m,
          });
      }
    }
    // Netdev VFs move into the pod's netns, as the SR-IOV CNI does in a cluster.
    for (const [k, v] of Object.entries(env)) {
      if (!k.startsWith('FLOWLINE_NETDEV_')) continue;
      for (const ifname of v.split(',').filter(Boolean)) {
        ip(['link', 'set', 'dev', ifname, 'netns', pod.netns]);
        pod.movedNetdevs.push(ifname);
        this.save();
        ip(['-n', pod.netns, 'link', 'set', ifname, 'up']);
      }
    }

    for (const sel of spec.networks) {
      const ovsdb = this.state.ovs!.dbSocket;
      const netconf = netconfFor(this.config, this.paths, sel.name, ovsdb);
      pod.attachments.push({
        network: sel.name,
        ifname: sel.interface,
        containerId: pod.containerId,
        netconf,
      });
      this.save();
      await this.cni('ADD', pod, pod.attachments[pod.attachments.length - 1]!);
    }

    this.startPodProcess(spec, pod, env);
  }

  private podEnv(
    spec: PodSpec,
    pod: PodRecord,
    allocated: Record<string, string>,
  ): NodeJS.ProcessEnv {
    return {
      PATH: process.env.PATH,
      HOME: '/root',
      POD_NAME: spec.name,
      POD_NAMESPACE: spec.namespace,
      FLOWLINE_NF_NAME: spec.name,
      FLOWLINE_POD_DIR: this.podSocketDir(spec.namespace, spec.name),
      FLOWLINE_GRPC_ADDRESS: pod.grpcAddress,
      FLOWLINE_METRICS_PORT: 'off',
      FLOWLINE_FILE_PREFIX: pod.filePrefix,
      FLOWLINE_HUGEPAGES_DIR: this.config.hugepagesDir,
      ...(spec.hugepagesMb > 0 ? { FLOWLINE_HUGEPAGES_MB: String(spec.hugepagesMb) } : {}),
      ...this.securityEnvFor(() => this.pki.nf(spec.namespace, spec.name)),
      ...allocated,
      ...spec.env,
    };
  }

  private startPodProcess(spec: PodSpec, pod: PodRecord, allocated: Record<string, string>): void {
    const argv = resolveCommand(spec.command);
    pod.process = startProcess({
      argv,
      netns: pod.netns,
      env: this.podEnv(spec, pod, allocated),
      log: join(this.paths.logs, `${spec.namespace}_${spec.name}.log`),
      marker: argv[1] ?? argv[0]!,
    });
    pod.allocatedEnv = allocated;
    this.save();
  }

  /**
   * Restarts ovs-vswitchd when it died, as kubelet restarts the switch's pod: vhost-user
   * clients reconnect by themselves, and the chain controller pushes its flows again.
   */
  async superviseSwitch(): Promise<boolean> {
    if (!this.ovs || !this.state.ovs) return false;
    let pid = 0;
    try {
      pid = Number(readFileSync(join(this.state.ovs.runDir, 'ovs-vswitchd.pid'), 'utf8').trim());
    } catch {
      // no pid file: it died before writing it, or was stopped
    }
    if (pid > 0 && isAlive({ pid, marker: 'ovs-vswitchd', log: '' })) return false;
    this.log.warn('ovs-vswitchd is gone; restarting it', { pid });
    await this.ovs.restartVswitchd();
    return true;
  }

  /** Restarts a pod's process (its netns, devices and ports stay), as kubelet restarts a container. */
  restartPodProcess(spec: PodSpec, key: string): void {
    const pod = this.state.pods[key];
    if (!pod) return;
    removeHugepageFiles(this.config.hugepagesDir, pod.filePrefix);
    // A SIGKILLed virtio-user server leaves its socket files, and a new one cannot bind over
    // them; the switch side (dpdkvhostuserclient) reconnects once the new process listens.
    const podDir = this.podSocketDir(pod.namespace, pod.name);
    for (const f of existsSync(podDir) ? readdirSync(podDir) : [])
      if (f.endsWith('.sock')) rmSync(join(podDir, f), { force: true });
    rmSync(pod.grpcAddress.replace(/^unix:\/\//, ''), { force: true });
    pod.restarts += 1;
    this.startPodProcess(spec, pod, pod.allocatedEnv);
  }

  async deletePod(key: string): Promise<void> {
    const pod = this.state.pods[key];
    if (!pod) return;
    pod.phase = 'Terminating';
    this.save();
    await this.tearDownPod(pod);
    removePodCertificate(this.paths.stateDir, pod.namespace, pod.name);
    delete this.state.pods[key];
    this.save();
    this.writeNfAddresses();
  }

  /** Runs the attachment's CNI plugin as a runtime does, with the pod's identity in CNI_ARGS. */
  private cni(command: 'ADD' | 'DEL', pod: PodRecord, a: AttachmentRecord): Promise<unknown> {
    return execCni({
      command,
      plugin: join(this.paths.stateDir, 'cni-bin', String(a.netconf.type)),
      cniPath: this.cniPath,
      netconf: a.netconf,
      // Runtimes cannot add variables; the chart's daemon listens on the default path instead.
      env: { FLOWLINE_CNI_SOCKET: this.cniDaemonSocket },
      containerId: a.containerId,
      netns: `/run/netns/${pod.netns}`,
      ifname: a.ifname,
      args: {
        IgnoreUnknown: 'true',
        K8S_POD_NAMESPACE: pod.namespace,
        K8S_POD_NAME: pod.name,
        K8S_POD_INFRA_CONTAINER_ID: pod.containerId,
      },
    });
  }

  /**
   * Undoes a pod's steps in reverse; each step tolerates what is already gone. Returns what it
   * stopped and removed.
   */
  async tearDownPod(pod: PodRecord): Promise<StopReport> {
    const report = emptyStopReport();
    await stopAndRecord(report, `pod ${pod.key}`, pod.process);
    for (const a of [...pod.attachments].reverse()) {
      try {
        await this.cni('DEL', pod, a);
        report.ports.push({ pod: pod.key, interface: a.ifname });
      } catch (err) {
        this.log.warn('CNI DEL failed', { pod: pod.key, ifname: a.ifname, err });
      }
    }
    for (const ifname of pod.movedNetdevs)
      tryIp(['-n', pod.netns, 'link', 'set', 'dev', ifname, 'netns', '1']);
    deleteNetns(pod.netns, report);
    report.hugepageFiles += removeHugepageFiles(this.config.hugepagesDir, pod.filePrefix);
    rmSync(join(this.paths.pods, `${pod.namespace}_${pod.name}`), { recursive: true, force: true });
    return report;
  }

  /**
   * Everything, in reverse order of up; safe to run twice and after a crash. Returns what was
   * still there and is now stopped or removed (empty when nothing was left).
   */
  async teardown(): Promise<StopReport> {
    const report = emptyStopReport();
    for (const pod of Object.values(this.state.pods).reverse()) {
      mergeStopReport(report, await this.tearDownPod(pod));
      delete this.state.pods[pod.key];
      this.save();
    }
    await stopAndRecord(report, 'chain-controller', this.state.controller);
    await stopAndRecord(report, 'cni-daemon', this.state.cniDaemon);
    await stopAndRecord(report, 'device-plugin', this.state.devicePlugin);
    await this.kubelet?.stop().catch(() => undefined);
    this.kubelet = undefined;
    const emuNetns = netnsExists(EMU_NETNS);
    if (this.state.emulated) {
      try {
        (this.emulated ?? EmulatedHost.open(this.state.emulated.root)).destroy();
      } catch {
        rmSync(this.state.emulated.root, { recursive: true, force: true });
      }
    }
    if (emuNetns && !netnsExists(EMU_NETNS)) report.namespaces.push(EMU_NETNS);
    deleteNetns(EMU_NETNS, report);
    const ovsRunning = this.state.ovs ? ovsDaemons(this.state.ovs.runDir) : [];
    const ovsNetns = netnsExists(OVS_NETNS);
    if (this.ovs)
      await this.ovs.stop().catch((err: unknown) => this.log.warn('OVS stop failed', { err }));
    else if (this.state.ovs) await stopOvsFromRunDir(this.state.ovs.runDir, this.state.ovs.netns);
    for (const d of ovsRunning)
      if (!isAlive(d)) report.processes.push({ name: d.marker, pid: d.pid });
    if (ovsNetns && !netnsExists(OVS_NETNS)) report.namespaces.push(OVS_NETNS);
    deleteNetns(OVS_NETNS, report);
    this.ovs = undefined;
    report.hugepageFiles += removeHugepageFiles(this.config.hugepagesDir, POD_FILE_PREFIX);
    report.hugepageFiles += removeHugepageFiles(this.config.hugepagesDir, 'flowline-node-ovs');
    const p = this.paths;
    for (const d of [
      ...runtimeDirs(p),
      join(p.stateDir, 'cdi'),
      join(p.stateDir, 'cni-bin'),
      join(p.stateDir, 'cni'),
      p.ovsRunDir,
    ])
      rmSync(d, { recursive: true, force: true });
    rmSync(join(p.stateDir, 'chain-controller.sock'), { force: true });
    rmSync(join(p.stateDir, 'nf-addresses.json'), { force: true });
    rmSync(p.chainState, { force: true });
    this.state = emptyState();
    await removeState(p.stateFile);
    return report;
  }
}

/** Deletes a netns and notes it when it was there. */
function deleteNetns(name: string, report: StopReport): void {
  if (!netnsExists(name)) return;
  tryIp(['netns', 'del', name]);
  if (!netnsExists(name)) report.namespaces.push(name);
}

/** The OVS daemons the run dir's pid files name that still run. */
function ovsDaemons(runDir: string): ProcessRecord[] {
  const running: ProcessRecord[] = [];
  for (const daemon of ['ovs-vswitchd', 'ovsdb-server']) {
    let pid: number;
    try {
      pid = Number(readFileSync(join(runDir, `${daemon}.pid`), 'utf8').trim());
    } catch {
      continue;
    }
    const rec = { pid, marker: daemon, log: '' };
    if (Number.isInteger(pid) && pid > 0 && isAlive(rec)) running.push(rec);
  }
  return running;
}

/** Stops OVS daemons from their pid files (the agent that started them is gone). */
export async function stopOvsFromRunDir(runDir: string, netns: string): Promise<void> {
  for (const rec of ovsDaemons(runDir)) await stopProcess(rec, 5000);
  tryIp(['netns', 'del', netns]);
}
