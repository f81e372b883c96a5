import { createHash } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, closeSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { leftoverFiles } from '@flowline/dpdk';
import { createLogger, type Logger } from '@flowline/telemetry';
import { OvsLifecycleError } from './errors';
import { OpenFlow } from './openflow';
import { OvsdbClient } from './ovsdb-client';
import type { OvsTls } from './remote';
import { run } from './run';
import { setUpUnderlay, type Underlay, type UnderlayOptions } from './underlay';
import { VSwitch } from './vswitch';

export const DEFAULT_BRIDGE = 'br-flowline';
export const OVS_VSWITCHD_DPDK = '/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk';
export const VSWITCH_SCHEMA = '/usr/share/openvswitch/vswitch.ovsschema';

export interface OvsDpdkOptions {
  /** Private run dir: conf.db, db.sock, pid files, logs and `<bridge>.mgmt` live here. */
  runDir: string;
  /** Network namespace ovs-vswitchd runs in (its netdev bridge port is a tap there). Created when
   *  missing and then removed by stop(). Default: `flowline-ovs-<basename(runDir)>`. */
  netns?: string;
  /** Bridge created with datapath_type=netdev; default br-flowline. */
  bridge?: string;
  /** other_config:dpdk-socket-mem in MiB; default 256. */
  socketMemMb?: number;
  /** other_config:pmd-cpu-mask; default 0x2 (one PMD thread on CPU 1). */
  pmdCpuMask?: string;
  /** other_config:pmd-maxsleep in µs; default 50 (an idle PMD uses ~25% of a core, not 100%). */
  pmdMaxSleepUs?: number;
  /**
   * other_config:per-port-memory; default false (OVS's shared mempools). A shared mempool is
   * made when its first port needs it (a vhost-user port: when its device comes up), asking for
   * 262,144 mbufs and halving on failure: within a 256 MiB socket limit the first two tries fail
   * (about 10 ms each, in netdev_dpdk's debug log), and a few-KiB allocation of another device's
   * handshake made meanwhile can fail as well ("failed to allocate memory for vq internal data",
   * once in a CI run). A port's own pool (20,512 mbufs at a 1,500-byte MTU, about 50 MiB) is
   * made at the first try, for a few ports.
   */
  perPortMemory?: boolean;
  /** Extra EAL arguments after `--no-pci --in-memory --file-prefix=...`. */
  dpdkExtra?: string[];
  /** EAL --file-prefix; default derived from the run dir. */
  filePrefix?: string;
  /** Each daemon is wrapped in `timeout` so it cannot outlive a crashed caller; 0 = no bound. */
  maxLifetimeSec?: number;
  vswitchdPath?: string;
  schemaPath?: string;
  startTimeoutMs?: number;
  /** Keep the run dir (logs, db) after stop(); default false. */
  keepRunDir?: boolean;
  /**
   * Also serve OVSDB and OpenFlow over TCP, as a node's OVS does for a chain controller
   * elsewhere (the chart's ptcp listeners on the node IP). `address` is this OVS's "node IP":
   * it goes on a veth inside the netns whose host end gets `hostAddress` (both /30), and
   * ovsdb-server then runs in the netns too, so both listen on that one address.
   */
  tcp?: {
    address: string;
    hostAddress: string;
    ovsdbPort?: number;
    openflowPort?: number;
    /** Listen with SSL (pssl:) instead: this OVS's key and certificate, and the peers' CA. */
    tls?: OvsTls;
  };
  /**
   * The node's underlay for tunnels to other nodes' switches (src/underlay.ts): set up once
   * ovs-vswitchd is ready, and again after restartVswitchd (its tap loses the address).
   */
  underlay?: UnderlayOptions;
  logger?: Logger;
}

export interface OvsDpdk {
  readonly runDir: string;
  /** ovsdb-server's unix socket: give it to OvsdbClient.connect or the CNI config's ovsdbSocket. */
  readonly dbSocket: string;
  readonly bridge: string;
  readonly netns: string;
  readonly filePrefix: string;
  readonly client: OvsdbClient;
  readonly vswitch: VSwitch;
  /** OpenFlow on the bridge, through `<runDir>/<bridge>.mgmt`. */
  readonly openflow: OpenFlow;
  /** With the tcp option: tcp: (or ssl:) ADDRESS:PORT of OVSDB and of the bridge's OpenFlow listener. */
  readonly ovsdbRemote?: string;
  readonly openflowRemote?: string;
  readonly vswitchdLog: string;
  /** With the underlay option: the underlay as set up. */
  readonly underlay?: Underlay;
  /** Restarts ovs-vswitchd only (OpenFlow flows are lost: push them again). */
  restartVswitchd(): Promise<void>;
  /** Stops both daemons, removes the netns it created, hugepage files and (by default) the run dir. */
  stop(): Promise<void>;
}

interface Daemon {
  name: string;
  child: ChildProcess;
  exited: Promise<number | null>;
}

function startDaemon(name: string, argv: string[], logFile: string, log: Logger): Daemon {
  const [command, ...args] = argv;
  if (!command) throw new OvsLifecycleError(`no command to start ${name}`);
  const out = openSync(logFile + '.stdio', 'a');
  const child = spawn(command, args, { detached: true, stdio: ['ignore', out, out] });
  closeSync(out);
  child.unref();
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );
  log.info('started', { daemon: name, pid: child.pid, argv });
  return { name, child, exited };
}

async function stopDaemon(d: Daemon, log: Logger): Promise<void> {
  const pid = d.child.pid;
  if (d.child.exitCode !== null || d.child.signalCode !== null || !pid) return;
  const kill = (sig: NodeJS.Signals): void => {
    try {
      process.kill(-pid, sig); // its process group: the timeout/ip wrappers and the daemon
    } catch {
      /* already gone */
    }
  };
  kill('SIGTERM');
  const done = await Promise.race([
    d.exited.then(() => true),
    new Promise((r) => setTimeout(() => r(false), 10_000)),
  ]);
  if (!done) {
    log.warn('did not stop on SIGTERM; killing', { daemon: d.name });
    kill('SIGKILL');
    await d.exited;
  }
}

async function tail(file: string, lines = 15): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

async function waitUntil(
  what: string,
  timeoutMs: number,
  check: () => Promise<boolean>,
  logFile: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      /* not yet */
    }
    if (Date.now() > deadline)
      throw new OvsLifecycleError(
        `${what} within ${timeoutMs} ms; last lines of ${logFile}:\n${await tail(logFile)}`,
        {
          logFile,
        },
      );
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function netnsExists(name: string): Promise<boolean> {
  return existsSync(join('/run/netns', name));
}

/**
 * Starts a private OVS-DPDK: ovsdb-server on a unix socket in `runDir` with a fresh database,
 * then ovs-vswitchd-dpdk inside its own network namespace with dpdk-init=true, `--no-pci` in
 * dpdk-extra, a bounded socket-mem, one PMD core and a PMD idle sleep, and the netdev bridge.
 * Resolves when DPDK is initialised and the bridge answers OpenFlow. Always call stop().
 */
export async function startOvsDpdk(options: OvsDpdkOptions): Promise<OvsDpdk> {
  const log = options.logger ?? createLogger('ovs-dpdk');
  const runDir = options.runDir;
  const bridge = options.bridge ?? DEFAULT_BRIDGE;
  const netns = options.netns ?? `flowline-ovs-${basename(runDir)}`.slice(0, 60);
  const filePrefix =
    options.filePrefix ?? `flovs${basename(runDir).replace(/[^A-Za-z0-9]/g, '')}`.slice(0, 40);
  const vswitchdPath = options.vswitchdPath ?? OVS_VSWITCHD_DPDK;
  const schema = options.schemaPath ?? VSWITCH_SCHEMA;
  const timeoutMs = options.startTimeoutMs ?? 60_000;
  const lifetime = options.maxLifetimeSec ?? 0;
  const bounded = (argv: string[]): string[] =>
    lifetime > 0 ? ['timeout', '-s', 'TERM', String(lifetime), ...argv] : argv;
  const dbSocket = join(runDir, 'db.sock');
  const dbFile = join(runDir, 'conf.db');
  const dbLog = join(runDir, 'ovsdb-server.log');
  const vswitchdLog = join(runDir, 'ovs-vswitchd.log');

  for (const [path, fix] of [
    [vswitchdPath, 'apt-get install openvswitch-switch-dpdk (tools/setup/setup.sh does)'],
    [schema, 'apt-get install openvswitch-common'],
  ] as const)
    if (!existsSync(path)) throw new OvsLifecycleError(`${path} not found: ${fix}`, { path });

  await rm(runDir, { recursive: true, force: true });
  await mkdir(runDir, { recursive: true });
  await run('ovsdb-tool', ['create', dbFile, schema], { what: 'creating the OVS database' });

  // Interface names are at most 15 bytes: a hash of the netns keeps them unique.
  const vethStem = `flv${createHash('sha1').update(netns).digest('hex').slice(0, 8)}`;
  const tcp = options.tcp
    ? {
        ...options.tcp,
        ovsdbPort: options.tcp.ovsdbPort ?? 6640,
        openflowPort: options.tcp.openflowPort ?? 6653,
        hostIf: `${vethStem}h`,
        nodeIf: `${vethStem}n`,
      }
    : undefined;
  let createdNetns = false;
  let dbServer: Daemon | undefined;
  let vswitchd: Daemon | undefined;
  let client: OvsdbClient | undefined;
  let underlay: Underlay | undefined;

  // What ovs-vswitchd's EAL leaves once it has exited: its hugepage files and its runtime
  // directory (which DPDK does not remove), by @flowline/dpdk's rule for their names.
  const removeEalLeftovers = async (): Promise<void> => {
    await Promise.all(
      leftoverFiles(filePrefix).map((f) => rm(f, { recursive: true, force: true })),
    );
  };

  const stopAll = async (): Promise<void> => {
    client?.close();
    if (vswitchd) await stopDaemon(vswitchd, log);
    if (dbServer) await stopDaemon(dbServer, log);
    if (tcp) await run('ip', ['link', 'del', tcp.hostIf]).catch(() => undefined);
    if (createdNetns)
      await run('ip', ['netns', 'del', netns]).catch((err) =>
        log.warn('netns del failed', { err }),
      );
    await removeEalLeftovers();
    if (!options.keepRunDir) await rm(runDir, { recursive: true, force: true });
    log.info('stopped', { runDir });
  };

  const vswitchdArgv = (): string[] =>
    bounded([
      'ip',
      'netns',
      'exec',
      netns,
      'env',
      `OVS_RUNDIR=${runDir}`,
      vswitchdPath,
      `unix:${dbSocket}`,
      `--pidfile=${join(runDir, 'ovs-vswitchd.pid')}`,
      `--unixctl=${join(runDir, 'ovs-vswitchd.ctl')}`,
      `--log-file=${vswitchdLog}`,
      '-vconsole:off',
      '-vfile:info',
    ]);

  const mgmt = join(runDir, `${bridge}.mgmt`);
  const vs = (): VSwitch => {
    if (!client) throw new OvsLifecycleError('not connected to ovsdb-server yet', { dbSocket });
    return new VSwitch(client);
  };
  const waitReady = async (): Promise<void> => {
    await waitUntil(
      'ovs-vswitchd did not initialise DPDK and the bridge',
      timeoutMs,
      async () => {
        const root = await vs().getOpenVSwitch();
        return root.dpdkInitialized && root.curCfg >= root.nextCfg && existsSync(mgmt);
      },
      vswitchdLog,
    );
  };

  try {
    if (!(await netnsExists(netns))) {
      await run('ip', ['netns', 'add', netns], { what: `creating netns ${netns}` });
      createdNetns = true;
    }
    if (tcp) {
      const ipn = (...args: string[]): Promise<string> =>
        run('ip', ['-n', netns, ...args], { what: `setting up ${tcp.nodeIf} in ${netns}` });
      await run('ip', ['link', 'del', tcp.hostIf]).catch(() => undefined);
      await run('ip', ['link', 'add', tcp.hostIf, 'type', 'veth', 'peer', 'name', tcp.nodeIf], {
        what: `creating veth ${tcp.hostIf}`,
      });
      await run('ip', ['link', 'set', tcp.nodeIf, 'netns', netns], { what: 'moving the veth' });
      await run('ip', ['addr', 'add', `${tcp.hostAddress}/30`, 'dev', tcp.hostIf], {
        what: `addressing ${tcp.hostIf}`,
      });
      await run('ip', ['link', 'set', tcp.hostIf, 'up'], { what: `raising ${tcp.hostIf}` });
      await ipn('addr', 'add', `${tcp.address}/30`, 'dev', tcp.nodeIf);
      await ipn('link', 'set', tcp.nodeIf, 'up');
      await ipn('link', 'set', 'lo', 'up');
    }
    dbServer = startDaemon(
      'ovsdb-server',
      bounded([
        ...(tcp ? ['ip', 'netns', 'exec', netns] : []),
        'ovsdb-server',
        dbFile,
        `--remote=punix:${dbSocket}`,
        ...(tcp && !tcp.tls ? [`--remote=ptcp:${tcp.ovsdbPort}:${tcp.address}`] : []),
        ...(tcp?.tls
          ? [
              `--remote=pssl:${tcp.ovsdbPort}:${tcp.address}`,
              `--private-key=${tcp.tls.privateKey}`,
              `--certificate=${tcp.tls.certificate}`,
              `--ca-cert=${tcp.tls.caCert}`,
            ]
          : []),
        `--pidfile=${join(runDir, 'ovsdb-server.pid')}`,
        `--unixctl=${join(runDir, 'ovsdb-server.ctl')}`,
        `--log-file=${dbLog}`,
        '-vconsole:off',
      ]),
      dbLog,
      log,
    );
    await waitUntil(
      'ovsdb-server did not open its socket',
      15_000,
      async () => existsSync(dbSocket),
      dbLog,
    );
    client = await OvsdbClient.connect({ socketPath: dbSocket, logger: log });
    const eal = [
      '--no-pci',
      '--in-memory',
      `--file-prefix=${filePrefix}`,
      ...(options.dpdkExtra ?? []),
    ];
    await vs().initialize({
      'dpdk-init': 'true',
      'dpdk-extra': eal.join(' '),
      'dpdk-socket-mem': String(options.socketMemMb ?? 256),
      'dpdk-socket-limit': String(options.socketMemMb ?? 256),
      'pmd-cpu-mask': options.pmdCpuMask ?? '0x2',
      'pmd-maxsleep': String(options.pmdMaxSleepUs ?? 50),
      ...(options.perPortMemory ? { 'per-port-memory': 'true' } : {}),
    });
    await vs().addBridge(bridge, { datapathType: 'netdev', failMode: 'secure' });
    if (tcp) {
      const vsctl = (what: string, ...args: string[]): Promise<string> =>
        run('ovs-vsctl', [`--db=unix:${dbSocket}`, '--no-wait', ...args], { what });
      // ovs-vswitchd takes its SSL key, certificate and CA from the database's SSL table.
      if (tcp.tls)
        await vsctl(
          'setting the SSL files',
          'set-ssl',
          tcp.tls.privateKey,
          tcp.tls.certificate,
          tcp.tls.caCert,
        );
      // A passive (service) listener: it does not make the bridge depend on a controller.
      await vsctl(
        'adding the OpenFlow listener',
        'set-controller',
        bridge,
        `${tcp.tls ? 'pssl' : 'ptcp'}:${tcp.openflowPort}:${tcp.address}`,
      );
    }
    await vs().bumpConfig();

    vswitchd = startDaemon('ovs-vswitchd', vswitchdArgv(), vswitchdLog, log);
    await waitReady();
    if (options.underlay)
      underlay = await setUpUnderlay({ vswitch: vs(), bridge, runDir, netns }, options.underlay);
  } catch (err) {
    await stopAll().catch(() => undefined);
    throw err;
  }

  let stopped = false;
  const openflow = new OpenFlow({ bridge, runDir });
  return {
    runDir,
    dbSocket,
    bridge,
    netns,
    filePrefix,
    client,
    vswitch: vs(),
    openflow,
    ...(tcp
      ? {
          ovsdbRemote: `${tcp.tls ? 'ssl' : 'tcp'}:${tcp.address}:${tcp.ovsdbPort}`,
          openflowRemote: `${tcp.tls ? 'ssl' : 'tcp'}:${tcp.address}:${tcp.openflowPort}`,
        }
      : {}),
    vswitchdLog,
    ...(underlay ? { underlay } : {}),
    async restartVswitchd() {
      if (vswitchd) await stopDaemon(vswitchd, log);
      await removeEalLeftovers();
      await vs().bumpConfig();
      vswitchd = startDaemon('ovs-vswitchd', vswitchdArgv(), vswitchdLog, log);
      await waitReady();
      if (options.underlay)
        await setUpUnderlay({ vswitch: vs(), bridge, runDir, netns }, options.underlay);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      openflow.close();
      await stopAll();
    },
  };
}
