/**
 * CNI ADD latency of the flowline plugin with OVS-DPDK running, as a container runtime sees it:
 * exec of the plugin with CNI_* and the config on stdin until it exits, host-local IPAM
 * included. Side by side in the same run, alternating, with Debian's reference `bridge` plugin
 * (veth into the pod's netns, Linux bridge, the same host-local IPAM): the kernel path.
 * Flowline runs two ways: as deployed (the native `flowline` executable handing the invocation
 * to the resident `flowline-cni daemon`), and in-process (the bundled plugin exec'd by itself,
 * what the executable falls back to when no daemon runs).
 *
 *   npm run bench:cni-add -w @flowline/bench [-- --cycles 200]
 *
 * Needs root, hugepages and the built plugin (npx nx build @flowline/cni-plugin). Target:
 * p99 of the flowline ADD under 100 ms on this machine.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { startOvsDpdk, type OvsDpdk } from '@flowline/ovs';
import { positiveInt } from './args';
import { formatTable, median, percentile } from './stats';

const CNI_BIN = '/usr/lib/cni';

interface Case {
  name: string;
  plugin: string;
  args?: string[];
  conf: Record<string, unknown>;
  /** Extra environment for this case's execs. */
  env?: Record<string, string>;
  /** Wall times of each cycle's ADD and DEL, ms. */
  add: number[];
  del: number[];
}

/** One exec by the protocol; resolves with the wall time in ms, rejects with the plugin's error. */
function exec(
  plugin: string,
  env: Record<string, string>,
  conf: unknown,
  args: string[] = [],
): Promise<number> {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const child = spawn(plugin, args, {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      if (code === 0) resolve(ms);
      else
        reject(new Error(`${plugin} ${env.CNI_COMMAND} exited ${code}: ${out} ${err.slice(-500)}`));
    });
    child.stdin.end(JSON.stringify(conf));
  });
}

function parseCycles(argv: string[]): number {
  const i = argv.indexOf('--cycles');
  return i >= 0 ? positiveInt('--cycles', argv[i + 1]) : 200;
}

const fmt = (ms: number): string => ms.toFixed(1);

export async function main(argv: string[]): Promise<void> {
  const cycles = parseCycles(argv);
  const dist = join(dirname(require.resolve('@flowline/cni-plugin/package.json')), 'dist');
  const flowline = join(dist, 'flowline');
  const flowlineInProcess = join(dist, 'flowline-cni');
  const id = `${process.pid}`;
  const base = `/tmp/flbench-cni-${id}`;
  const podNs = `flbench-cni-${id}`;
  const linuxBridge = `flb${id}`.slice(0, 15);
  let ovs: OvsDpdk | undefined;
  let daemon: ChildProcess | undefined;
  const daemonSocket = `${base}/daemon/cni.sock`;
  rmSync(base, { recursive: true, force: true });
  mkdirSync(`${base}/sockets`, { recursive: true });
  try {
    ovs = await startOvsDpdk({
      runDir: `${base}/ovs`,
      netns: `flbench-ovs-${id}`,
      maxLifetimeSec: 3600,
    });
    execFileSync('ip', ['netns', 'add', podNs]);
    daemon = spawn(
      flowlineInProcess,
      ['daemon', '--socket', daemonSocket, '--metrics-port', 'off'],
      {
        stdio: ['ignore', 'ignore', 'inherit'],
        env: { ...process.env, FLOWLINE_LOG_LEVEL: 'warn' },
      },
    );
    for (let i = 0; !existsSync(daemonSocket); i++) {
      if (i > 100 || daemon.exitCode !== null) throw new Error('flowline-cni daemon did not start');
      await new Promise((r) => setTimeout(r, 50));
    }
    const ipam = (subnet: string) => ({
      type: 'host-local',
      dataDir: `${base}/ipam`,
      ranges: [[{ subnet }]],
    });
    const flowlineConf = {
      cniVersion: '1.1.0',
      name: 'bench-flowline',
      type: 'flowline',
      bridge: ovs.bridge,
      socketDir: `${base}/sockets`,
      ovsdbSocket: ovs.dbSocket,
      ipam: ipam('10.198.0.0/16'),
    };
    const flowlineCase: Case = {
      name: 'flowline (native exec -> resident daemon)',
      plugin: flowline,
      env: { FLOWLINE_CNI_SOCKET: daemonSocket },
      conf: flowlineConf,
      add: [],
      del: [],
    };
    const inProcessCase: Case = {
      name: 'flowline in-process (node per exec)',
      plugin: flowlineInProcess,
      conf: flowlineConf,
      add: [],
      del: [],
    };
    const reference: Case = {
      name: 'bridge (reference: veth + Linux bridge)',
      plugin: join(CNI_BIN, 'bridge'),
      conf: {
        cniVersion: '1.0.0',
        name: 'bench-bridge',
        type: 'bridge',
        bridge: linuxBridge,
        ipam: ipam('10.199.0.0/16'),
      },
      add: [],
      del: [],
    };
    // What any CNI plugin written for Node pays before its first line runs: a node process that
    // reads stdin and exits. Shows how much of flowline's time is the runtime, not the work.
    const nodeFloor: Case = {
      name: 'node startup floor (reads stdin, exits)',
      plugin: process.execPath,
      args: ['-e', 'process.stdin.resume(); process.stdin.on("end", () => process.exit(0))'],
      conf: {},
      add: [],
      del: [],
    };
    const cases = [flowlineCase, inProcessCase, reference, nodeFloor];
    const env = (command: string, n: number) => ({
      CNI_COMMAND: command,
      CNI_CONTAINERID: `bench${id}x${n}`,
      CNI_NETNS: `/run/netns/${podNs}`,
      CNI_IFNAME: 'net1',
      CNI_PATH: CNI_BIN,
      CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=pod-${n}`,
    });
    // Warm-up (page cache, OVS's first port), not counted.
    for (const c of cases) {
      await exec(c.plugin, { ...env('ADD', -1), ...c.env }, c.conf, c.args);
      await exec(c.plugin, { ...env('DEL', -1), ...c.env }, c.conf, c.args);
    }
    for (let n = 0; n < cycles; n++) {
      // Alternate which case goes first, so drift of the machine favours neither.
      for (const c of n % 2 === 0 ? cases : [...cases].reverse()) {
        c.add.push(await exec(c.plugin, { ...env('ADD', n), ...c.env }, c.conf, c.args));
        c.del.push(await exec(c.plugin, { ...env('DEL', n), ...c.env }, c.conf, c.args));
      }
      if ((n + 1) % 50 === 0) process.stderr.write(`${n + 1}/${cycles} cycles\n`);
    }
    const rows = [['case', 'op', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms']];
    for (const c of cases) {
      for (const [op, v] of [
        ['ADD', c.add],
        ['DEL', c.del],
      ] as const)
        rows.push([
          c.name,
          op,
          fmt(median(v)),
          fmt(percentile(v, 90)),
          fmt(percentile(v, 99)),
          fmt(Math.max(...v)),
        ]);
    }
    const ratios = flowlineCase.add.map((a, i) => a / (reference.add[i] ?? NaN));
    const p99 = percentile(flowlineCase.add, 99);
    console.log(`CNI ADD+DEL, ${cycles} cycles each, alternating; host-local IPAM in both\n`);
    console.log(formatTable(rows));
    console.log(
      `\nflowline/bridge ADD: ratio of medians ${(median(flowlineCase.add) / median(reference.add)).toFixed(2)}, median per-cycle ratio ${median(ratios).toFixed(2)}`,
    );
    console.log(
      `flowline in-process ADD median over the node startup floor: ${fmt(median(inProcessCase.add) - median(nodeFloor.add))} ms (the plugin's own work: OVSDB, IPAM exec, files)`,
    );
    console.log(
      `flowline daemon/in-process ADD: ratio of medians ${(median(flowlineCase.add) / median(inProcessCase.add)).toFixed(2)}`,
    );
    console.log(
      `target p99(flowline ADD) < 100 ms: ${fmt(p99)} ms, ${p99 < 100 ? 'met' : 'NOT met'}`,
    );
  } finally {
    if (daemon && daemon.exitCode === null) {
      const exited = new Promise((r) => daemon?.once('exit', r));
      daemon.kill('SIGTERM');
      await exited;
    }
    await ovs?.stop().catch((err: unknown) => console.error('stopping OVS failed:', err));
    for (const args of [
      ['netns', 'del', podNs],
      ['link', 'del', linuxBridge],
    ])
      try {
        execFileSync('ip', args, { stdio: 'ignore' });
      } catch {
        /* not created */
      }
    rmSync(base, { recursive: true, force: true });
  }
}

if (require.main === module)
  main(process.argv.slice(2)).catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
