import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { CNI_PATH, CniFixture } from '../support/fixture';
import { deviceInfoErrors } from '../support/device-info-schema';
import { runtimeArgs } from '../support/runtime-args';
import { PLUGIN, runProcess, type PluginRun } from '../support/exec';

// The plugin driven through libcni, the library containerd, CRI-O, podman and Multus call:
// cnitool (test/cnitool/main.go) is built offline from Debian's CNI library sources.
const root = join(__dirname, '..', '..');
const CNITOOL = join(root, 'build', 'cnitool');
const LIBCNI = '/usr/share/gocode/src/github.com/containernetworking/cni/libcni';
const missing = [
  ...(existsSync('/usr/bin/go') ? [] : ['golang-go']),
  ...(existsSync(LIBCNI)
    ? []
    : ['golang-github-appc-cni-dev (provides golang-github-containernetworking-cni-dev)']),
];
const title = missing.length
  ? `SKIPPED: cnitool cannot be built, Debian packages missing: ${missing.join(', ')} (tools/setup/setup.sh installs them)`
  : 'CNI plugin through libcni (cnitool) against OVS-DPDK and host-local (integration)';

(missing.length ? describe.skip : describe)(title, () => {
  const fx = new CniFixture();
  const confDir = (): string => join(fx.base, 'net.d');
  const longSocketDir = (): string => join(fx.base, 'var/run/flowline/vhost');
  const cacheDir = (): string => join(fx.base, 'cni-cache');
  let netns: string;

  /** Runs cnitool as a runtime would use libcni: netconf lists from a folder, plugins on CNI_PATH. */
  const cnitool = (args: string[], env: Record<string, string> = {}): Promise<PluginRun> =>
    runProcess(CNITOOL, args, {
      NETCONFPATH: confDir(),
      CNI_PATH: `${dirname(PLUGIN)}:${CNI_PATH}`,
      CNI_CACHEDIR: cacheDir(),
      CNI_IFNAME: 'net1',
      // libcni hands its own environment to the plugin: this reaches the native executable.
      FLOWLINE_CNI_SOCKET: fx.daemonSocket,
      ...env,
    });

  /** A netconf list (one file per network) whose single plugin is flowline. */
  const writeList = (
    name: string,
    cniVersion: string,
    overrides: Record<string, unknown> = {},
  ): void => {
    const plugin: Record<string, unknown> = {
      ...fx.conf(overrides),
      name: undefined,
      cniVersion: undefined,
    };
    mkdirSync(confDir(), { recursive: true });
    writeFileSync(
      join(confDir(), `10-${name}.conflist`),
      JSON.stringify({ cniVersion, name, plugins: [JSON.parse(JSON.stringify(plugin))] }, null, 2),
    );
  };

  beforeAll(async () => {
    execFileSync(join(root, 'scripts', 'build-cnitool.sh'), { stdio: 'inherit' });
    await fx.start();
    netns = fx.netns('libcni');
    writeList(fx.network, '1.0.0');
    // A socketDir as long as many nodes use: a 64-hex container ID does not fit in it readably.
    writeList('flowline-long', '1.0.0', {
      socketDir: longSocketDir(),
      ipam: { ...(fx.conf().ipam as object), dataDir: `${fx.ipamDir}-long` },
    });
  }, 180_000);
  afterAll(() => fx.stop(), 60_000);

  it('libcni finds the plugin, reads its versions and validates the list', async () => {
    const v = await cnitool(['version', 'flowline']);
    expect(v.code, v.stderr).toBe(0);
    expect(v.json).toEqual({ supportedVersions: ['0.4.0', '1.0.0', '1.1.0'] });
    const valid = await cnitool(['validate', fx.network]);
    expect(valid.code, valid.stderr + valid.stdout).toBe(0);
  });

  it('add, check and del through libcni wire a vhost-user port and leave nothing behind', async () => {
    const portsBefore = await fx.portNames();
    const env = {
      CNI_CONTAINERID: `libcni${fx.id}a`,
      CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;K8S_POD_UID=1234`,
    };
    const add = await cnitool(['add', fx.network, netns], env);
    expect(add.code, add.stderr + add.stdout).toBe(0);
    expect(add.json).toMatchObject({
      cniVersion: '1.0.0',
      interfaces: [{ name: 'net1', sandbox: netns }],
    });
    const address = (add.json!.ips as { address: string; interface: number }[])[0]!;
    expect(address.address).toMatch(/^10\.77\.0\.\d+\/24$/);
    expect(address.interface).toBe(0);
    expect(add.json!.dns).toEqual({ nameservers: ['10.77.0.53'] });

    // The port is in OVS, the socket folder follows contract 2
    // (docs/architecture.md#cni-to-switch-and-pod), the lease is in host-local.
    const description = JSON.parse(readFileSync(`${fx.socketDir}/default_web-0/net1.json`, 'utf8'));
    expect(description.socketPath).toBe(`${fx.socketDir}/default_web-0/net1.sock`);
    expect(description.ips).toEqual([{ address: address.address, gateway: '10.77.0.1' }]);
    const iface = await fx.ovs.vswitch.getInterface(description.ovsPort);
    expect(iface?.type).toBe('dpdkvhostuserclient');
    expect(iface?.options['vhost-server-path']).toBe(description.socketPath);
    expect(fx.leases()).toEqual([address.address.split('/')[0]]);
    // libcni cached the result: CHECK and DEL get it as prevResult.
    expect(
      readdirSync(join(cacheDir(), 'results')).some((f) => f.includes(env.CNI_CONTAINERID)),
    ).toBe(true);

    const check = await cnitool(['check', fx.network, netns], env);
    expect(check.code, check.stderr + check.stdout).toBe(0);

    // Take the port away behind the plugin's back: CHECK through libcni reports it.
    await fx.ovs.vswitch.delPort(description.ovsPort);
    const broken = await cnitool(['check', fx.network, netns], env);
    expect(broken.code).toBe(1);
    expect(broken.json).toMatchObject({ code: 110 });
    expect(String(broken.json!.msg)).toContain(`OVS port ${description.ovsPort} is missing`);

    for (let i = 0; i < 2; i++) {
      const del = await cnitool(['del', fx.network, netns], env);
      expect(del.code, del.stderr + del.stdout).toBe(0);
    }
    expect(await fx.portNames()).toEqual(portsBefore);
    expect(fx.leases()).toEqual([]);
    expect(fx.socketTree()).toEqual([]);
  });

  it('a 0.4.0 list works the same way, and DEL without a cached result still cleans up', async () => {
    writeList('flowline-v04', '0.4.0', {
      ipam: { ...(fx.conf().ipam as object), dataDir: `${fx.ipamDir}-v04` },
    });
    const env = { CNI_CONTAINERID: `libcni${fx.id}b` };
    const add = await cnitool(['add', 'flowline-v04', netns], env);
    expect(add.code, add.stderr + add.stdout).toBe(0);
    expect(add.json).toMatchObject({ cniVersion: '0.4.0', ips: [{ version: '4', interface: 0 }] });
    const check = await cnitool(['check', 'flowline-v04', netns], env);
    expect(check.code, check.stderr + check.stdout).toBe(0);
    // A runtime that lost its cache (e.g. node reboot) still DELs with only the config.
    execFileSync('rm', ['-rf', cacheDir()]);
    const del = await cnitool(['del', 'flowline-v04', netns], env);
    expect(del.code, del.stderr + del.stdout).toBe(0);
    expect(await fx.portNames()).toEqual([fx.ovs.bridge]);
    expect(readdirSync(`${fx.ipamDir}-v04/flowline-v04`).filter((f) => /^\d/.test(f))).toEqual([]);
    expect(fx.socketTree()).toEqual([]);
  });

  /** A container ID as containerd, CRI-O and podman make them: 64 hex digits. */
  const id64 = (seed: string): string =>
    createHash('sha256').update(`${fx.id}/${seed}`).digest('hex');

  /** What one attachment left: OVS ports, lease files, pod folders, device-info files, records. */
  const leftovers = async (network: string, socketDir: string): Promise<unknown> => ({
    ports: (await fx.portNames()).filter((p) => p !== fx.ovs.bridge),
    leases: existsSync(`${fx.ipamDir}${network === fx.network ? '' : '-long'}/${network}`)
      ? readdirSync(`${fx.ipamDir}${network === fx.network ? '' : '-long'}/${network}`).filter(
          (f) => /^\d/.test(f),
        )
      : [],
    folders: existsSync(socketDir) ? readdirSync(socketDir).filter((f) => !f.startsWith('.')) : [],
    records: existsSync(join(socketDir, '.index')) ? readdirSync(join(socketDir, '.index')) : [],
    deviceInfo: fx.deviceInfoFiles(),
  });
  const nothingLeft = { ports: [], leases: [], folders: [], records: [], deviceInfo: [] };

  for (const [network, dir, fits] of [
    ['flowline-test', (): string => fx.socketDir, true],
    ['flowline-long', longSocketDir, false],
  ] as const)
    for (const form of runtimeArgs('0'.repeat(64)))
      it(`${form.runtime}: 64-hex container ID on ${network} (socketDir ${fits ? 'short' : 'long'}): add, check, del`, async () => {
        const containerId = id64(`${network}/${form.runtime}`);
        const args = form.args.replaceAll('0'.repeat(64), containerId);
        const env = { CNI_CONTAINERID: containerId, CNI_ARGS: args };
        const add = await cnitool(['add', network, netns], env);
        expect(add.code, add.stderr + add.stdout).toBe(0);
        expect(add.json).toMatchObject({ cniVersion: '1.0.0', interfaces: [{ name: 'net1' }] });
        // 1.0.0 results carry no socketPath (README "Results"): the socket is published by the
        // device-info file and the attachment file.
        expect(JSON.stringify(add.json)).not.toContain('socketPath');

        const readable = form.pod ? `${form.pod.namespace}_${form.pod.name}` : containerId;
        const folder =
          form.pod || fits
            ? readable
            : `+${createHash('sha256').update(readable).digest('hex').slice(0, 16)}`;
        const socket = `${dir()}/${folder}/net1.sock`;
        expect(Buffer.byteLength(socket)).toBeLessThanOrEqual(107);
        const description = JSON.parse(readFileSync(`${dir()}/${folder}/net1.json`, 'utf8'));
        expect(description.socketPath).toBe(socket);
        const iface = await fx.ovs.vswitch.getInterface(description.ovsPort);
        expect(iface?.options['vhost-server-path']).toBe(socket);
        // The NPWG device-info file, as the spec's schema says, describing this socket.
        const infoFile = `${fx.deviceInfoDir}/${network}-${containerId}_net1`;
        expect(description.deviceInfoFile).toBe(infoFile);
        const info = JSON.parse(readFileSync(infoFile, 'utf8'));
        expect(deviceInfoErrors(info)).toEqual([]);
        expect(info).toEqual({
          type: 'vhost-user',
          version: '1.1.0',
          'vhost-user': { mode: 'server', path: socket },
        });
        expect(readdirSync(join(dir(), '.index'))).toEqual([`${containerId}:net1.json`]);

        const check = await cnitool(['check', network, netns], env);
        expect(check.code, check.stderr + check.stdout).toBe(0);
        const del = await cnitool(['del', network, netns], env);
        expect(del.code, del.stderr + del.stdout).toBe(0);
        expect(await leftovers(network, dir())).toEqual(nothingLeft);
      });

  it('DEL with CNI_ARGS ADD would refuse, or naming no pod, still removes everything (the record)', async () => {
    for (const delArgs of [
      'IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=../../etc',
      'IgnoreUnknown=1;K8S_POD_NAME=renamed',
      'IgnoreUnknown=0;UNKNOWN_KEY=1',
    ]) {
      const containerId = id64(`del/${delArgs}`);
      const add = await cnitool(['add', 'flowline-long', netns], {
        CNI_CONTAINERID: containerId,
        CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=kube-system;K8S_POD_NAME=${'n'.repeat(70)}`,
      });
      expect(add.code, add.stderr + add.stdout).toBe(0);
      const folders = readdirSync(longSocketDir()).filter((f) => !f.startsWith('.'));
      // kube-system_nnn... does not fit under this socketDir: its hashed folder.
      expect(folders).toEqual([expect.stringMatching(/^\+[0-9a-f]{16}$/)]);
      execFileSync('rm', ['-rf', cacheDir()]);
      const del = await cnitool(['del', 'flowline-long', netns], {
        CNI_CONTAINERID: containerId,
        CNI_ARGS: delArgs,
      });
      expect(del.code, `${delArgs}: ${del.stderr}${del.stdout}`).toBe(0);
      expect(await leftovers('flowline-long', longSocketDir()), delArgs).toEqual(nothingLeft);
    }
  });

  it("the plugin's error codes come back through libcni, and a failed add leaves nothing", async () => {
    writeList('flowline-longdir', '1.0.0', { socketDir: `/tmp/${'d'.repeat(90)}` });
    const long = await cnitool(['add', 'flowline-longdir', netns], {
      CNI_CONTAINERID: `libcni${fx.id}c`,
    });
    expect(long.code).toBe(1);
    expect(long.json).toMatchObject({ code: 7 });
    expect(String(long.json!.msg)).toMatch(/socketDir .* 107/);

    const badArgs = await cnitool(['add', fx.network, netns], {
      CNI_CONTAINERID: `libcni${fx.id}d`,
      CNI_ARGS: 'K8S_POD_NAMESPACE=default;K8S_POD_NAME=../../etc',
    });
    expect(badArgs.code).toBe(1);
    expect(badArgs.json).toMatchObject({ code: 4 });
    expect(String(badArgs.json!.msg)).toContain('K8S_POD_NAME');

    writeList('flowline-nobridge', '1.0.0', { bridge: 'br-missing' });
    const noBridge = await cnitool(['add', 'flowline-nobridge', netns], {
      CNI_CONTAINERID: `libcni${fx.id}e`,
    });
    expect(noBridge.json).toMatchObject({ code: 7 });
    expect(String(noBridge.json!.msg)).toContain('bridge br-missing');
    expect(await fx.portNames()).toEqual([fx.ovs.bridge]);
    expect(fx.leases()).toEqual([]);
    expect(fx.socketTree()).toEqual([]);
  });
});
