import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { type Server, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  type Eal,
  type Mempool,
  type Pipeline,
  Port,
  PortError,
  buildEalArgs,
} from '@flowline/dpdk';
import { createLogger } from '@flowline/telemetry';
import { PodDeviceError } from './errors';
import {
  type FrameInjector,
  type OpenPodPort,
  PodDataplane,
  ealOptionsFor,
  parseLcores,
} from './pod-dataplane';
import type { EalPlan, PodPort } from './pod-devices';

const plan: EalPlan = {
  lcores: '0,1',
  memoryMb: 256,
  noHuge: false,
  inMemory: true,
  filePrefix: 'router-a',
  pciAllow: [],
  extraArgs: [],
};

const virtio: PodPort = {
  name: 'net1',
  kind: 'virtio-user',
  devargs: ['net_virtio_user_net1,path=/run/flowline/x/net1.sock,server=1,queues=1'],
  origin: '/pod/net1.json',
  socketPath: '/run/flowline/x/net1.sock',
};
const vf: PodPort = {
  name: 'sriov0',
  kind: 'pci',
  devargs: ['0000:03:00.1'],
  origin: 'PCIDEVICE_FLOWLINE_IO_SRIOV',
  pciAddress: '0000:03:00.1',
};

describe('parseLcores', () => {
  it('expands lists and ranges', () => {
    expect(parseLcores('0,1')).toEqual([0, 1]);
    expect(parseLcores('0-2,5')).toEqual([0, 1, 2, 5]);
  });
  it('names eal.lcores when the list is bad', () => {
    expect(() => parseLcores('1-0')).toThrow(PodDeviceError);
    expect(() => parseLcores('a')).toThrow(/eal\.lcores/);
  });
  it("never expands past DPDK's RTE_MAX_LCORE (128)", () => {
    expect(parseLcores('0-127')).toHaveLength(128);
    expect(() => parseLcores('0-128')).toThrow(
      "eal.lcores: core 128 is past DPDK's limit: lcores are 0..127 (RTE_MAX_LCORE 128)",
    );
    expect(() => parseLcores('0,4294967295-4294967295')).toThrow(PodDeviceError);
  });
});

describe('ealOptionsFor', () => {
  it('gives each process its own file prefix and --no-pci without VFs', () => {
    const o = ealOptionsFor(plan, [], 4242);
    expect(o.filePrefix).toBe('router-a-4242');
    const args = buildEalArgs(o, 4);
    expect(args).toContain('--no-pci');
    expect(args).toEqual(expect.arrayContaining(['--file-prefix', 'router-a-4242', '-m', '256']));
    expect(args).toContain('--in-memory');
  });

  it('allows exactly the pod VFs and keeps the prefix within 64 characters', () => {
    const o = ealOptionsFor({ ...plan, filePrefix: 'x'.repeat(64) }, [vf], 123456);
    expect(o.filePrefix).toHaveLength(64);
    expect(o.filePrefix.endsWith('-123456')).toBe(true);
    const args = buildEalArgs({ ...o, pciAllow: vf.pciAddress ? [vf.pciAddress] : [] }, 4);
    expect(args).not.toContain('--no-pci');
    expect(args).toEqual(expect.arrayContaining(['-a', '0000:03:00.1']));
  });

  it('asks for single-file segments with virtio-user ports and uses the pod hugetlbfs', () => {
    const o = ealOptionsFor({ ...plan, hugeDir: '/hugepages', inMemory: false }, [virtio], 1);
    expect(o.singleFileSegments).toBe(true);
    const args = buildEalArgs(o, 4);
    expect(args).toEqual(
      expect.arrayContaining(['--single-file-segments', '--huge-dir', '/hugepages']),
    );
    // EAL refuses --huge-unlink with --single-file-segments.
    expect(args.some((a) => a.startsWith('--huge-unlink'))).toBe(false);
    expect(args).not.toContain('--in-memory');
  });

  it('unlinks hugepage files right after mapping when neither in-memory nor virtio-user', () => {
    const args = buildEalArgs(ealOptionsFor({ ...plan, inMemory: false }, [vf], 1), 4);
    expect(args).toContain('--huge-unlink=always');
    expect(args).not.toContain('--single-file-segments');
  });

  it('drops hugeDir under --no-huge (explicitly asked for, tests only)', () => {
    const o = ealOptionsFor({ ...plan, hugeDir: '/hugepages', noHuge: true }, [], 1);
    expect(o.hugeDir).toBeUndefined();
    expect(buildEalArgs(o, 4)).toContain('--no-huge');
  });
});

describe('PodDataplane.close', () => {
  // Fakes of what close() releases: no EAL runs in a unit test.
  const removeFailed = (name: string) => () => {
    throw new PortError(name, 'rte_dev_remove failed', 'close', 16);
  };
  const fakePort = (name: string, close: () => void = vi.fn()) =>
    ({
      name,
      id: 0,
      link: () => ({ up: true, speedMbps: 0 }),
      close,
      stop: vi.fn(),
    }) as unknown as Port;
  const openPort = (name: string, kind: PodPort['kind'], socketPath?: string): OpenPodPort => ({
    name,
    kind,
    port: fakePort(name),
    devargs: `net_ring_${name}`,
    spec: { name, kind, devargs: [], origin: 'test', ...(socketPath ? { socketPath } : {}) },
  });
  const dirs: string[] = [];
  const servers: Server[] = [];
  afterEach(async () => {
    vi.restoreAllMocks();
    await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
    dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true }));
  });

  function dataplane(ports: OpenPodPort[]) {
    const dir = mkdtempSync(join(tmpdir(), 'flowline-close-'));
    dirs.push(dir);
    const cleanup = vi.fn((): string[] => []);
    const eal = {
      // A prefix no EAL of this host has: leftoverFiles finds nothing.
      options: { filePrefix: `nfrt-close-${process.pid}`, hugeDir: dir },
      running: true,
      cleanup,
    } as unknown as Eal;
    const logs: Record<string, unknown>[] = [];
    const logger = createLogger('router', {
      write: (line) => logs.push(JSON.parse(line) as Record<string, unknown>),
    });
    const dp = new PodDataplane(
      eal,
      {} as Mempool,
      new Map(ports.map((p) => [p.name, p])),
      logger,
      false,
    );
    return { dp, cleanup, logs, dir };
  }

  it('still closes the pod ports and cleans the EAL up when a pipeline, the injector or an internal port fails to close', async () => {
    const net1 = openPort('net1', 'pci');
    const { dp, cleanup, logs } = dataplane([net1]);
    const pipelineClosed = vi.fn();
    dp.attachPipeline({ close: removeFailed('pipeline') } as unknown as Pipeline);
    dp.attachPipeline({ close: pipelineClosed } as unknown as Pipeline);
    // The injector is made on first use from a net_ring port; stand one in that fails.
    (dp as unknown as { injector: FrameInjector }).injector = {
      close: removeFailed('flinj'),
    } as unknown as FrameInjector;
    const secondInternalClosed = vi.fn();
    vi.spyOn(Port, 'open')
      .mockReturnValueOnce(fakePort('net_ring_a', removeFailed('net_ring_a')))
      .mockReturnValueOnce(fakePort('net_ring_b', secondInternalClosed));
    dp.openInternalPort('net_ring_a');
    dp.openInternalPort('net_ring_b');

    await dp.close();

    expect(pipelineClosed).toHaveBeenCalledOnce();
    expect(secondInternalClosed).toHaveBeenCalledOnce();
    expect(net1.port.close).toHaveBeenCalledOnce();
    expect(cleanup).toHaveBeenCalledOnce();
    expect(logs).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          level: 'warn',
          component: 'router',
          msg: 'pipeline close failed',
          pipeline: 0,
          err: expect.objectContaining({ message: 'port pipeline: rte_dev_remove failed' }),
        }),
        expect.objectContaining({ level: 'warn', msg: 'frame injector close failed' }),
        expect.objectContaining({
          level: 'warn',
          msg: 'internal port close failed',
          port: 'net_ring_a',
        }),
      ]),
    );
    await dp.close();
    expect(cleanup).toHaveBeenCalledOnce();
  });

  it("still removes a virtio-user port's socket when a pipeline fails to close", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'flowline-close-sock-'));
    dirs.push(dir);
    const socketPath = join(dir, 'net1.sock');
    const server = createServer();
    servers.push(server);
    await new Promise<void>((r) => server.listen(socketPath, r));
    const net1 = openPort('net1', 'virtio-user', socketPath);
    const { dp, cleanup } = dataplane([net1]);
    dp.attachPipeline({ close: removeFailed('pipeline') } as unknown as Pipeline);

    await dp.close();

    expect(net1.port.stop).toHaveBeenCalledOnce();
    expect(existsSync(socketPath)).toBe(false);
    // Left to process exit with virtio-user ports (see close()).
    expect(cleanup).not.toHaveBeenCalled();
  });
});
