import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultDeviceInfoFile, DEFAULT_DEVICE_INFO_DIR } from '../../src/device-info';
import { macAddress, ovsPortName } from '../../src/naming';
import { deviceInfoErrors } from '../support/device-info-schema';
import { PLUGIN } from '../support/exec';
import { CNI_PATH, CniFixture } from '../support/fixture';

// Debian's podman 4.3, rootful, with its CNI backend and runc, runs a container on a Flowline
// network exactly as a user would: the network is a conflist in podman's network_config_dir,
// the plugin is found on cni_plugin_dirs, podman execs it through its vendored libcni. The
// socketDir is the chart's default (/run/flowline/vhost) and the device-info folder the spec's.
// Podman itself sends CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAME=<container name> and a 64-hex
// container ID. No systemd here: cgroupfs, a file events logger; the image is built locally
// from Debian's busybox-static (nothing is downloaded).

const run = promisify(execFile);
const SOCKET_DIR = '/run/flowline/vhost';
const NETWORK = 'flowline-podman';
const IMAGE = 'localhost/flowline-busybox:test';
const BUSYBOX = '/bin/busybox';

const missing = ['/usr/bin/podman', '/usr/sbin/runc', BUSYBOX].filter((f) => !existsSync(f));

describe('podman 4.3 (rootful, CNI backend, runc) runs containers on a Flowline network (integration)', () => {
  const fx = new CniFixture('daemon');
  const dir = (sub: string): string => join(fx.base, 'podman', sub);
  const ipamDir = (): string => join(fx.base, 'podman-ipam');
  /** FLOWLINE_CNI_SOCKET for each mode: the fixture's daemon, or a path nothing listens on. */
  const socketFor = (mode: 'daemon' | 'in-process'): string =>
    mode === 'daemon' ? fx.daemonSocket : join(fx.base, 'no-daemon', 'cni.sock');

  const podman = async (
    args: string[],
    mode: 'daemon' | 'in-process' = 'daemon',
  ): Promise<string> => {
    try {
      const { stdout } = await run(
        'podman',
        [
          '--root',
          dir('root'),
          '--runroot',
          dir('runroot'),
          '--storage-driver',
          'vfs',
          '--network-backend',
          'cni',
          '--network-config-dir',
          dir('net.d'),
          '--cgroup-manager',
          'cgroupfs',
          '--events-backend',
          'file',
          '--runtime',
          'runc',
          ...args,
        ],
        {
          env: {
            PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
            CONTAINERS_CONF: dir('containers.conf'),
            // podman's libcni hands its own environment to the plugin.
            FLOWLINE_CNI_SOCKET: socketFor(mode),
          },
          timeout: 120_000,
        },
      );
      return stdout.trim();
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new Error(`podman ${args.join(' ')}: ${e.stderr ?? ''} ${e.message}`);
    }
  };

  beforeAll(async () => {
    if (missing.length > 0)
      throw new Error(
        `missing ${missing.join(', ')}: apt-get install podman runc busybox-static (tools/setup/setup.sh installs them)`,
      );
    await fx.start();
    for (const d of [
      'net.d',
      'rootfs/bin',
      'rootfs/etc',
      'rootfs/proc',
      'rootfs/sys',
      'rootfs/dev',
      'rootfs/tmp',
    ])
      mkdirSync(dir(d), { recursive: true });
    writeFileSync(
      dir('containers.conf'),
      [
        '[containers]',
        // The hard limits here are below podman's defaults (runc would fail setrlimit).
        'default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]',
        '[engine]',
        'cgroup_manager = "cgroupfs"',
        'events_logger = "file"',
        `events_logfile_path = "${dir('events.log')}"`,
        'runtime = "runc"',
        '[network]',
        'network_backend = "cni"',
        `cni_plugin_dirs = ["${dirname(PLUGIN)}", "${CNI_PATH}"]`,
        `network_config_dir = "${dir('net.d')}"`,
        '',
      ].join('\n'),
    );
    // podman 4.3's libcni (1.1.2) speaks results up to 1.0.0.
    writeFileSync(
      join(dir('net.d'), `${NETWORK}.conflist`),
      JSON.stringify({
        cniVersion: '1.0.0',
        name: NETWORK,
        plugins: [
          {
            type: 'flowline',
            bridge: fx.ovs.bridge,
            socketDir: SOCKET_DIR,
            ovsdbSocket: fx.ovs.dbSocket,
            ipam: {
              type: 'host-local',
              dataDir: ipamDir(),
              ranges: [[{ subnet: '10.78.0.0/24', gateway: '10.78.0.1' }]],
            },
          },
        ],
      }),
    );
    // The image: busybox-static and its applets, imported from a tarball made here.
    await run('cp', [BUSYBOX, dir('rootfs/bin/busybox')]);
    for (const applet of ['sh', 'sleep', 'cat', 'ls', 'ip'])
      await run('ln', ['-sf', 'busybox', dir(`rootfs/bin/${applet}`)]);
    await run('tar', ['-C', dir('rootfs'), '-cf', dir('rootfs.tar'), '.']);
    await podman(['import', dir('rootfs.tar'), IMAGE]);
    const info = await podman([
      'info',
      '--format',
      '{{.Host.NetworkBackend}} {{.Host.OCIRuntime.Name}}',
    ]);
    expect(info).toBe('cni runc');
    expect(await podman(['network', 'ls', '--format', '{{.Name}}'])).toContain(NETWORK);
  }, 300_000);

  afterAll(async () => {
    await podman(['rm', '-af']).catch(() => undefined);
    await fx.stop();
  }, 120_000);

  for (const mode of ['daemon', 'in-process'] as const)
    it(`with the daemon ${mode === 'daemon' ? 'on' : 'off'}: the container gets its interface and IP, podman rm leaves nothing`, async () => {
      const name = `Flowline_${mode === 'daemon' ? 'On' : 'Off'}.1`;
      const mark = fx.daemonLog().length;
      const id = await podman(
        ['run', '-d', '--name', name, '--network', NETWORK, IMAGE, 'sleep', '600'],
        mode,
      );
      expect(id).toMatch(/^[0-9a-f]{64}$/);
      // The 64-hex ID fits under the default socketDir with its readable name.
      const folder = join(SOCKET_DIR, id);
      const socket = join(folder, 'eth0.sock');
      const netInfo = JSON.parse(
        await podman(['inspect', id, '--format', '{{json .NetworkSettings.Networks}}']),
      ) as Record<
        string,
        { IPAddress: string; IPPrefixLen: number; MacAddress: string; Gateway: string }
      >;
      expect(netInfo[NETWORK]).toMatchObject({
        IPPrefixLen: 24,
        Gateway: '10.78.0.1',
        MacAddress: macAddress(id, 'eth0'),
      });
      const ip = netInfo[NETWORK]!.IPAddress;
      expect(ip).toMatch(/^10\.78\.0\.\d+$/);
      expect(readdirSync(join(ipamDir(), NETWORK))).toContain(ip);
      // The interface is a vhost-user port: the OVS port with the socket in the pod folder.
      const iface = await fx.ovs.vswitch.getInterface(ovsPortName(id, 'eth0'));
      expect(iface?.type).toBe('dpdkvhostuserclient');
      expect(iface?.options['vhost-server-path']).toBe(socket);
      const description = JSON.parse(readFileSync(join(folder, 'eth0.json'), 'utf8'));
      expect(description).toMatchObject({ containerID: id, socketPath: socket, network: NETWORK });
      expect(description.ips).toEqual([{ address: `${ip}/24`, gateway: '10.78.0.1' }]);
      const infoFile = defaultDeviceInfoFile(DEFAULT_DEVICE_INFO_DIR, NETWORK, id, 'eth0');
      const info = JSON.parse(readFileSync(infoFile, 'utf8'));
      expect(deviceInfoErrors(info)).toEqual([]);
      expect(info['vhost-user']).toEqual({ mode: 'server', path: socket });
      // What the plugin saw: podman's own CNI_ARGS, answered by the daemon or in-process.
      const served = fx.daemonLog().slice(mark);
      if (mode === 'daemon') expect(served).toContain(`"containerId":"${id}"`);
      else expect(served).not.toContain(id);
      expect(await podman(['inspect', id, '--format', '{{.State.Status}}'])).toBe('running');

      await podman(['rm', '-f', '-t', '0', name], mode);
      expect(await fx.portNames()).toEqual([fx.ovs.bridge]);
      expect(readdirSync(join(ipamDir(), NETWORK)).filter((f) => /^\d/.test(f))).toEqual([]);
      expect(existsSync(folder)).toBe(false);
      expect(existsSync(infoFile)).toBe(false);
      expect(existsSync(join(SOCKET_DIR, '.index', `${id}:eth0.json`))).toBe(false);
    }, 180_000);
});
