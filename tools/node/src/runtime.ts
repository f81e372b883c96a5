// The single-node runtime: what kubelet and a container runtime do for Flowline pods, on one
// machine without Kubernetes. It starts the node's daemons (OVS-DPDK, the device plugin over
// emulated NICs, the chain controller), and runs pods as a network namespace plus one NF
// process: devices from the device plugin's Allocate over gRPC (as kubelet calls it), interfaces
// from the CNI plugin executed per the spec (as a runtime calls it). Every step is written to the
// state file before it is taken, so teardown (teardownNode) can undo all of it after a crash.
//
// NodeRuntime orchestrates: the order of the steps, undoing them on a failure, and the state.
// Each step is a part's: the daemons (ovs-switch.ts, cni-plugin.ts, device-plugin.ts,
// chain-controller.ts) and the pod's sandbox, devices, network and process (pod-*.ts).
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { KubeletPeer } from '@flowline/emulation';
import type { LocalPki, TlsFiles } from '@flowline/grpc-auth';
import type { OvsDpdk } from '@flowline/ovs';
import type { Logger } from '@flowline/telemetry';
import { controllerAddress, startController, stopController } from './chain-controller';
import {
  cniDaemonSocket,
  cniPath,
  installCniBin,
  startCniDaemon,
  stopCniDaemon,
} from './cni-plugin';
import type { NodeConfig, NodePaths } from './config';
import { writeNfAddresses } from './derived-files';
import { NodeDevicePlugin } from './device-plugin';
import { NodeStepError } from './errors';
import { removeEalRuntimeDirs, removeHugepageFiles } from './hugepages';
import { type PodSpec, podKey } from './manifest';
import type { NodeContext } from './node-context';
import { OVS_FILE_PREFIX, startSwitch, stopSwitch, superviseSwitch } from './ovs-switch';
import { nodePki, removePodCertificate, securityEnv } from './pki';
import { allocateDevices, moveNetdevsBack, moveNetdevsIn } from './pod-devices';
import { POD_FILE_PREFIX, podFilePrefix, podGrpcAddress, podNetns } from './pod-names';
import { attachNetworks, detachNetworks } from './pod-network';
import { clearDeadProcess, startPodProcess } from './pod-process';
import { createPodSandbox, removePodSandbox } from './pod-sandbox';
import { procStartTime } from './processes';
import {
  type NodeState,
  type PodRecord,
  emptyState,
  readState,
  removeState,
  writeState,
} from './state';
import { type StopReport, emptyStopReport, mergeStopReport, stopAndRecord } from './stop-report';

/** Folders that live as long as the node is up (logs and manifests outlive it). */
const runtimeDirs = (p: NodePaths): string[] => [
  p.sockets,
  p.ipam,
  p.pluginDir,
  p.pods,
  p.netconfs,
  p.devinfo,
];

export class NodeRuntime implements NodeContext {
  state: NodeState;
  ovs?: OvsDpdk;
  private readonly devicePlugin = new NodeDevicePlugin(this);

  constructor(
    readonly config: NodeConfig,
    readonly paths: NodePaths,
    readonly log: Logger,
  ) {
    this.state = readState(paths.stateFile, log) ?? emptyState();
  }

  /** Kubelet's side of the device plugin API, while the node is up. */
  get kubelet(): KubeletPeer | undefined {
    return this.devicePlugin.kubelet;
  }

  set kubelet(kubelet: KubeletPeer | undefined) {
    this.devicePlugin.kubelet = kubelet;
  }

  save(): void {
    writeState(this.paths.stateFile, this.state);
  }

  get controllerAddress(): string {
    return controllerAddress(this.config, this.paths);
  }

  get cniPath(): string {
    return cniPath(this.paths.stateDir);
  }

  get cniDaemonSocket(): string {
    return cniDaemonSocket(this.paths.stateDir);
  }

  /** FLOWLINE_TLS_* for a process holding `files(pki)`, or FLOWLINE_INSECURE when configured so. */
  securityEnv(files: (pki: LocalPki) => TlsFiles): Record<string, string> {
    const { insecure, trustDomain } = this.config.security;
    return securityEnv(insecure ? { insecure: true } : files(this.pki), trustDomain);
  }

  private get pki(): LocalPki {
    return nodePki(this.paths.stateDir, this.config.security.trustDomain);
  }

  /** Brings up the node's daemons, in order; on failure undoes what it started and rethrows. */
  async up(): Promise<void> {
    const p = this.paths;
    for (const d of [p.stateDir, p.manifests, p.logs, ...runtimeDirs(p)])
      mkdirSync(d, { recursive: true });
    this.state = { ...emptyState(), hugepagesDir: this.config.hugepagesDir };
    const startTime = procStartTime(process.pid);
    this.state.agent = {
      pid: process.pid,
      marker: process.argv[1] ?? 'node',
      ...(startTime ? { startTime } : {}),
      log: join(p.logs, 'agent.log'),
    };
    this.save();
    try {
      if (!this.config.security.insecure) this.pki.operator();
      this.ovs = await startSwitch(this);
      installCniBin(p.stateDir);
      await startCniDaemon(this);
      await this.devicePlugin.start();
      startController(this);
      this.state.ready = true;
      this.save();
    } catch (err) {
      this.log.error('bringing the node up failed; tearing down what was started', { err });
      await this.teardown();
      throw err;
    }
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
      grpcAddress: podGrpcAddress(this.paths, spec.namespace, spec.name),
      filePrefix: podFilePrefix(spec.namespace, spec.name),
      restarts: 0,
      phase: 'Pending',
      manifest,
    };
    this.state.pods[key] = pod;
    this.save();
    try {
      createPodSandbox(this.paths, pod);
      const env = await allocateDevices(this, this.kubelet, spec, pod);
      moveNetdevsIn(this, pod, env);
      await attachNetworks(this, spec, pod);
      startPodProcess(this, spec, pod, env);
      pod.phase = 'Running';
      this.save();
      writeNfAddresses(this.paths.stateDir, this.state.pods);
      return pod;
    } catch (err) {
      this.log.error('pod failed to start; undoing its steps', {
        pod: key,
        err,
      });
      await this.tearDownPod(pod);
      delete this.state.pods[key];
      this.save();
      throw err;
    }
  }

  /**
   * Restarts ovs-vswitchd when it died, as kubelet restarts the switch's pod: vhost-user
   * clients reconnect by themselves, and the chain controller pushes its flows again.
   */
  superviseSwitch(): Promise<boolean> {
    return superviseSwitch(this.ovs, this.state.ovs, this.log);
  }

  /** Restarts a pod's process (its netns, devices and ports stay), as kubelet restarts a container. */
  restartPodProcess(spec: PodSpec, key: string): void {
    const pod = this.state.pods[key];
    if (!pod) return;
    clearDeadProcess(this.config.hugepagesDir, this.paths, pod);
    pod.restarts += 1;
    startPodProcess(this, spec, pod, pod.allocatedEnv);
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
    writeNfAddresses(this.paths.stateDir, this.state.pods);
  }

  /**
   * Undoes a pod's steps in reverse; each step tolerates what is already gone. Returns what it
   * stopped and removed.
   */
  async tearDownPod(pod: PodRecord): Promise<StopReport> {
    const report = emptyStopReport();
    await stopAndRecord(report, `pod ${pod.key}`, pod.process);
    await detachNetworks(this, pod, report);
    moveNetdevsBack(pod);
    removePodSandbox(this.paths, pod, report);
    report.hugepageFiles += removeHugepageFiles(this.config.hugepagesDir, pod.filePrefix);
    removeEalRuntimeDirs(pod.filePrefix);
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
    await stopController(this.state, report);
    await stopCniDaemon(this.state, report);
    await this.devicePlugin.stop(report);
    await stopSwitch(this.ovs, this.state.ovs, this.log, report);
    this.ovs = undefined;
    for (const prefix of [POD_FILE_PREFIX, OVS_FILE_PREFIX]) {
      report.hugepageFiles += removeHugepageFiles(this.config.hugepagesDir, prefix, 'family');
      removeEalRuntimeDirs(prefix, 'family');
    }
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
