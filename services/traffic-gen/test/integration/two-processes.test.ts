/**
 * Generator and sink in two traffic-gen processes joined by vhost-user, as two pods joined by
 * the switch: A sends on a net_vhost port, B counts on the net_virtio_user port connected to
 * it (count_any_run: B did not start the flows). Exact counts per flow, no loss at a modest
 * rate, latency from the TSC stamped by the other process, both stop on SIGTERM with exit 0.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  MAIN,
  type NfProcess,
  call,
  leftovers,
  resultsWhen,
  startTrafficGen,
} from '../support/nf-process';

const root = process.getuid?.() === 0 && existsSync('/dev/hugepages');
const prefixA = `fltest-tga-${process.pid}`;
const prefixB = `fltest-tgb-${process.pid}`;

describe.skipIf(!root || !existsSync(MAIN))(
  'generator and sink in two processes over vhost-user (root, hugepages)',
  () => {
    const dir = mkdtempSync(join(tmpdir(), 'fltest-tg2-'));
    const sock = join(dir, 'vh.sock');
    let a: NfProcess | undefined;
    let b: NfProcess | undefined;

    beforeAll(async () => {
      a = await startTrafficGen({
        name: 'tg-a',
        dir,
        filePrefix: prefixA,
        ports: [`name=net1,devargs=net_vhost_tga,iface=${sock}`],
      });
      b = await startTrafficGen({
        name: 'tg-b',
        dir,
        filePrefix: prefixB,
        ports: [`name=net1,devargs=net_virtio_user_tgb,path=${sock},queues=1,queue_size=1024`],
      });
    });

    afterAll(async () => {
      await b?.kill();
      await a?.kill();
      rmSync(dir, { recursive: true, force: true });
    });

    it('B counts exactly what A sends, per flow, with latency across processes', async () => {
      const N = 10_000;
      await call(b!.client.Start.bind(b!.client), { countAnyRun: true });
      const started = await call(a!.client.Start.bind(a!.client), {
        totalRatePps: 40_000,
        flows: [
          {
            name: 'udp4',
            srcIp: '10.0.0.1',
            dstIp: '10.0.0.2',
            srcPort: 1,
            dstPort: 2,
            count: String(N),
          },
          {
            name: 'tcp6',
            protocol: 'TCP',
            srcIp: 'fd00::1',
            dstIp: 'fd00::2',
            srcPort: 3,
            dstPort: 4,
            imix: true,
            count: String(N),
          },
        ],
      });
      expect(started.flowCount).toBe(2);
      const rb = await resultsWhen(b!.client, (r) => r.totals!.rxPackets === String(2 * N));
      const ra = await call(a!.client.GetResults.bind(a!.client), {});
      expect(ra.txDone).toBe(true);
      expect(ra.flows.map((f) => f.txPackets)).toEqual([String(N), String(N)]);
      expect(rb.flows.map((f) => [f.name, f.rxPackets, f.expected, f.lost, f.duplicates])).toEqual([
        ['flow-0', String(N), String(N), '0', '0'],
        ['flow-1', String(N), String(N), '0', '0'],
      ]);
      expect(rb.flows.map((f) => f.rxBytes)).toEqual(ra.flows.map((f) => f.txBytes));
      for (const f of rb.flows) {
        const l = f.latency!;
        expect(l.samples).toBe(String(N));
        // both pollers read the same invariant TSC (one host), so latencies are >= 0
        expect(l.minNs).toBeGreaterThanOrEqual(0);
        expect(l.p50Ns).toBeGreaterThan(0);
        expect(l.p50Ns).toBeLessThanOrEqual(l.p99Ns);
        expect(l.p99Ns).toBeLessThanOrEqual(l.maxNs);
      }
      expect(rb.rxForeign).toBe('0');
    });

    it('both stop on SIGTERM with exit 0 and leave no hugepage file', async () => {
      b!.child.kill('SIGTERM');
      expect(await b!.exited).toBe(0);
      a!.child.kill('SIGTERM');
      expect(await a!.exited).toBe(0);
      expect([...leftovers(prefixA), ...leftovers(prefixB)]).toEqual([]);
    });
  },
);
