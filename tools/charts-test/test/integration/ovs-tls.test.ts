import * as grpc from '@grpc/grpc-js';
import { chainV1, unaryCall, type UnaryMethod } from '@flowline/proto';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { find, render, type Manifest } from '../../src/helm';
import { certNames, secretData, signedBy } from '../../src/ovs-tls';
import { startOvsScript } from '../../src/ovs-script';
import { repoRoot } from '../../src/paths';
import { envOf, podOf, type Container } from '../../src/security';

/**
 * The chart's OVS and chain controller joined as the chart wires them, on this machine: the
 * OVS container's start script (docker/ovs-dpdk/start.sh) with the rendered DaemonSet's
 * environment and switch Secret, listening at a "node IP" (a veth into a netns); the
 * controller's real main.js with the rendered Deployment's environment and controller Secret.
 * A chain made through the controller's gRPC API lands on the bridge over SSL. Switch
 * identities: the chart's two CAs and per-node certificates; this switch is node-a's (its
 * DaemonSet and Secret), and the controller, dialling one literal address, is told so with
 * FLOWLINE_OVS_SWITCH_NODE (what it derives from pods' spec.nodeName in a cluster). Debian's
 * ovs-vswitchd (not the DPDK one) runs the script: SSL and OpenFlow are the point here, and
 * it takes no hugepages. No kube-apiserver here: the controller reaches this one node at its
 * address (the literal form of the chart's ssl:{nodeIP} remote).
 */
const root = process.getuid?.() === 0;
const CONTROLLER = join(repoRoot, 'services', 'chain-controller', 'dist', 'main.js');
/** The node this machine plays, and another node of the release. */
const NODE = 'node-a';
const OTHER = 'node-b';

/** A /30 of 10.251.0.0/16 per test process. */
function link(): { host: string; node: string } {
  const base = (process.pid % 16384) * 4;
  const ip = (n: number): string => `10.251.${(base + n) >> 8}.${(base + n) & 255}`;
  return { host: ip(1), node: ip(2) };
}

/** Writes the Secret a container mounts at /etc/flowline/ovs-tls into `dir`. */
function writeMountedSecret(
  ms: Manifest[],
  pod: ReturnType<typeof podOf>,
  c: Container,
  dir: string,
): void {
  const mount = c.volumeMounts!.find((m) => m.mountPath === '/etc/flowline/ovs-tls')!;
  const volume = pod.spec.volumes!.find((v) => v.name === mount.name) as unknown as {
    secret: { secretName: string };
  };
  const secret = find(ms, 'Secret', volume.secret.secretName) as unknown as {
    data: Record<string, string>;
  };
  mkdirSync(dir, { recursive: true });
  for (const [file, b64] of Object.entries(secret.data))
    writeFileSync(join(dir, file), Buffer.from(b64, 'base64'), { mode: 0o400 });
}

async function waitFor(what: string, check: () => boolean, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe.skipIf(!root)("the chart's OVS and chain controller over SSL (integration)", () => {
  const work = mkdtempSync(join(tmpdir(), 'flowline-chart-tls-'));
  const netns = `flchtls-${process.pid}`;
  const hostIf = `flt${process.pid % 100000}h`;
  const { host, node } = link();
  const runDir = join(work, 'run');
  let ovs: ChildProcess | undefined;
  let ovsLog = '';
  let controller: ChildProcess | undefined;
  let controllerLog = '';
  let client: chainV1.ChainServiceClient | undefined;
  let ms: Manifest[] = [];
  /** The controller's environment as started (for a second controller told another node). */
  let ccEnvBase: Record<string, string> = {};
  const ofctl = (...args: string[]): string =>
    execFileSync('ovs-ofctl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

  beforeAll(async () => {
    ms = render('flowline', { ovs: { nodes: [NODE, OTHER] } });
    const ovsPod = podOf(find(ms, 'DaemonSet', `test-ovs-dpdk-${NODE}`));
    const ovsC = ovsPod.spec.containers[0]!;
    const ccPod = podOf(find(ms, 'Deployment', 'test-chain-controller'));
    const ccC = ccPod.spec.containers[0]!;
    writeMountedSecret(ms, ovsPod, ovsC, join(work, 'switch-tls'));
    writeMountedSecret(ms, ccPod, ccC, join(work, 'controller-tls'));

    execFileSync('ip', ['netns', 'add', netns]);
    execFileSync('ip', [
      'link',
      'add',
      hostIf,
      'type',
      'veth',
      'peer',
      'name',
      'eth0',
      'netns',
      netns,
    ]);
    execFileSync('ip', ['addr', 'add', `${host}/30`, 'dev', hostIf]);
    execFileSync('ip', ['link', 'set', hostIf, 'up']);
    for (const args of [
      ['addr', 'add', `${node}/30`, 'dev', 'eth0'],
      ['link', 'set', 'eth0', 'up'],
      ['link', 'set', 'lo', 'up'],
    ])
      execFileSync('ip', ['-n', netns, ...args]);

    // The DaemonSet's environment, as kubelet would give it on a node whose IP is `node`.
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(envOf(ovsC)))
      if (typeof v === 'string') env[k] = v.replaceAll('$(NODE_IP)', node);
    Object.assign(env, {
      NODE_IP: node,
      FLOWLINE_OVS_RUN_DIR: runDir,
      FLOWLINE_OVS_DB_DIR: join(work, 'db'),
      FLOWLINE_OVS_TLS_DIR: join(work, 'switch-tls'),
      FLOWLINE_OVS_CPUS: '0',
    });
    expect(env.FLOWLINE_OVSDB_REMOTE).toBe(`pssl:6640:${node}`);
    const script = startOvsScript(netns, env);
    ovs = script.process;
    ovs.stdout!.on('data', (d: Buffer) => (ovsLog += d.toString()));
    ovs.stderr!.on('data', (d: Buffer) => (ovsLog += d.toString()));
    await waitFor(`start.sh's bridge (log: ${ovsLog})`, () =>
      ovsLog.includes('bridge br-flowline ready'),
    );

    // Three NFs' ports and the CNI plugin's attachment files for them (contract 2,
    // docs/architecture.md#cni-to-switch-and-pod).
    const sockets = join(work, 'sockets');
    for (const [nf, ifaces] of [
      ['gen', ['net1']],
      ['fw', ['net1', 'net2']],
      ['sink', ['net1']],
    ] as const) {
      mkdirSync(join(sockets, `default_${nf}`), { recursive: true });
      for (const iface of ifaces) {
        const port = `${nf}-${iface}`;
        // The external_ids the CNI plugin writes on the Port and Interface: the controller takes
        // an interface's port from them (packages/ovs ATTACHMENT_EXTERNAL_IDS), not from the file.
        const ids = [
          'external_ids:k8s-pod-namespace=default',
          `external_ids:k8s-pod-name=${nf}`,
          `external_ids:cni-ifname=${iface}`,
        ];
        execFileSync('ovs-vsctl', [
          `--db=unix:${runDir}/db.sock`,
          'add-port',
          'br-flowline',
          port,
          '--',
          'set',
          'interface',
          port,
          'type=internal',
          ...ids,
          '--',
          'set',
          'port',
          port,
          ...ids,
        ]);
        writeFileSync(
          join(sockets, `default_${nf}`, `${iface}.json`),
          JSON.stringify({ ovsPort: port, ifname: iface }),
        );
      }
    }

    // The Deployment's environment, the remotes pointed at this node.
    const ccEnv: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
    for (const [k, v] of Object.entries(envOf(ccC))) if (typeof v === 'string') ccEnv[k] = v;
    expect(ccEnv.FLOWLINE_OVSDB_REMOTE).toBe('ssl:{nodeIP}:6640');
    delete ccEnv.FLOWLINE_KUBERNETES;
    // This test is about OVS over SSL: the ChainService is reached over a unix socket in
    // plaintext, not with the gRPC certificates mounted in a pod (grpc-security.test.ts checks
    // those), and no health listener is opened on the host.
    for (const k of Object.keys(ccEnv)) if (k.startsWith('FLOWLINE_TLS_')) delete ccEnv[k];
    delete ccEnv.FLOWLINE_HEALTH_ADDRESS;
    ccEnv.FLOWLINE_INSECURE = '1';
    Object.assign(ccEnv, {
      FLOWLINE_OVSDB_REMOTE: ccEnv.FLOWLINE_OVSDB_REMOTE!.replace('{nodeIP}', node),
      FLOWLINE_OPENFLOW_REMOTE: ccEnv.FLOWLINE_OPENFLOW_REMOTE!.replace('{nodeIP}', node),
      FLOWLINE_OVS_TLS_DIR: join(work, 'controller-tls'),
      FLOWLINE_GRPC_ADDRESS: `unix://${join(work, 'cc.sock')}`,
      FLOWLINE_CHAIN_STATE: join(work, 'chains.json'),
      FLOWLINE_SOCKET_DIR: sockets,
      FLOWLINE_METRICS_PORT: 'off',
      // One literal switch: the controller must be told whose it is.
      FLOWLINE_OVS_SWITCH_NODE: NODE,
    });
    ccEnvBase = { ...ccEnv };
    controller = spawn(process.execPath, [CONTROLLER], {
      env: ccEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    controller.stdout!.on('data', (d: Buffer) => (controllerLog += d.toString()));
    controller.stderr!.on('data', (d: Buffer) => (controllerLog += d.toString()));
    await waitFor(`the controller serving (log: ${controllerLog})`, () =>
      controllerLog.includes('"serving"'),
    );
    client = new (chainV1.loadChainV1().ChainService)(
      `unix://${join(work, 'cc.sock')}`,
      grpc.credentials.createInsecure(),
    );
  }, 90_000);

  afterAll(async () => {
    client?.close();
    for (const p of [controller, ovs]) {
      if (!p || p.exitCode !== null) continue;
      const exited = new Promise((r) => p.once('exit', r));
      try {
        process.kill(p === ovs ? -p.pid! : p.pid!, 'SIGTERM');
      } catch {
        /* gone */
      }
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    }
    // Anything of start.sh's that outlived its process group (pkill exits 1 when none did).
    try {
      execFileSync('pkill', ['-f', runDir], { stdio: 'ignore' });
    } catch {
      /* none left */
    }
  }, 60_000);

  afterAll(() => {
    for (const args of [
      ['link', 'del', hostIf],
      ['netns', 'del', netns],
    ])
      try {
        execFileSync('ip', args, { stdio: 'ignore' });
      } catch {
        /* already gone */
      }
    rmSync(work, { recursive: true, force: true });
  });

  it('a chain created through the API is programmed on the node over SSL', async () => {
    const chain = await unaryCall(
      client!.CreateChain.bind(client!) as UnaryMethod<object, chainV1.Chain__Output>,
      {
        name: 'tls-demo',
        spec: {
          classifier: { ingressPort: 'default/gen/net1', ipVersion: 4 },
          hops: [{ nf: 'default/fw', ingressInterface: 'net1', egressInterface: 'net2' }],
          egressPort: 'default/sink/net1',
        },
      },
    );
    expect(chain.status).toMatchObject({ phase: 'ACTIVE' });
    const flows = ofctl('--names', '--no-stats', 'dump-flows', `unix:${runDir}/br-flowline.mgmt`);
    expect(flows).toMatch(/in_port="?gen-net1"? actions=output:"?fw-net1"?/);
    expect(flows).toMatch(/in_port="?fw-net2"? actions=output:"?sink-net1"?/);
  });

  it("turns away a peer without the chart's certificates, on both listeners", () => {
    expect(() => ofctl('dump-flows', `tcp:${node}:6653`)).toThrow();
    const rogue = join(work, 'rogue');
    mkdirSync(rogue, { recursive: true });
    // A self-signed certificate, by OVS's own PKI tool.
    for (const args of [
      ['req', 'rogue'],
      ['self-sign', 'rogue'],
    ])
      execFileSync('ovs-pki', args, { cwd: rogue, stdio: 'ignore' });
    expect(() =>
      ofctl(
        `--private-key=${join(rogue, 'rogue-privkey.pem')}`,
        `--certificate=${join(rogue, 'rogue-cert.pem')}`,
        `--ca-cert=${join(work, 'controller-tls', 'ca.crt')}`,
        'dump-flows',
        `ssl:${node}:6653`,
      ),
    ).toThrow();
    expect(() =>
      execFileSync(
        'ovs-vsctl',
        [
          `--private-key=${join(rogue, 'rogue-privkey.pem')}`,
          `--certificate=${join(rogue, 'rogue-cert.pem')}`,
          `--ca-cert=${join(work, 'controller-tls', 'ca.crt')}`,
          `--db=ssl:${node}:6640`,
          '--timeout=3',
          'list-br',
        ],
        { stdio: 'ignore' },
      ),
    ).toThrow();
    // The controller's certificate does get in (the same files it used above).
    const tls = join(work, 'controller-tls');
    expect(
      execFileSync(
        'ovs-vsctl',
        [
          `--private-key=${join(tls, 'tls.key')}`,
          `--certificate=${join(tls, 'tls.crt')}`,
          `--ca-cert=${join(tls, 'ca.crt')}`,
          `--db=ssl:${node}:6640`,
          '--timeout=5',
          'list-br',
        ],
        { encoding: 'utf8' },
      ).trim(),
    ).toBe('br-flowline');
    expect(existsSync(join(work, 'chains.json'))).toBe(true);
  });
  it("mounts this node's own Secret in its OVS: two CAs, the switch certificate names ovs-switch.<node>", () => {
    const sw = (f: string) => readFileSync(join(work, 'switch-tls', f), 'utf8');
    const ctl = (f: string) => readFileSync(join(work, 'controller-tls', f), 'utf8');
    expect(sw('tls.crt')).toBe(secretData(ms, `test-ovs-tls-switch-${NODE}`)['tls.crt']);
    // Each side trusts the other's CA: the two ca.crt differ.
    expect(sw('ca.crt')).not.toBe(ctl('ca.crt'));
    expect(certNames(sw('tls.crt'))).toEqual({
      cn: `ovs-switch.${NODE}`,
      dns: [`ovs-switch.${NODE}`],
    });
    expect(signedBy(sw('tls.crt'), ctl('ca.crt'))).toBe(true);
    expect(signedBy(ctl('tls.crt'), sw('ca.crt'))).toBe(true);
    // No switch certificate of the release is signed by the controller CA (the switches' ca.crt).
    const switches = ms.filter(
      (m) => m.kind === 'Secret' && m.metadata.name.startsWith('test-ovs-tls-switch-'),
    );
    expect(switches.map((m) => m.metadata.name).sort()).toEqual([
      `test-ovs-tls-switch-${NODE}`,
      `test-ovs-tls-switch-${OTHER}`,
    ]);
    for (const m of switches) {
      const files = secretData(ms, m.metadata.name);
      expect(signedBy(files['tls.crt']!, sw('ca.crt')), m.metadata.name).toBe(false);
      expect(signedBy(files['tls.crt']!, ctl('ca.crt')), m.metadata.name).toBe(true);
    }
  });

  it('refuses a switch certificate presented as the controller, on both listeners', () => {
    const ctlCa = join(work, 'controller-tls', 'ca.crt');
    for (const name of [OTHER, NODE]) {
      // Another node's switch key, or this switch's own, trusting the switch CA as the
      // controller does: the switch accepts the controller CA's certificates only.
      const dir = join(work, `as-controller-${name}`);
      const files = secretData(ms, `test-ovs-tls-switch-${name}`);
      mkdirSync(dir, { recursive: true });
      for (const f of ['tls.key', 'tls.crt'])
        writeFileSync(join(dir, f), files[f]!, { mode: 0o400 });
      const creds = [
        `--private-key=${join(dir, 'tls.key')}`,
        `--certificate=${join(dir, 'tls.crt')}`,
        `--ca-cert=${ctlCa}`,
      ];
      expect(() =>
        execFileSync('ovs-vsctl', [...creds, `--db=ssl:${node}:6640`, '--timeout=3', 'list-br'], {
          stdio: 'ignore',
        }),
      ).toThrow();
      expect(() => ofctl(...creds, 'dump-flows', `ssl:${node}:6653`)).toThrow();
    }
  });

  it("a controller told it dials another node's switch refuses it: it does not start, the flow table is unchanged", async () => {
    const dir = join(work, 'other-controller');
    mkdirSync(dir, { recursive: true });
    const before = ofctl('--names', '--no-stats', 'dump-flows', `unix:${runDir}/br-flowline.mgmt`);
    const other = spawn(process.execPath, [CONTROLLER], {
      env: {
        ...ccEnvBase,
        FLOWLINE_OVS_SWITCH_NODE: OTHER,
        FLOWLINE_GRPC_ADDRESS: `unix://${join(dir, 'cc.sock')}`,
        FLOWLINE_CHAIN_STATE: join(dir, 'chains.json'),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let log = '';
    other.stdout!.on('data', (d: Buffer) => (log += d.toString()));
    other.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => {
        other.kill('SIGKILL');
        resolve(null);
      }, 30_000);
      other.once('exit', (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    // It does not start: the switch at that address proved node-a's name, not node-b's.
    expect(code, log).not.toBe(0);
    expect(code, log).not.toBeNull();
    expect(log).toContain(`names ovs-switch.${NODE}, not ovs-switch.${OTHER}`);
    expect(log).not.toContain('"serving"');
    expect(ofctl('--names', '--no-stats', 'dump-flows', `unix:${runDir}/br-flowline.mgmt`)).toBe(
      before,
    );
  });
});
