import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { nodePaths, parseNodeConfig } from './config';
import type { PodSpec } from './manifest';
import { podFilePrefix, podGrpcAddress, podSocketDir, podStateDir } from './pod-names';
import { clearDeadProcess, podEnv } from './pod-process';
import type { PodRecord } from './state';

let dir: string;
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'flnode-process-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const spec = (over: Partial<PodSpec> = {}) =>
  ({
    namespace: 'default',
    name: 'fw',
    hugepagesMb: 0,
    env: {},
    ...over,
  }) as PodSpec;

describe('podEnv', () => {
  const config = parseNodeConfig({ stateDir: '/s', hugepagesDir: '/mnt/huge' });
  const paths = nodePaths('/s');
  const pod = {
    grpcAddress: podGrpcAddress(paths, 'default', 'fw'),
    filePrefix: podFilePrefix('default', 'fw'),
  } as PodRecord;

  it("is the NF's boot environment: identity, pod dir, gRPC address, EAL files, security", () => {
    const env = podEnv(config, paths, spec(), pod, {}, { FLOWLINE_INSECURE: '1' });
    expect(env).toEqual({
      PATH: process.env.PATH,
      HOME: '/root',
      POD_NAME: 'fw',
      POD_NAMESPACE: 'default',
      FLOWLINE_NF_NAME: 'fw',
      FLOWLINE_POD_DIR: '/s/sockets/default_fw',
      FLOWLINE_GRPC_ADDRESS: 'unix:///s/pods/default_fw/grpc.sock',
      FLOWLINE_METRICS_PORT: 'off',
      FLOWLINE_FILE_PREFIX: 'flpod_default_fw_',
      FLOWLINE_HUGEPAGES_DIR: '/mnt/huge',
      FLOWLINE_INSECURE: '1',
    });
  });

  it("adds the hugepages asked for; the devices' env over the node's, the manifest's over all", () => {
    const env = podEnv(
      config,
      paths,
      spec({
        hugepagesMb: 64,
        env: { FLOWLINE_METRICS_PORT: '9464', PCIDEVICE_X: 'mine' },
      }),
      pod,
      { PCIDEVICE_X: '0000:01:00.1', FLOWLINE_INSECURE: '0' },
      { FLOWLINE_INSECURE: '1' },
    );
    expect(env).toMatchObject({
      FLOWLINE_HUGEPAGES_MB: '64',
      FLOWLINE_METRICS_PORT: '9464',
      PCIDEVICE_X: 'mine',
      FLOWLINE_INSECURE: '0',
    });
  });
});

describe('clearDeadProcess', () => {
  it('removes its hugepage files, its EAL runtime directory, its sockets and its gRPC socket, and nothing else (pod fw2 keeps its own)', () => {
    const paths = nodePaths(dir);
    const huge = join(dir, 'huge');
    const sockets = podSocketDir(paths, 'default', 'fw');
    const podDir = podStateDir(paths, 'default', 'fw');
    for (const d of [huge, sockets, podDir]) mkdirSync(d, { recursive: true });
    const pod = {
      namespace: 'default',
      name: 'fw',
      grpcAddress: podGrpcAddress(paths, 'default', 'fw'),
      filePrefix: podFilePrefix('default', 'fw'),
    } as PodRecord;
    // DPDK's names: <EAL prefix>map_<n>, the NF's EAL prefix the pod's with -<pid>
    for (const f of ['flpod_default_fw_-41map_0', 'flpod_default_fw2_-42map_0'])
      writeFileSync(join(huge, f), '');
    const ealRun = join(dir, 'run-dpdk');
    for (const d of ['flpod_default_fw_-41', 'flpod_default_fw2_-42'])
      mkdirSync(join(ealRun, d), { recursive: true });
    for (const f of ['net1.sock', 'net1.json']) writeFileSync(join(sockets, f), '');
    writeFileSync(join(podDir, 'grpc.sock'), '');
    expect(clearDeadProcess(huge, paths, pod, ealRun)).toBe(1);
    expect(readdirSync(huge)).toEqual(['flpod_default_fw2_-42map_0']);
    expect(readdirSync(ealRun)).toEqual(['flpod_default_fw2_-42']);
    expect(readdirSync(sockets)).toEqual(['net1.json']);
    expect(existsSync(join(podDir, 'grpc.sock'))).toBe(false);
  });

  it('is fine with nothing left', () => {
    const pod = {
      namespace: 'default',
      name: 'fw',
      grpcAddress: 'unix:///nonexistent/grpc.sock',
      filePrefix: 'flpod_default_fw_',
    } as PodRecord;
    expect(clearDeadProcess(join(dir, 'none'), nodePaths(dir), pod, join(dir, 'no-run'))).toBe(0);
  });
});
