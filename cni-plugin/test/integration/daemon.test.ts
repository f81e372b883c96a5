import { type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createConnection, createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CniDaemon, type ServedInvocation } from '../../src/daemon';
import { encodeRequest, decodeResponse } from '../../src/daemon-protocol';
import { IN_PROCESS, PLUGIN, runPlugin, runProcess } from '../support/exec';
import { startDaemon, stopDaemon, type DaemonProcess } from '../support/fixture';
import { waitFor } from '../support/wait';

// The native executable and the resident daemon, without OVS: how invocations get there, what
// the executable says when the daemon is gone or broken, and the daemon's own life cycle.
describe('native executable and resident daemon (integration)', () => {
  const base = `/tmp/flcni-daemon-${process.pid}`;
  const socket = `${base}/run/cni.sock`;
  const versionStdin = JSON.stringify({ cniVersion: '1.0.0' });
  let daemon: ChildProcess | undefined;
  let server: Server | undefined;

  beforeAll(() => {
    rmSync(base, { recursive: true, force: true });
    mkdirSync(base, { recursive: true });
    mkdirSync(`${base}/sys/bus/pci/devices/0000:03:02.0/physfn`, { recursive: true });
  });
  afterEach(async () => {
    if (daemon) await stopDaemon(daemon);
    daemon = undefined;
    await new Promise((r) => (server ? server.close(r) : r(undefined)));
    server = undefined;
    rmSync(socket, { force: true });
  });
  afterAll(() => rmSync(base, { recursive: true, force: true }));

  /**
   * An IPAM plugin that records its environment (each call's appended), then fails with code
   * 11; with `gate`, its ADD first waits until that file exists (the test opens the gate when it
   * is ready).
   */
  const recordingIpam = (name: string, gate?: string): { dir: string; record: string } => {
    const dir = join(base, `bin-${name}`);
    const record = join(base, `${name}.env`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, name),
      [
        '#!/bin/sh',
        `{ env; echo ---; } >> ${record}`,
        'if [ "$CNI_COMMAND" = VERSION ]; then echo \'{"cniVersion":"1.0.0","supportedVersions":["1.0.0"]}\'; exit 0; fi',
        gate ? `while [ ! -e ${gate} ]; do sleep 0.01; done` : '',
        'echo \'{"cniVersion":"1.0.0","code":11,"msg":"ipam says later"}\'; exit 1',
      ].join('\n') + '\n',
    );
    chmodSync(join(dir, name), 0o755);
    return { dir, record };
  };
  // A VF attachment (a sysfs stand-in): its ADD runs the IPAM plugin without OVS, which a
  // vhost-user ADD asks first whether the attachment exists.
  const addConf = (ipamType: string) => ({
    cniVersion: '1.0.0',
    name: 'daemon-test',
    type: 'flowline',
    bridge: 'br-none',
    socketDir: `${base}/sockets`,
    ovsdbSocket: `${base}/no-ovs.sock`,
    sysfsRoot: `${base}/sys`,
    runtimeConfig: { deviceID: '0000:03:02.0' },
    ipam: { type: ipamType },
  });
  const addEnv = (path: string) => ({
    CNI_COMMAND: 'ADD',
    CNI_CONTAINERID: 'daemontest1',
    CNI_NETNS: '/proc/self/ns/net',
    CNI_IFNAME: 'net1',
    CNI_PATH: path,
    FLOWLINE_CNI_SOCKET: socket,
  });

  it('serves on a socket only root can use, and answers exactly as the in-process plugin does', async () => {
    daemon = await startDaemon(socket);
    expect(statSync(socket).mode & 0o777).toBe(0o600);
    for (const [env, stdin] of [
      [{ CNI_COMMAND: 'VERSION' }, versionStdin],
      [{ CNI_COMMAND: 'ADD' }, versionStdin],
      [{ CNI_COMMAND: 'BOGUS' }, versionStdin],
      [{ CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'x', CNI_IFNAME: 'net1' }, '{not json'],
    ] as const) {
      const viaDaemon = await runPlugin({ ...env, FLOWLINE_CNI_SOCKET: socket }, stdin);
      const inProcess = await runPlugin(env, stdin, IN_PROCESS);
      expect({ code: viaDaemon.code, stdout: viaDaemon.stdout }).toEqual({
        code: inProcess.code,
        stdout: inProcess.stdout,
      });
      expect(viaDaemon.stdout).not.toBe('');
    }
  });

  it("hands the delegated IPAM plugin the caller's environment, not the daemon's", async () => {
    daemon = await startDaemon(socket);
    const { dir, record } = recordingIpam('ipam-env');
    const r = await runProcess(
      PLUGIN,
      [],
      { ...addEnv(dir), CALLER_MARK: 'from-runtime' },
      JSON.stringify(addConf('ipam-env')),
    );
    expect(r.code).toBe(1);
    expect(r.json).toMatchObject({ code: 11 });
    const seen = readFileSync(record, 'utf8');
    expect(seen).toContain('CALLER_MARK=from-runtime');
    expect(seen).toContain('CNI_COMMAND=ADD');
    // and, its ADD having failed, a DEL for whatever it may have reserved (the spec's rule)
    expect(seen).toMatch(/CNI_COMMAND=ADD[^]*CNI_COMMAND=DEL/);
    expect(seen).toContain(`CNI_PATH=${dir}`);
    // The daemon was started by this test process, whose environment has e.g. HOME; the
    // caller's (runProcess: PATH and the CNI_* only) has not.
    expect(process.env.HOME).toBeDefined();
    expect(seen).not.toMatch(/^HOME=/m);
  });

  it('a second daemon refuses a live socket; a SIGKILLed one leaves a socket that the executable and the next daemon get past', async () => {
    daemon = await startDaemon(socket);
    const second = await runProcess(IN_PROCESS, ['daemon', '--socket', socket], {});
    expect(second.code).toBe(1);
    expect(second.stderr).toContain(`another CNI daemon already listens on ${socket}`);

    daemon.kill('SIGKILL');
    await new Promise((r) => daemon?.once('exit', r));
    daemon = undefined;
    expect(existsSync(socket)).toBe(true); // stale: nothing listens
    const fallback = await runPlugin(
      { CNI_COMMAND: 'VERSION', FLOWLINE_CNI_SOCKET: socket },
      versionStdin,
    );
    expect(fallback.code).toBe(0);
    expect(fallback.json).toMatchObject({
      cniVersion: '1.0.0',
      supportedVersions: ['0.4.0', '1.0.0', '1.1.0'],
    });

    daemon = await startDaemon(socket);
    const served = await runPlugin(
      { CNI_COMMAND: 'VERSION', FLOWLINE_CNI_SOCKET: socket },
      versionStdin,
    );
    expect(served.stdout).toBe(fallback.stdout);
  });

  it('SIGTERM lets an invocation in flight finish and answer, then removes the socket', async () => {
    const d = await startDaemon(socket);
    daemon = d;
    const gate = join(base, 'ipam-slow.gate');
    const { dir, record } = recordingIpam('ipam-slow', gate);
    const running = runProcess(PLUGIN, [], addEnv(dir), JSON.stringify(addConf('ipam-slow')));
    // In flight: the daemon has started the IPAM plugin's ADD, which waits for the gate.
    await waitFor(
      () => existsSync(record) && readFileSync(record, 'utf8').includes('CNI_COMMAND=ADD'),
      'the IPAM ADD to start',
    );
    const exited = new Promise<number | null>((r) => d.once('exit', (code) => r(code)));
    d.kill('SIGTERM');
    await waitFor(() => d.log().includes('"msg":"signal"'), 'the daemon to take the SIGTERM');
    // It took the signal and still waits for the invocation: neither has ended.
    let answered = false;
    void running.then(() => (answered = true));
    await new Promise((r) => setImmediate(r));
    expect(d.exitCode).toBeNull();
    expect(answered).toBe(false);
    writeFileSync(gate, '');
    const r = await running;
    expect(await exited).toBe(0);
    daemon = undefined;
    // The plugin's own answer after the IPAM's (its code 11), not the executable's "closed
    // before answering".
    expect(r.json).toMatchObject({ cniVersion: '1.0.0', code: 11 });
    expect(String(r.json?.msg)).toContain('ipam says later');
    expect(existsSync(socket)).toBe(false);
  });

  it('a daemon that drops the connection or answers garbage gives the spec error JSON, in the config version', async () => {
    mkdirSync(join(base, 'run'), { recursive: true });
    const peer: { reply?: Buffer } = {};
    server = createServer((s) => {
      s.on('data', () => undefined);
      s.on('end', () => (peer.reply ? s.end(peer.reply) : s.destroy()));
    });
    await new Promise<void>((r) => server?.listen(socket, r));
    const env = { CNI_COMMAND: 'VERSION', FLOWLINE_CNI_SOCKET: socket };

    const dropped = await runPlugin(env, versionStdin);
    expect(dropped.code).toBe(1);
    expect(dropped.json).toMatchObject({ cniVersion: '1.0.0', code: 11 });
    expect(String(dropped.json?.msg)).toContain('closed the connection before answering');

    peer.reply = Buffer.from('HTTP/1.1 400 Bad Request\r\n\r\n');
    const garbage = await runPlugin(env, JSON.stringify({ cniVersion: '0.4.0' }));
    expect(garbage.code).toBe(1);
    expect(garbage.json).toMatchObject({ cniVersion: '0.4.0', code: 5 });
    expect(String(garbage.json?.msg)).toContain('unknown format');
  });

  it('FLOWLINE_CNI_NO_FALLBACK=1 (the health probe) succeeds only through a daemon that answers', async () => {
    const probe = {
      CNI_COMMAND: 'VERSION',
      FLOWLINE_CNI_SOCKET: socket,
      FLOWLINE_CNI_NO_FALLBACK: '1',
    };
    const down = await runProcess(PLUGIN, [], probe, '');
    expect(down.code).toBe(1);
    expect(down.json).toMatchObject({ code: 11 });
    expect(String(down.json?.msg)).toContain('not answering');
    daemon = await startDaemon(socket);
    const up = await runProcess(PLUGIN, [], probe, '');
    expect(up.code).toBe(0);
    expect(up.json).toMatchObject({ supportedVersions: ['0.4.0', '1.0.0', '1.1.0'] });
  });

  it('counts invocations by command and result, and times them, on its metrics port', async () => {
    const d: DaemonProcess = await startDaemon(socket, ['--metrics-port', '0']);
    daemon = d;
    const portOf = () => Number(/"msg":"metrics","port":(\d+)/.exec(d.log())?.[1] ?? 0);
    await waitFor(() => portOf() > 0, 'the daemon to log its metrics port');
    const port = portOf();
    const env = { FLOWLINE_CNI_SOCKET: socket };
    await runPlugin({ ...env, CNI_COMMAND: 'VERSION' }, versionStdin);
    await runPlugin({ ...env, CNI_COMMAND: 'VERSION' }, versionStdin);
    await runPlugin({ ...env, CNI_COMMAND: 'ADD' }, versionStdin); // no CNI_CONTAINERID: code 4
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(text).toMatch(/^flowline_cni_requests_total\{command="VERSION",result="ok"\} 2$/m);
    expect(text).toMatch(/^flowline_cni_requests_total\{command="ADD",result="4"\} 1$/m);
    expect(text).toMatch(/^flowline_cni_request_duration_seconds_count\{command="VERSION"\} 2$/m);
  });

  it('closes a connection whose request never completes', async () => {
    const quiet = await CniDaemon.listen({ socketPath: socket, requestTimeoutMs: 200 });
    try {
      const peer = createConnection(socket);
      const closed = new Promise<number>((resolve) => {
        const start = Date.now();
        peer.on('close', () => resolve(Date.now() - start));
      });
      peer.on('error', () => undefined);
      peer.write('FLC1'); // and nothing more
      expect(await closed).toBeLessThan(5000);
      // The daemon still serves the next caller.
      const r = await runPlugin(
        { CNI_COMMAND: 'VERSION', FLOWLINE_CNI_SOCKET: socket, FLOWLINE_CNI_NO_FALLBACK: '1' },
        versionStdin,
      );
      expect(r.code).toBe(0);
    } finally {
      await quiet.stop();
    }
  });

  it('decodes a request that arrives in many chunks once, parsing each byte once', async () => {
    const served: ServedInvocation[] = [];
    const d = await CniDaemon.listen({ socketPath: socket, observe: (s) => served.push(s) });
    try {
      // 2 MiB of config: the daemon reads a unix socket at most 64 KiB at a time.
      const stdin = JSON.stringify({ cniVersion: '1.0.0', pad: 'x'.repeat(2 << 20) });
      const wire = encodeRequest({ env: { CNI_COMMAND: 'VERSION' }, stdin });
      const peer = createConnection(socket);
      const reply: Buffer[] = [];
      peer.on('data', (b: Buffer) => reply.push(b));
      const closed = new Promise((r) => peer.on('close', r));
      peer.end(wire);
      await closed;
      expect(decodeResponse(Buffer.concat(reply))).toMatchObject({ exitCode: 0 });
      expect(served).toHaveLength(1);
      const { request } = served[0]!;
      expect(request.bytes).toBe(wire.length);
      expect(request.chunks).toBeGreaterThanOrEqual(wire.length / (64 << 10));
      // Linear: a decoder that went over the buffer again on every chunk parses far more.
      expect(request.parsedBytes).toBe(wire.length);
    } finally {
      await d.stop();
    }
  });

  it('with no daemon and no flowline-cni beside it, the executable says what to start (code 11)', async () => {
    const lonely = join(base, 'lonely');
    mkdirSync(lonely, { recursive: true });
    copyFileSync(PLUGIN, join(lonely, 'flowline'));
    chmodSync(join(lonely, 'flowline'), 0o755);
    const r = await runProcess(
      join(lonely, 'flowline'),
      [],
      { CNI_COMMAND: 'VERSION', FLOWLINE_CNI_SOCKET: socket },
      versionStdin,
    );
    expect(r.code).toBe(1);
    expect(r.json).toMatchObject({ cniVersion: '1.0.0', code: 11 });
    expect(String(r.json?.msg)).toContain('flowline CNI daemon is not running');
    expect(String(r.json?.details)).toContain(join(lonely, 'flowline-cni'));
  });
});
