import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  POD_FILE_PREFIX,
  POD_NETNS_PREFIX,
  applyManifests,
  deleteManifests,
  emptyStopReport,
  nodeDown,
  nodeStatus,
  nodeUp,
  readState,
} from '../../src/index';
import type { NodeState } from '../../src/state';
import { createLogger } from '@flowline/telemetry';

/**
 * The local node for real, with a plain process as the pod's container so that this test needs
 * no NF: OVS-DPDK in its netns, the device plugin over emulated NICs registered with the node's
 * kubelet side, the chain controller, and a pod with two vhost-user interfaces from the CNI
 * plugin (exec protocol) and devices from Allocate (gRPC). Then restart on crash, pod deletion,
 * teardown after the agent was SIGKILLed, and a second teardown that finds nothing.
 */
const root = process.getuid?.() === 0;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, fn: () => T | undefined, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

const netnsList = (): string[] =>
  existsSync('/run/netns')
    ? readdirSync('/run/netns').filter(
        (n) => n.startsWith(POD_NETNS_PREFIX) || n.startsWith('flowline-node-'),
      )
    : [];

describe.skipIf(!root)('local node runtime (root, OVS-DPDK, device plugin, CNI)', () => {
  const work = mkdtempSync(join(tmpdir(), 'flnode-'));
  const stateDir = join(work, 'state');
  const config = join(work, 'node.yaml');
  const pod = join(work, 'sleeper.yaml');

  beforeAll(async () => {
    writeFileSync(
      config,
      `stateDir: ${stateDir}\nemulatedNics: [{ pf: ens9f0, vfs: 2 }]\ndevicePlugin:\n  pools: [{ name: sriov_vf, deviceType: netdevice, selectors: { pfNames: [ens9f0] }, hugepagesMb: 64 }]\n  hugepages: { mount: false, resource: true, hostPath: /dev/hugepages, containerPath: /dev/hugepages }\n`,
    );
    writeFileSync(
      pod,
      `apiVersion: v1
kind: Pod
metadata:
  name: sleeper
  annotations: { k8s.v1.cni.cncf.io/networks: "flowline-net@net1, flowline-net@net2" }
spec:
  containers:
    - name: c
      command: [/bin/sleep, "600"]
      resources: { limits: { flowline.io/sriov_vf: "1", flowline.io/hugepages-2Mi: "32" } }
`,
    );
  });

  afterAll(async () => {
    await nodeDown({ stateDir });
    rmSync(work, { recursive: true, force: true });
  }, 120_000);

  it('comes up, runs a pod with devices and vhost-user ports, restarts it, deletes it', async () => {
    const up = await nodeUp({ stateDir, configFile: config });
    expect(up.ready).toBe(true);
    const ovsctl = (...args: string[]): string =>
      execFileSync('ovs-vsctl', [`--db=unix:${up.ovs!.dbSocket}`, ...args], {
        encoding: 'utf8',
      }).trim();
    expect(ovsctl('br-exists', 'br-flowline')).toBe('');

    const [running] = await applyManifests(stateDir, [pod]);
    expect(running).toMatchObject({
      key: 'default/sleeper',
      phase: 'Running',
      alive: true,
      interfaces: ['net1', 'net2'],
    });
    const state = readState(join(stateDir, 'state.json'))!;
    const rec = state.pods['default/sleeper']!;
    // Devices came from Allocate: one VF and 32 hugepages.
    expect(rec.devices['flowline.io/sriov_vf']).toHaveLength(1);
    expect(rec.devices['flowline.io/hugepages-2Mi']).toHaveLength(32);
    const environ = readFileSync(`/proc/${running!.pid}/environ`, 'utf8').split('\0');
    expect(environ).toContain('FLOWLINE_HUGEPAGES_DIR=/dev/hugepages');
    expect(environ).toContain(`FLOWLINE_POD_DIR=${join(stateDir, 'sockets', 'default_sleeper')}`);
    const vfEnv = environ.find((e) => e.startsWith('PCIDEVICE_FLOWLINE_IO_SRIOV_VF='));
    expect(vfEnv).toBe(`PCIDEVICE_FLOWLINE_IO_SRIOV_VF=${rec.devices['flowline.io/sriov_vf']![0]}`);
    const netdev = environ.find((e) => e.startsWith('FLOWLINE_NETDEV_SRIOV_VF='))!.split('=')[1]!;
    // The VF's netdev moved into the pod's netns, as the SR-IOV CNI does.
    execFileSync('ip', ['-n', rec.netns, 'link', 'show', netdev]);
    // The process runs in the pod's netns.
    expect(readFileSync(`/proc/${running!.pid}/cmdline`, 'utf8')).toContain('/bin/sleep');
    expect(
      execFileSync('ip', ['netns', 'identify', String(running!.pid)], { encoding: 'utf8' }).trim(),
    ).toBe(rec.netns);
    // The CNI plugin made one dpdkvhostuserclient port per interface and wrote the attachment files.
    const ports = ovsctl('list-ports', 'br-flowline').split('\n').filter(Boolean);
    expect(ports).toHaveLength(2);
    for (const p of ports)
      expect(ovsctl('get', 'Interface', p, 'type')).toBe('dpdkvhostuserclient');
    for (const i of ['net1', 'net2']) {
      const file = JSON.parse(
        readFileSync(join(stateDir, 'sockets', 'default_sleeper', `${i}.json`), 'utf8'),
      ) as { socketPath: string; ovsPort: string };
      expect(ports).toContain(file.ovsPort);
      expect(file.socketPath).toBe(join(stateDir, 'sockets', 'default_sleeper', `${i}.sock`));
    }
    // Both ADDs were served by the resident CNI daemon (the executable's hand-over), not by an
    // in-process fallback: they are in the daemon's log.
    expect(nodeStatus(stateDir).cniDaemon).toMatchObject({ alive: true });
    const added = readFileSync(join(stateDir, 'logs', 'cni-daemon.log'), 'utf8')
      .split('\n')
      .filter(
        (l) =>
          l.includes('"msg":"added"') &&
          rec.attachments.some((a) => l.includes(`"containerId":"${a.containerId}"`)),
      );
    expect(added).toHaveLength(2);

    // A crashed container is restarted, as kubelet does, with the same netns and devices.
    process.kill(running!.pid!, 'SIGKILL');
    const restarted = await until('restart', () => {
      const p = nodeStatus(stateDir).pods[0];
      return p && p.restarts === 1 && p.alive ? p : undefined;
    });
    expect(restarted.pid).not.toBe(running!.pid);

    // Removing the manifest removes the pod: ports, folder, netns.
    expect(deleteManifests(stateDir, ['sleeper.yaml'])).toEqual(['sleeper.yaml']);
    await until('pod gone', () => (nodeStatus(stateDir).pods.length === 0 ? true : undefined));
    expect(ovsctl('list-ports', 'br-flowline')).toBe('');
    expect(existsSync(join(stateDir, 'sockets', 'default_sleeper'))).toBe(false);
    expect(netnsList()).not.toContain(rec.netns);
    // The VF went back to the host and is free again.
    execFileSync('ip', ['link', 'show', netdev]);
  }, 180_000);

  it('a bad manifest is refused naming the field, and a failed pod leaves nothing', async () => {
    const bad = join(work, 'bad.yaml');
    writeFileSync(bad, readFileSync(pod, 'utf8').replace('"32"', '"9999"'));
    await expect(applyManifests(stateDir, [bad], { timeoutMs: 20_000 })).rejects.toThrow(
      /flowline\.io\/hugepages-2Mi: 9999 requested/,
    );
    const status = nodeStatus(stateDir);
    expect(status.pods).toEqual([]);
    expect(netnsList().filter((n) => n.startsWith(POD_NETNS_PREFIX))).toEqual([]);
    deleteManifests(stateDir, ['bad.yaml']);
    const typo = join(work, 'typo.yaml');
    writeFileSync(typo, readFileSync(pod, 'utf8').replace('kind: Pod', 'kind: Pdo'));
    await expect(applyManifests(stateDir, [typo])).rejects.toThrow(/typo\.yaml: kind must be Pod/);
  }, 60_000);

  it('down after the agent was SIGKILLed leaves nothing; a second down finds nothing', async () => {
    await applyManifests(stateDir, [pod]);
    const before = readState(join(stateDir, 'state.json'))!;
    const pids = [
      before.agent!.pid,
      before.controller!.pid,
      before.devicePlugin!.pid,
      before.cniDaemon!.pid,
      before.pods['default/sleeper']!.process!.pid,
    ];
    process.kill(before.agent!.pid, 'SIGKILL');
    await sleep(200);
    const down = await nodeDown({ stateDir });
    expect(down.swept).toBe(true);
    // The sweep did the stopping, and says what it stopped.
    expect(down.stopped.processes).toEqual(
      expect.arrayContaining([
        { name: 'pod default/sleeper', pid: before.pods['default/sleeper']!.process!.pid },
        { name: 'chain-controller', pid: before.controller!.pid },
        { name: 'cni-daemon', pid: before.cniDaemon!.pid },
        { name: 'device-plugin', pid: before.devicePlugin!.pid },
        expect.objectContaining({ name: 'ovs-vswitchd' }),
        expect.objectContaining({ name: 'ovsdb-server' }),
      ]),
    );
    expect(down.stopped.processes.map((p) => p.name)).not.toContain('node agent');
    expect(down.stopped.ports).toEqual([
      { pod: 'default/sleeper', interface: 'net2' },
      { pod: 'default/sleeper', interface: 'net1' },
    ]);
    expect(down.stopped.namespaces).toEqual(
      expect.arrayContaining([before.pods['default/sleeper']!.netns, 'flowline-node-ovs']),
    );
    for (const pid of pids)
      expect(
        existsSync(`/proc/${pid}/cmdline`) &&
          readFileSync(`/proc/${pid}/cmdline`, 'utf8').length > 0,
      ).toBe(false);
    expect(netnsList()).toEqual([]);
    expect(
      readdirSync('/dev/hugepages').filter(
        (f) => f.startsWith(POD_FILE_PREFIX) || f.startsWith('flowline-node-ovs'),
      ),
    ).toEqual([]);
    expect(existsSync(join(stateDir, 'sockets'))).toBe(false);
    expect(existsSync(join(stateDir, 'ovs'))).toBe(false);
    expect(existsSync(join(stateDir, 'state.json'))).toBe(false);
    expect(
      spawnSync('pgrep', ['-f', join(stateDir, 'ovs')], { encoding: 'utf8' }).stdout.trim(),
    ).toBe('');
    expect(await nodeDown({ stateDir })).toEqual({ swept: false, stopped: emptyStopReport() });
  }, 120_000);

  it('up over a state file garbled after the agent was SIGKILLed: sweeps what the previous copy names, says so, comes up', async () => {
    await nodeUp({ stateDir, configFile: config });
    await applyManifests(stateDir, [pod]);
    const stateFile = join(stateDir, 'state.json');
    const agent = readState(stateFile)!.agent!;
    process.kill(agent.pid, 'SIGKILL');
    await until('the agent gone', () => !existsSync(`/proc/${agent.pid}/cmdline`) || undefined);
    // The copy `up` will fall back to: every process it names must be swept.
    const previous = JSON.parse(readFileSync(`${stateFile}.prev`, 'utf8')) as NodeState;
    const named = [
      previous.controller?.pid,
      previous.devicePlugin?.pid,
      previous.cniDaemon?.pid,
      previous.pods['default/sleeper']?.process?.pid,
    ];
    expect(named.every((pid) => pid !== undefined)).toBe(true);
    writeFileSync(stateFile, readFileSync(stateFile, 'utf8').slice(0, 100)); // cut short

    const logs: Record<string, unknown>[] = [];
    const log = createLogger('node', {
      write: (line) => logs.push(JSON.parse(line) as Record<string, unknown>),
    });
    const up = await nodeUp({ stateDir, configFile: config, log });
    expect(up.ready).toBe(true);
    expect(up.agent!.pid).not.toBe(agent.pid);
    const said = logs.find((l) => l.msg === 'node state file unreadable; moved aside');
    expect(said).toMatchObject({ level: 'warn', component: 'node', file: stateFile });
    expect(String(said!.error)).toMatch(/JSON/);
    expect(said!.using).toBe(`${stateFile}.prev`);
    for (const pid of named)
      expect(
        existsSync(`/proc/${pid}/cmdline`) &&
          readFileSync(`/proc/${pid}/cmdline`, 'utf8').length > 0,
        `pid ${pid} named by the previous copy`,
      ).toBe(false);
    expect(up.pods).toEqual({});
    // The agent does the stopping on SIGTERM; down still says what was stopped.
    await applyManifests(stateDir, [pod]);
    const running = readState(stateFile)!;
    const down = await nodeDown({ stateDir });
    expect(down.swept).toBe(false);
    expect(down.stopped.processes).toEqual(
      expect.arrayContaining([
        { name: 'node agent', pid: running.agent!.pid },
        { name: 'pod default/sleeper', pid: running.pods['default/sleeper']!.process!.pid },
        { name: 'chain-controller', pid: running.controller!.pid },
        expect.objectContaining({ name: 'ovs-vswitchd' }),
      ]),
    );
    expect(down.stopped.ports).toHaveLength(2);
    expect(down.stopped.namespaces).toContain(running.pods['default/sleeper']!.netns);
    expect(existsSync(join(stateDir, 'stopped.json'))).toBe(false);
  }, 240_000);
});
