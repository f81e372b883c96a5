import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { find, render, type Values } from '../src/helm';
import { OVS_SCRIPT } from '../src/ovs-script';
import { envOf, podOf } from '../src/security';

/**
 * The OVS container's start script (docker/ovs-dpdk/start.sh) with the rendered DaemonSet's
 * environment, OVS's programs replaced by stubs that only record their arguments: what it asks
 * of OVS, in what order, without starting OVS (test/integration runs the real thing as root).
 */
const STUBS = ['ovsdb-tool', 'ovsdb-server', 'ovs-vswitchd', 'ovs-vsctl', 'ovs-appctl', 'ip'];

describe('ovs-dpdk start.sh against stubbed OVS tools', () => {
  const work = mkdtempSync(join(tmpdir(), 'flowline-ovs-start-'));
  const bin = join(work, 'bin');
  const runDir = join(work, 'run');
  const tlsDir = join(work, 'tls');
  let db: Server | undefined;

  beforeAll(async () => {
    mkdirSync(bin);
    mkdirSync(runDir);
    mkdirSync(tlsDir);
    for (const f of ['tls.key', 'tls.crt', 'ca.crt']) writeFileSync(join(tlsDir, f), 'x');
    // One line per call, written at once (the daemons' stubs run in the background):
    // the program's name and its arguments, tab-separated.
    for (const name of STUBS) {
      writeFileSync(
        join(bin, name),
        '#!/bin/sh\nline=$(basename "$0")\nfor a; do line="$line\t$a"; done\nprintf \'%s\\n\' "$line" >>"$STUB_CALLS"\n',
      );
      chmodSync(join(bin, name), 0o755);
    }
    // start.sh waits (up to 5 s) for ovsdb-server's socket: it is there from the start.
    db = createServer();
    await new Promise<void>((r) => db!.listen(join(runDir, 'db.sock'), r));
  });

  afterAll(async () => {
    await new Promise((r) => (db ? db.close(r) : r(undefined)));
    rmSync(work, { recursive: true, force: true });
  });

  let runs = 0;
  /** The DaemonSet's environment for `values`, as kubelet gives it on a node of IP `nodeIp`. */
  function daemonSetEnv(values: Values, nodeIp: string): Record<string, string> {
    const ms = render('flowline', values);
    const ds = ms.find((m) => m.kind === 'DaemonSet' && m.metadata.name.startsWith('test-ovs'))!;
    const c = podOf(find(ms, 'DaemonSet', ds.metadata.name)).spec.containers[0]!;
    const env: Record<string, string> = { NODE_IP: nodeIp };
    for (const [k, v] of Object.entries(envOf(c))) env[k] = v.replaceAll('$(NODE_IP)', nodeIp);
    return env;
  }

  /** Runs start.sh with `env` (paths moved into the work folder); the calls it made. */
  function run(env: Record<string, string>) {
    const calls = join(work, `calls-${runs++}`);
    writeFileSync(calls, '');
    const r = spawnSync('bash', [OVS_SCRIPT], {
      env: {
        ...env,
        // The stubs first; no sbin folder, where the real daemons live.
        PATH: `${bin}:/usr/bin:/bin`,
        STUB_CALLS: calls,
        FLOWLINE_OVS_RUN_DIR: runDir,
        FLOWLINE_OVS_DB_DIR: join(work, 'db'),
        FLOWLINE_OVS_LOG_DIR: join(work, 'log'),
        FLOWLINE_OVS_CPUS: '0-1',
        ...(env.FLOWLINE_OVS_TLS_DIR ? { FLOWLINE_OVS_TLS_DIR: tlsDir } : {}),
      },
      encoding: 'utf8',
      timeout: 20_000,
    });
    const lines = readFileSync(calls, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split('\t'));
    const index = (...prefix: string[]): number =>
      lines.findIndex((l) => prefix.every((p, i) => l[i] === p));
    return { status: r.status, stderr: r.stderr, lines, index };
  }

  const nodes = { ovs: { nodes: ['node-a'] } };

  it('without the chain controller opens no listener and removes those conf.db kept, before either daemon reads them', () => {
    const env = daemonSetEnv({ ...nodes, chainController: { enabled: false } }, '10.0.0.5');
    expect(env.FLOWLINE_OVSDB_REMOTE).toBe('');
    expect(env.FLOWLINE_OPENFLOW_LISTEN).toBe('');
    const r = run(env);
    expect(r.status, r.stderr).toBe(0);
    const delManager = r.index('ovs-vsctl', '--no-wait', 'del-manager');
    const delController = r.index('ovs-vsctl', '--no-wait', 'del-controller', 'br-flowline');
    expect(delManager, JSON.stringify(r.lines)).toBeGreaterThanOrEqual(0);
    expect(delController, JSON.stringify(r.lines)).toBeGreaterThanOrEqual(0);
    for (const l of r.lines)
      expect(l.includes('set-manager') || l.includes('set-controller'), l.join(' ')).toBe(false);
    // ovsdb-server reads manager_options only once the managers are the asked-for ones (none),
    // and ovs-vswitchd starts after the bridge's controllers are gone.
    const server = r.lines[r.index('ovsdb-server')]!;
    expect(server).toContain(`--remote=punix:${runDir}/db.sock`);
    expect(server.some((a) => a.includes('manager_options'))).toBe(false);
    const addRemote = r.index(
      'ovs-appctl',
      '-t',
      `${runDir}/ovsdb-server.ctl`,
      'ovsdb-server/add-remote',
      'db:Open_vSwitch,Open_vSwitch,manager_options',
    );
    expect(addRemote).toBeGreaterThan(Math.max(delManager, delController));
    const vswitchd = r.index('ovs-vswitchd');
    expect(vswitchd).toBeGreaterThan(Math.max(delManager, delController));
    expect(r.stderr).toContain('listeners: OVSDB none, OpenFlow none');
  });

  it('with the chain controller sets SSL listeners on the node IP (replacing any kept), before ovs-vswitchd starts', () => {
    const env = daemonSetEnv(nodes, '10.0.0.5');
    const r = run(env);
    expect(r.status, r.stderr).toBe(0);
    const setManager = r.index('ovs-vsctl', '--no-wait', 'set-manager', 'pssl:6640:10.0.0.5');
    const setController = r.index(
      'ovs-vsctl',
      '--no-wait',
      'set-controller',
      'br-flowline',
      'pssl:6653:10.0.0.5',
    );
    expect(setManager, JSON.stringify(r.lines)).toBeGreaterThanOrEqual(0);
    expect(setController, JSON.stringify(r.lines)).toBeGreaterThanOrEqual(0);
    expect(r.index('ovs-vsctl', '--no-wait', 'del-manager')).toBe(-1);
    expect(r.index('ovs-vsctl', '--no-wait', 'del-controller', 'br-flowline')).toBe(-1);
    expect(r.index('ovs-vswitchd')).toBeGreaterThan(Math.max(setManager, setController));
    expect(r.index('ovs-vsctl', '--no-wait', 'set-ssl')).toBeGreaterThanOrEqual(0);
  });

  it('brackets an IPv6 node IP in both listener targets (ovsdb(7))', () => {
    for (const values of [nodes, { ovs: { remote: { tls: { enabled: false } } } }]) {
      const env = daemonSetEnv(values, 'fd00:10::5');
      const scheme = env.FLOWLINE_OVS_TLS_DIR ? 'pssl' : 'ptcp';
      expect(env.FLOWLINE_OVSDB_REMOTE).toBe(`${scheme}:6640:fd00:10::5`);
      const r = run(env);
      expect(r.status, r.stderr).toBe(0);
      expect(
        r.index('ovs-vsctl', '--no-wait', 'set-manager', `${scheme}:6640:[fd00:10::5]`),
        JSON.stringify(r.lines),
      ).toBeGreaterThanOrEqual(0);
      expect(
        r.index(
          'ovs-vsctl',
          '--no-wait',
          'set-controller',
          'br-flowline',
          `${scheme}:6653:[fd00:10::5]`,
        ),
        JSON.stringify(r.lines),
      ).toBeGreaterThanOrEqual(0);
    }
  });

  it('gives both daemons the console log level of ovs.logLevel, and refuses one OVS does not know', () => {
    for (const [level, vlog] of [
      ['debug', 'dbg'],
      ['info', 'info'],
      ['warn', 'warn'],
      ['error', 'err'],
    ] as const) {
      const env = daemonSetEnv({ ...nodes, ovs: { ...nodes.ovs, logLevel: level } }, '10.0.0.5');
      expect(env.FLOWLINE_LOG_LEVEL).toBe(level);
      const r = run(env);
      expect(r.status, r.stderr).toBe(0);
      for (const daemon of ['ovsdb-server', 'ovs-vswitchd']) {
        const args = r.lines[r.index(daemon)]!;
        expect(
          args.filter((a) => a.startsWith('-vconsole:')),
          `${level}: ${daemon}`,
        ).toEqual([`-vconsole:${vlog}`]);
      }
    }
    const bad = run({ ...daemonSetEnv(nodes, '10.0.0.5'), FLOWLINE_LOG_LEVEL: 'verbose' });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain('FLOWLINE_LOG_LEVEL "verbose" is not debug, info, warn or error');
    expect(bad.lines).toEqual([]);
  });
});
