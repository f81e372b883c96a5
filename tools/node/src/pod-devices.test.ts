import type { KubeletPeer } from '@flowline/emulation';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { testContext } from '../test/support/context';
import { NodeStepError } from './errors';
import type { PodSpec } from './manifest';
import { type DeviceSource, allocateDevices, freeDevices, netdevsOf } from './pod-devices';
import type { PodRecord } from './state';

let dir: string;
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'flnode-devices-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const VF = 'flowline.io/sriov_vf';

type Device = NonNullable<ReturnType<KubeletPeer['devices']>>[number];
const device = (ID: string, health = 'Healthy') => ({ ID, health }) as Device;

/** Kubelet's side as the node sees it: devices per resource, a preference, Allocate's answer. */
function fakeKubelet(
  opts: {
    prefer?: string[];
    mounts?: { containerPath: string; hostPath: string }[];
  } = {},
) {
  const calls: string[] = [];
  const kubelet: DeviceSource = {
    devices: (resource) =>
      resource === VF
        ? [
            device('0000:01:00.1'),
            device('0000:01:00.2', 'Unhealthy'),
            device('0000:01:00.3'),
            device('0000:01:00.4'),
          ]
        : undefined,
    preferred: async (resource, available, _must, size) => {
      calls.push(`preferred ${resource} [${available.join(' ')}] ${size}`);
      return opts.prefer ?? available.slice(-size);
    },
    allocate: async (resource, ...containers) => {
      calls.push(`allocate ${resource} [${containers[0]!.join(' ')}]`);
      return {
        containerResponses: [
          {
            envs: {
              PCIDEVICE_FLOWLINE_IO_SRIOV_VF: containers[0]!.join(','),
              FLOWLINE_NETDEV_SRIOV_VF: 'vf1,vf3',
            },
            mounts: (opts.mounts ?? []) as never,
            devices: [],
            annotations: {},
            cdiDevices: [],
          },
        ],
      } as Awaited<ReturnType<KubeletPeer['allocate']>>;
    },
  };
  return { kubelet, calls };
}

const pod = (devices: Record<string, string[]> = {}) =>
  ({ key: 'default/fw', devices }) as unknown as PodRecord;
const spec = (devices: Record<string, number>) => ({ devices }) as unknown as PodSpec;

describe('freeDevices', () => {
  it("is the resource's healthy devices no pod holds", () => {
    const { kubelet } = fakeKubelet();
    expect(freeDevices(kubelet, { 'default/rt': pod({ [VF]: ['0000:01:00.3'] }) }, VF)).toEqual([
      '0000:01:00.1',
      '0000:01:00.4',
    ]);
  });

  it('refuses a resource no device plugin serves, naming it', () => {
    const { kubelet } = fakeKubelet();
    expect(() => freeDevices(kubelet, {}, 'flowline.io/other')).toThrow(
      'allocate devices: no device plugin serves flowline.io/other',
    );
    expect(() => freeDevices(undefined, {}, VF)).toThrow(NodeStepError);
  });
});

describe('allocateDevices', () => {
  it("takes kubelet's preferred devices, records them before Allocate, and returns Allocate's env", async () => {
    const { ctx, saved } = testContext(dir);
    const { kubelet, calls } = fakeKubelet();
    const p = pod();
    const env = await allocateDevices(ctx, kubelet, spec({ [VF]: 2 }), p);
    expect(calls).toEqual([
      `preferred ${VF} [0000:01:00.1 0000:01:00.3 0000:01:00.4] 2`,
      `allocate ${VF} [0000:01:00.3 0000:01:00.4]`,
    ]);
    expect(p.devices).toEqual({ [VF]: ['0000:01:00.3', '0000:01:00.4'] });
    expect(saved).toHaveLength(1);
    expect(env).toEqual({
      PCIDEVICE_FLOWLINE_IO_SRIOV_VF: '0000:01:00.3,0000:01:00.4',
      FLOWLINE_NETDEV_SRIOV_VF: 'vf1,vf3',
    });
  });

  it('takes the first free devices when the preference is not of the size asked', async () => {
    const { ctx } = testContext(dir);
    const { kubelet } = fakeKubelet({ prefer: ['0000:01:00.4'] });
    const p = pod();
    await allocateDevices(ctx, kubelet, spec({ [VF]: 2 }), p);
    expect(p.devices[VF]).toEqual(['0000:01:00.1', '0000:01:00.3']);
  });

  it('refuses more than are free, naming the resource and the counts, before any call', async () => {
    const { ctx } = testContext(dir);
    const { kubelet, calls } = fakeKubelet();
    await expect(allocateDevices(ctx, kubelet, spec({ [VF]: 4 }), pod())).rejects.toThrow(
      `run pod default/fw: ${VF}: 4 requested, 3 free and healthy`,
    );
    expect(calls).toEqual([]);
  });

  it('warns about a mount whose container path is not the host path (no mount namespaces)', async () => {
    const { ctx, logs } = testContext(dir);
    const { kubelet } = fakeKubelet({
      mounts: [
        { containerPath: '/dev/hugepages', hostPath: '/dev/hugepages' },
        { containerPath: '/mnt/huge', hostPath: '/dev/hugepages' },
      ],
    });
    await allocateDevices(ctx, kubelet, spec({ [VF]: 1 }), pod());
    expect(logs.filter((l) => l.level === 'warn')).toMatchObject([
      {
        msg: 'mount not applied: the local node has no mount namespaces',
        pod: 'default/fw',
        mount: { containerPath: '/mnt/huge' },
      },
    ]);
  });
});

describe('netdevsOf', () => {
  it('lists the netdevs of every FLOWLINE_NETDEV_* variable, in order', () => {
    expect(
      netdevsOf({
        FLOWLINE_NETDEV_A: 'vf1,vf2',
        PCIDEVICE_X: '0000:01:00.1',
        FLOWLINE_NETDEV_B: 'vf7,',
      }),
    ).toEqual(['vf1', 'vf2', 'vf7']);
  });
});
