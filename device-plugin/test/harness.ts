// Runs the real daemon (the built dist/cli.js, as a separate node process) against a generated
// sysfs tree and a KubeletPeer in a temp plugin directory, and cleans all of it up.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmulatedHost, type EmulatedHostSpec, KubeletPeer } from '@flowline/emulation';

export const CLI = join(__dirname, '..', 'dist', 'cli.js');

export interface LogLine {
  level: string;
  msg: string;
  [key: string]: unknown;
}

export class DaemonProcess {
  readonly logs: LogLine[] = [];
  exitCode: number | null | undefined;
  private readonly exited: Promise<void>;

  constructor(readonly child: ChildProcess) {
    let buffer = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      buffer += chunk;
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        try {
          this.logs.push(JSON.parse(line) as LogLine);
        } catch {
          this.logs.push({ level: 'raw', msg: line });
        }
      }
    });
    this.exited = new Promise((resolve) =>
      child.on('exit', (code) => {
        this.exitCode = code;
        resolve();
      }),
    );
  }

  log(msg: string): LogLine | undefined {
    return this.logs.find((l) => l.msg === msg);
  }

  /** SIGTERM, then wait (SIGKILL after 5 s so a test never leaks a process). */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null | undefined> {
    if (this.exitCode === undefined) {
      this.child.kill(signal);
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
      await this.exited;
      clearTimeout(timer);
    }
    return this.exitCode;
  }

  async waitExit(timeoutMs = 5000): Promise<number | null> {
    await waitFor('daemon exit', () => this.exitCode !== undefined, timeoutMs);
    return this.exitCode ?? null;
  }
}

export interface Env {
  dir: string;
  sysRoot: string;
  pluginDir: string;
  devInfoDir: string;
  cdiDir: string;
  configPath: string;
  host: EmulatedHost;
  kubelet: KubeletPeer;
  daemons: DaemonProcess[];
  writeConfig(config: unknown): void;
  startDaemon(extraArgs?: string[]): DaemonProcess;
  cleanup(): Promise<void>;
}

export async function makeEnv(spec: Omit<EmulatedHostSpec, 'root'>, config: unknown): Promise<Env> {
  const dir = mkdtempSync(join(tmpdir(), 'fl-dp-'));
  const sysRoot = join(dir, 'sys');
  const env: Env = {
    dir,
    sysRoot,
    pluginDir: join(dir, 'device-plugins'),
    devInfoDir: join(dir, 'devinfo'),
    cdiDir: join(dir, 'cdi'),
    configPath: join(dir, 'config', 'pools.json'),
    host: EmulatedHost.create({ ...spec, root: sysRoot }),
    kubelet: undefined as unknown as KubeletPeer,
    daemons: [],
    writeConfig(c: unknown) {
      // Write then rename, as ConfigMap updates and editors do: the daemon never reads half a file.
      const tmp = `${this.configPath}.tmp`;
      writeFileSync(tmp, typeof c === 'string' ? c : JSON.stringify(c, null, 2));
      renameSync(tmp, this.configPath);
    },
    startDaemon(extraArgs: string[] = []) {
      const child = spawn(
        process.execPath,
        [
          CLI,
          'serve',
          '--config',
          this.configPath,
          '--plugin-dir',
          this.pluginDir,
          '--sysfs-root',
          this.sysRoot,
          '--devinfo-dir',
          this.devInfoDir,
          '--cdi-dir',
          this.cdiDir,
          '--vfio-dir',
          join(this.dir, 'dev-vfio'),
          '--rescan-ms',
          '200',
          '--probe-ms',
          '1000',
          '--metrics-port',
          '0',
          ...extraArgs,
        ],
        {
          stdio: ['ignore', 'ignore', 'pipe'],
          env: { ...process.env, FLOWLINE_LOG_LEVEL: 'debug', OTEL_EXPORTER_OTLP_ENDPOINT: '' },
        },
      );
      const d = new DaemonProcess(child);
      this.daemons.push(d);
      return d;
    },
    async cleanup() {
      for (const d of this.daemons) await d.stop('SIGKILL').catch(() => undefined);
      await this.kubelet.stop().catch(() => undefined);
      this.host.destroy();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  mkdirSync(join(dir, 'config'), { recursive: true });
  mkdirSync(env.pluginDir, { recursive: true });
  env.writeConfig(config);
  env.kubelet = new KubeletPeer(env.pluginDir);
  await env.kubelet.start();
  return env;
}

export { existsSync };

/** Polls until `check` returns a value that is not undefined/false, or fails naming `what`. */
export async function waitFor<T>(
  what: string,
  check: () => T | undefined | false,
  timeoutMs = 5000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
