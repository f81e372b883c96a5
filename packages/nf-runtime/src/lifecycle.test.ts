import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { type AddressInfo, type Server, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { issueCertificate, nfId } from '@flowline/grpc-auth';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { CountingDataplane } from '../test/fixtures/counting-dataplane';
import {
  type NetworkFunctionDefinition,
  type RunningDataplane,
  type StartContext,
  runNetworkFunction,
} from './index';

const fixture = join(__dirname, '..', 'test', 'fixtures', 'signal-nf.ts');
const tsx = join(__dirname, '..', '..', '..', 'node_modules', 'tsx', 'dist', 'cli.mjs');

function runFixture(args: string[], env: NodeJS.ProcessEnv = {}) {
  const child = spawn(process.execPath, [tsx, fixture, ...args], {
    env: { ...process.env, FLOWLINE_METRICS_PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, exited, out: () => stdout, err: () => stderr };
}

async function until(cond: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('NF process lifecycle', () => {
  it('SIGTERM stops traffic, drains, releases, and exits 0', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'flowline-life-'));
    const tls = issueCertificate(join(dir, 'pki'), 'sig-0', nfId('default', 'sig-0'));
    const run = runFixture([
      '--grpc-address',
      `unix://${join(dir, 'nf.sock')}`,
      '--name',
      'sig-0',
      '--tls-ca',
      tls.caFile,
      '--tls-cert',
      tls.certFile,
      '--tls-key',
      tls.keyFile,
    ]);
    try {
      await until(() => run.err().includes('"msg":"serving"'), 20_000);
      expect(run.err()).toContain('"security":"mutual TLS"');
      run.child.kill('SIGTERM');
      expect(await run.exited).toBe(0);
      expect(run.out().trim().split('\n')).toEqual(['started', 'stopTraffic', 'drain', 'close']);
      const logs = run
        .err()
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(logs).toContainEqual(
        expect.objectContaining({
          msg: 'stopped',
          reason: 'SIGTERM',
          nf: 'sig-0',
          component: 'signal-test',
        }),
      );
    } finally {
      run.child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('without TLS settings or --insecure it exits 2 naming tls, before starting anything', async () => {
    const run = runFixture(['--name', 'plain-0']);
    expect(await run.exited).toBe(2);
    expect(run.err()).toMatch(/tls.*--tls-ca.*or insecure: true/);
    expect(run.out()).not.toContain('started');
  });

  it('--insecure serves in plaintext and warns at start', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'flowline-life-'));
    const run = runFixture([
      '--grpc-address',
      `unix://${join(dir, 'nf.sock')}`,
      '--name',
      'plain-1',
      '--insecure',
    ]);
    try {
      await until(() => run.err().includes('"msg":"serving"'), 20_000);
      expect(run.err()).toMatch(/"level":"warn".*gRPC listener without TLS/);
      run.child.kill('SIGTERM');
      expect(await run.exited).toBe(0);
    } finally {
      run.child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a bad config exits 2 with one line naming the field, before starting anything', async () => {
    const run = runFixture(['--memory-mb', 'many']);
    expect(await run.exited).toBe(2);
    expect(run.err()).toMatch(/eal\.memoryMb \(from --memory-mb\): \\"many\\" is not an integer/);
    expect(run.out()).not.toContain('started');
  });
});

// In this process (no DPDK: a counting dataplane), to see what stop and a failed start release.
describe('runNetworkFunction releases what it started', () => {
  const listen = (server: Server, port: number): Promise<number> =>
    new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
    });
  const close = (server: Server): Promise<void> => new Promise((r) => server.close(() => r()));
  const blockers: Server[] = [];
  afterEach(async () => {
    vi.restoreAllMocks();
    await Promise.all(blockers.splice(0).map(close));
  });

  async function freePort(): Promise<number> {
    const s = createServer();
    const port = await listen(s, 0);
    await close(s);
    return port;
  }

  /** Whether 127.0.0.1:port can be bound again (a listener closes its socket a moment later). */
  async function released(port: number): Promise<boolean> {
    for (let i = 0; i < 20; i++) {
      const s = createServer();
      try {
        await listen(s, port);
        await close(s);
        return true;
      } catch {
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    return false;
  }

  /** The JSON lines the runtime logs to stderr from now until the test ends. */
  function captureLogs(): Record<string, unknown>[] {
    const logs: Record<string, unknown>[] = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      for (const line of String(chunk).split('\n').filter(Boolean)) {
        try {
          logs.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          // not one of ours
        }
      }
      return true;
    });
    return logs;
  }

  const definition = (
    dataplane: Omit<RunningDataplane, 'dataplane'>,
    onStart: (ctx: StartContext<unknown>) => void = () => undefined,
  ): NetworkFunctionDefinition<unknown> => ({
    kind: 'stop-test',
    version: '0.0.1',
    nfSchema: z.object({}),
    start: async (ctx) => {
      onStart(ctx);
      return { dataplane: new CountingDataplane(), ...dataplane };
    },
  });
  const run = (def: NetworkFunctionDefinition<unknown>, argv: string[]) =>
    runNetworkFunction(def, {
      argv: ['--insecure', '--name', 'stop-0', ...argv],
      env: { FLOWLINE_METRICS_PORT: 'off' },
      handleSignals: false,
    });

  it('a failing stop step does not keep the later ones from running, and stop rejects with the first error', async () => {
    const apiPort = await freePort();
    const steps: string[] = [];
    let telemetryShutdown: (() => Promise<void>) | undefined;
    const logs = captureLogs();
    const handle = await run(
      definition(
        {
          stopTraffic: async () => {
            steps.push('stopTraffic');
            throw new Error('workers did not stop');
          },
          drain: async () => void steps.push('drain'),
          close: async () => {
            steps.push('close');
            throw new Error('EAL cleanup failed');
          },
        },
        (ctx) => {
          telemetryShutdown = vi.spyOn(ctx.telemetry, 'shutdown');
        },
      ),
      ['--grpc-address', `127.0.0.1:${apiPort}`],
    );

    await expect(handle.stop('test')).rejects.toThrow('workers did not stop');

    expect(steps).toEqual(['stopTraffic', 'drain', 'close']);
    expect(await released(apiPort)).toBe(true);
    expect(telemetryShutdown).toHaveBeenCalledOnce();
    for (const [step, message] of [
      ['stopTraffic', 'workers did not stop'],
      ['close', 'EAL cleanup failed'],
    ])
      expect(logs).toContainEqual(
        expect.objectContaining({
          level: 'error',
          component: 'stop-test',
          nf: 'stop-0',
          msg: 'stop step failed',
          reason: 'test',
          step,
          err: expect.objectContaining({ message }),
        }),
      );
    expect(logs).toContainEqual(
      expect.objectContaining({ msg: 'stopped with errors', failed: ['stopTraffic', 'close'] }),
    );
    // Stopping again gives the same answer and runs nothing twice.
    await expect(handle.stop('again')).rejects.toThrow('workers did not stop');
    expect(steps).toHaveLength(3);
  });

  it('a start that fails after the API listener is bound releases it, then the dataplane', async () => {
    const blocker = createServer();
    blockers.push(blocker);
    const healthPort = await listen(blocker, 0);
    const apiPort = await freePort();
    const closed = vi.fn();
    const logs = captureLogs();
    const noop = async (): Promise<void> => undefined;
    await expect(
      run(definition({ stopTraffic: noop, drain: noop, close: async () => closed() }), [
        '--grpc-address',
        `127.0.0.1:${apiPort}`,
        '--health-address',
        `127.0.0.1:${healthPort}`,
      ]),
    ).rejects.toThrow();
    expect(closed).toHaveBeenCalledOnce();
    expect(await released(apiPort)).toBe(true);
    expect(logs).toContainEqual(
      expect.objectContaining({ level: 'error', msg: 'start failed', component: 'stop-test' }),
    );
  });
});
