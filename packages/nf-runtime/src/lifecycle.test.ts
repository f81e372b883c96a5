import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { issueCertificate, nfId } from '@flowline/grpc-auth';
import { describe, expect, it } from 'vitest';

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
