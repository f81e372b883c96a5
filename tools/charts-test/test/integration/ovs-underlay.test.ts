import { execFileSync, spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { find, render } from '../../src/helm';
import { type OvsScript, startOvsScript } from '../../src/ovs-script';
import { envOf, podOf } from '../../src/security';

/**
 * The chart's underlay for chains across nodes (issue 19), as the OVS container sets it up: the
 * rendered DaemonSet's environment given to docker/ovs-dpdk/start.sh in a network namespace (the
 * node) whose data-plane NIC is one end of a veth (eth1, holding the node's underlay address).
 * start.sh puts eth1 on br-underlay, moves the address to br-underlay's internal port (OVS's
 * userspace-tunnelling layout) and records it in OVSDB for the chain controller; the other end
 * of the veth (the underlay network) then reaches that address through OVS. Debian's
 * ovs-vswitchd runs it (a netdev bridge and a kernel port need no DPDK or hugepages).
 */
const root = process.getuid?.() === 0;
const NODE = 'node-a';

/** A /24 of 10.252.0.0/16 per test process: the underlay network. */
function subnet(): { peer: string; node: string } {
  const third = process.pid % 256;
  return { peer: `10.252.${third}.1`, node: `10.252.${third}.2` };
}

function sh(cmd: string, ...args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

describe.skipIf(!root)("the chart's OVS underlay (integration)", () => {
  const work = mkdtempSync(join(tmpdir(), 'flowline-chart-underlay-'));
  const netns = `flchul-${process.pid}`;
  const peerIf = `flu${process.pid % 100000}p`;
  const { peer, node } = subnet();
  const runDir = join(work, 'run');
  const vsctl = (...args: string[]): string =>
    sh('ovs-vsctl', `--db=unix:${runDir}/db.sock`, ...args);
  let script: OvsScript | undefined;
  const log = (): string => script?.log() ?? '';

  /** The DaemonSet's environment as kubelet gives it on this node, with `extra` on top. */
  function nodeEnv(values: Record<string, unknown>, extra: Record<string, string> = {}) {
    const ms = render('flowline', {
      ovs: { nodes: [NODE], remote: { tls: { enabled: false } }, ...values },
    });
    const ds = ms.find((m) => m.kind === 'DaemonSet' && m.metadata.name.includes('ovs-dpdk'))!;
    const c = podOf(find(ms, 'DaemonSet', ds.metadata.name)).spec.containers[0]!;
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(envOf(c)))
      if (typeof v === 'string') env[k] = v.replaceAll('$(NODE_IP)', node);
    return {
      ...env,
      NODE_IP: node,
      FLOWLINE_OVS_RUN_DIR: runDir,
      FLOWLINE_OVS_DB_DIR: join(work, 'db'),
      FLOWLINE_OVS_CPUS: '0',
      // this test is about the underlay: no listeners for a controller
      FLOWLINE_OVSDB_REMOTE: '',
      FLOWLINE_OPENFLOW_LISTEN: '',
      ...extra,
    };
  }

  function startScript(env: Record<string, string>): OvsScript {
    script = startOvsScript(netns, env);
    return script;
  }

  async function until(what: string, check: () => boolean, ms = 30_000): Promise<void> {
    const end = Date.now() + ms;
    while (!check()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}; start.sh: ${log()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async function stopScript(): Promise<void> {
    await script?.stop();
    script = undefined;
  }

  const addressesOf = (dev: string): string[] =>
    sh('ip', '-n', netns, '-o', '-4', 'addr', 'show', 'dev', dev, 'scope', 'global')
      .split('\n')
      .filter(Boolean)
      .map((l) => l.trim().split(/\s+/)[3]!);

  const macOf = (dev: string): string =>
    /link\/ether ([0-9a-f:]+)/.exec(sh('ip', '-n', netns, 'link', 'show', 'dev', dev))![1]!;

  /**
   * Whether the underlay resolves the node's underlay address to br-underlay's MAC: a datagram
   * to it makes the peer's kernel ARP, and only br-underlay's internal port, behind eth1 on the
   * OVS bridge, can answer. (No ping here; and TCP would meet veth checksum offload, which the
   * tunnels, encapsulated in OVS's userspace, never do.)
   */
  async function resolvedThroughOvs(): Promise<boolean> {
    const sock = createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, peer, () => r()));
    await new Promise<void>((r) => sock.send('x', 9, node, () => r()));
    sock.close();
    // The answer crosses OVS twice (eth1 -> br-underlay -> eth1), each a poll of its main
    // thread: on a loaded machine that can take longer than one short wait.
    for (let wait = 0; wait < 10; wait++) {
      await new Promise((r) => setTimeout(r, 100));
      const neigh = sh('ip', 'neigh', 'show', 'to', node, 'dev', peerIf);
      if (/FAILED/.test(neigh)) return false;
      if (!/INCOMPLETE/.test(neigh) && neigh.includes(`lladdr ${macOf('br-underlay')}`))
        return true;
    }
    return false;
  }

  /** What the peer, the node and OVS hold, for a failure's message. */
  function underlayState(): string {
    const run = (cmd: string, ...args: string[]): string => {
      const r = spawnSync(cmd, args, { encoding: 'utf8' });
      return `$ ${cmd} ${args.join(' ')}\n${r.stdout}${r.stderr}`;
    };
    const pid = spawnSync('cat', [`${runDir}/ovs-vswitchd.pid`], {
      encoding: 'utf8',
    }).stdout.trim();
    const appctl = (...args: string[]): string =>
      run('ovs-appctl', `--target=${runDir}/ovs-vswitchd.${pid}.ctl`, ...args);
    return [
      run('ip', 'neigh', 'show', 'dev', peerIf),
      run('ip', 'route', 'get', node),
      run('ip', '-n', netns, '-br', 'link'),
      run('ip', '-n', netns, '-br', 'addr'),
      run('ovs-ofctl', 'dump-flows', `unix:${runDir}/br-underlay.mgmt`),
      run('ovs-ofctl', 'dump-ports', `unix:${runDir}/br-underlay.mgmt`),
      appctl('fdb/show', 'br-underlay'),
      `start.sh: ${log()}`,
    ].join('\n');
  }

  // The node and its data-plane NIC: eth1 in the node's namespace, its peer on the underlay.
  beforeAll(() => {
    sh('ip', 'netns', 'add', netns);
    sh('ip', 'link', 'add', peerIf, 'type', 'veth', 'peer', 'name', 'eth1', 'netns', netns);
    sh('ip', 'addr', 'add', `${peer}/24`, 'dev', peerIf);
    sh('ip', 'link', 'set', peerIf, 'up');
    sh('ip', '-n', netns, 'addr', 'add', `${node}/24`, 'dev', 'eth1');
    sh('ip', '-n', netns, 'link', 'set', 'eth1', 'up');
    sh('ip', '-n', netns, 'link', 'set', 'lo', 'up');
  });

  afterEach(async () => {
    await stopScript();
    spawnSync('pkill', ['-f', runDir], { stdio: 'ignore' });
  }, 30_000);

  afterAll(() => {
    spawnSync('ip', ['link', 'del', peerIf], { stdio: 'ignore' });
    spawnSync('ip', ['netns', 'del', netns], { stdio: 'ignore' });
    rmSync(work, { recursive: true, force: true });
  });

  it('puts the NIC on br-underlay, moves its address there, records it; the underlay reaches it through OVS, also after a restart', async () => {
    const env = nodeEnv({ underlay: { device: 'eth1', address: 'interface', mtu: 1600 } });
    expect(env).toMatchObject({
      FLOWLINE_OVS_UNDERLAY_PORT: 'eth1',
      FLOWLINE_OVS_UNDERLAY_ADDRESS: 'interface',
      FLOWLINE_OVS_UNDERLAY_MTU: '1600',
    });
    for (const round of ['first start', 'restart']) {
      startScript(env);
      await until(`${round}: the underlay`, () => log().includes('underlay br-underlay ready'));
      expect(log()).toContain(`port eth1, address ${node}/24`);
      expect(vsctl('list-ports', 'br-underlay').trim()).toBe('eth1');
      expect(vsctl('get', 'bridge', 'br-underlay', 'datapath_type').trim()).toBe('netdev');
      expect(vsctl('get', 'interface', 'eth1', 'mtu_request').trim()).toBe('1600');
      expect(vsctl('get', 'Open_vSwitch', '.', 'external_ids:flowline-underlay-address')).toMatch(
        new RegExp(`^"?${node.replaceAll('.', '\\.')}/24"?\\s*$`),
      );
      expect(addressesOf('br-underlay')).toEqual([`${node}/24`]);
      expect(addressesOf('eth1')).toEqual([]);
      // The underlay network reaches the node's underlay address through br-underlay.
      sh('ip', 'neigh', 'flush', 'dev', peerIf);
      let reached = false;
      for (let i = 0; i < 10 && !reached; i++) reached = await resolvedThroughOvs();
      if (!reached)
        throw new Error(`${round}: ${node} not resolved through OVS\n${underlayState()}`);
      await stopScript();
    }
  }, 120_000);

  it('refuses a device that is not on the node, naming it, before anything starts', async () => {
    const p = startScript(nodeEnv({ underlay: { device: 'eth9', address: 'interface' } })).process;
    const code = await new Promise<number | null>((r) => p.once('exit', r));
    expect(code).toBe(1);
    expect(log()).toContain('FLOWLINE_OVS_UNDERLAY_PORT: no interface eth9 on this node');
    // nothing was started: no daemon holds the run dir
    expect(spawnSync('pgrep', ['-f', runDir]).status).toBe(1);
  }, 60_000);

  it('without a device the chart sets no underlay', () => {
    const env = nodeEnv({});
    expect(Object.keys(env).filter((k) => k.startsWith('FLOWLINE_OVS_UNDERLAY'))).toEqual([]);
  });
});
