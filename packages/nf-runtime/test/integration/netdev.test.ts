/**
 * A kernel netdev given to the pod (FLOWLINE_NETDEV_*, a netdev VF in a cluster; a veth pair
 * here) opens as net_af_xdp, or net_af_packet where the kernel refuses AF_XDP, and passes
 * frames both ways. One process, one EAL; root needed for the veth pair.
 */
import { execFileSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { buildPacket, leftoverFiles } from '@flowline/dpdk';
import { createLogger } from '@flowline/telemetry';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  type PodDataplane,
  discoverPodPorts,
  loadConfig,
  openPodDataplane,
  planEal,
} from '../../src/index';
import { dataplaneNotReady } from '../support/dataplane';

const notReady = dataplaneNotReady();

const pod = `fltn${process.pid % 100000}a`; // the pod's side, opened by DPDK
const peer = `fltn${process.pid % 100000}b`; // the kernel's side
const ip = (...args: string[]) => execFileSync('ip', args, { stdio: 'pipe' }).toString();
const rx = (dev: string) =>
  Number(readFileSync(`/sys/class/net/${dev}/statistics/rx_packets`, 'utf8'));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let dp: PodDataplane | undefined;
const logs: string[] = [];

afterAll(async () => {
  await dp?.close();
  try {
    ip('link', 'del', pod);
  } catch {
    // never created
  }
});

describe.skipIf(notReady)('netdev ports (root, hugepages, veth)', () => {
  it('opens FLOWLINE_NETDEV_* with AF_XDP, else AF_PACKET, and passes frames both ways', async () => {
    ip('link', 'add', pod, 'type', 'veth', 'peer', 'name', peer);
    ip('link', 'set', pod, 'up');
    ip('link', 'set', peer, 'up');
    ip('addr', 'add', '10.77.0.1/24', 'dev', peer);

    const env = { FLOWLINE_NETDEV_TEST: pod };
    const config = loadConfig({
      kind: 'ndtest',
      nfSchema: z.object({}),
      env: {},
      argv: ['--name', 'ndtest', '--lcores', '0', '--memory-mb', '128', '--metrics-port', 'off'],
    });
    const ports = discoverPodPorts(config.runtime, env);
    expect(ports).toMatchObject([{ name: pod, kind: 'netdev' }]);
    const logger = createLogger('ndtest', { write: (l) => logs.push(l) });
    dp = openPodDataplane({ ports, eal: planEal(config.runtime, ports), logger });
    const opened = dp.ports.get(pod)!;
    const driver = dp.view.ports()[0]!.driver;
    // Which one the kernel allowed is the kernel's business; the fallback must be the
    // documented one and say why when it happens.
    if (opened.devargs.startsWith('net_af_packet')) {
      expect(driver).toBe('net_af_packet');
      expect(logs.join('\n')).toMatch(/"msg":"port fell back".*net_af_xdp/);
    } else {
      expect(opened.devargs).toMatch(/^net_af_xdp_/);
      expect(driver).toBe('net_af_xdp');
    }
    console.log(`netdev ${pod} opened as ${driver}`);

    // DPDK -> kernel: the peer's rx counter moves.
    const before = rx(peer);
    const frames = Array.from({ length: 8 }, (_, i) =>
      buildPacket({ src: '10.77.0.2', dst: '10.77.0.1', sport: 1000 + i, dport: 9 }),
    );
    let sent = 0;
    for (let i = 0; i < 50 && sent < frames.length; i++) {
      sent += opened.port.send(0, dp.pool, frames.slice(sent));
      await sleep(10);
    }
    expect(sent).toBe(frames.length);
    for (let i = 0; i < 100 && rx(peer) < before + frames.length; i++) await sleep(10);
    expect(rx(peer) - before).toBeGreaterThanOrEqual(frames.length);

    // kernel -> DPDK: a UDP datagram to 10.77.0.2 starts with the kernel's ARP request for it.
    const sock = createSocket('udp4');
    await new Promise<void>((r) => sock.send('x', 9, '10.77.0.2', () => r()));
    sock.close();
    const got: Buffer[] = [];
    for (let i = 0; i < 100 && got.length === 0; i++) {
      got.push(...opened.port.receive(0, 64).filter((f) => f.readUInt16BE(12) === 0x0806));
      await sleep(10);
    }
    expect(got.length).toBeGreaterThan(0);
    expect([...got[0]!.subarray(38, 42)]).toEqual([10, 77, 0, 2]); // ARP target IP

    const prefix = dp.eal.options.filePrefix;
    await dp.close();
    dp = undefined;
    expect(leftoverFiles(prefix)).toEqual([]);
  });
});
