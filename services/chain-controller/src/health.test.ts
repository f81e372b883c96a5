import { mkdtempSync, rmSync } from 'node:fs';
import { Socket, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestPki, startNfHealth } from '../test/support/pki';
import { grpcHealthWatch } from './health';

/**
 * The health watch against an NF reached through a TCP relay that can go silent: bytes stop
 * flowing both ways and nothing is closed, as when the NF's node drops off the network. The
 * watch must say unreachable within a second, not after TCP's minutes.
 */
describe('grpcHealthWatch', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flowline-health-'));
  const pki = new TestPki(dir);
  let nf: Awaited<ReturnType<typeof startNfHealth>>;
  let silent = false;
  const sockets: Socket[] = [];
  const relay = createServer((inbound) => {
    sockets.push(inbound);
    const [host, port] = nf.address.split(':') as [string, string];
    const outbound = new Socket();
    sockets.push(outbound);
    outbound.connect(Number(port), host);
    inbound.on('data', (d) => silent || outbound.write(d));
    outbound.on('data', (d) => silent || inbound.write(d));
    for (const s of [inbound, outbound]) s.on('error', () => undefined);
  });
  let relayAddress = '';

  beforeAll(async () => {
    nf = await startNfHealth('127.0.0.1:0', pki.nf('default', 'fw'));
    await new Promise<void>((r) => relay.listen(0, '127.0.0.1', () => r()));
    relayAddress = `127.0.0.1:${(relay.address() as { port: number }).port}`;
  });

  afterAll(() => {
    for (const s of sockets) s.destroy();
    relay.close();
    nf.server.forceShutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reports an NF whose network goes silent as unreachable within a second', async () => {
    const reports: { healthy: boolean; message: string; at: number }[] = [];
    const stop = grpcHealthWatch(pki.controller(), 'flowline')(
      relayAddress,
      (healthy, message) => reports.push({ healthy, message, at: Date.now() }),
      { namespace: 'default', name: 'fw' },
    );
    try {
      const until = async (ok: () => boolean, ms: number) => {
        const end = Date.now() + ms;
        while (!ok() && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
        return ok();
      };
      expect(await until(() => reports.some((r) => r.healthy), 5000)).toBe(true);
      // A quiet NF that answers is not reported down: keepalive pings are answered.
      await new Promise((r) => setTimeout(r, 1500));
      expect(reports.filter((r) => !r.healthy)).toEqual([]);
      silent = true;
      const wentSilent = Date.now();
      expect(await until(() => reports.some((r) => !r.healthy), 3000)).toBe(true);
      const down = reports.find((r) => !r.healthy)!;
      expect(down.message).toMatch(/^unreachable/);
      expect(down.at - wentSilent).toBeLessThan(1000);
    } finally {
      stop();
      silent = false;
    }
  }, 15_000);
});
