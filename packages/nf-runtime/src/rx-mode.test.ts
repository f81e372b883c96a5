import { describe, expect, it } from 'vitest';
import { loadConfig } from './config';
import { discoverPodPorts } from './pod-devices';
import { POLL_BACKOFF, TIMER_BACKOFF, rxPlan } from './rx-mode';
import { z } from 'zod';

const vhost = [
  { name: 'net1', kind: 'virtio-user' },
  { name: 'net2', kind: 'virtio-user' },
];

describe('rx mode', () => {
  it('poll busy-polls whatever the ports', () => {
    expect(rxPlan('poll', [{ name: 'r', kind: 'vdev' }], false)).toEqual({
      requested: 'poll',
      effective: 'poll',
      backoff: POLL_BACKOFF,
      pipeline: { backoff: POLL_BACKOFF },
    });
    expect(rxPlan('poll', vhost, true).pipeline).toEqual({ backoff: POLL_BACKOFF, rxMode: 'poll' });
  });

  it('only poll keeps the core: every other mode yields it when caught up (shareCore)', () => {
    const ring = [{ name: 'r', kind: 'vdev' }];
    expect(rxPlan('poll', vhost, true).backoff.shareCore).toBe(false);
    for (const [mode, ports] of [
      ['adaptive', vhost],
      ['interrupt', vhost],
      ['adaptive', ring],
    ] as const)
      expect(rxPlan(mode, ports, true).pipeline.backoff.shareCore, `${mode}`).toBe(true);
  });

  it('adaptive is had only with native support and every port able to interrupt', () => {
    expect(rxPlan('adaptive', vhost, true)).toMatchObject({
      effective: 'adaptive',
      pipeline: { rxMode: 'adaptive', backoff: TIMER_BACKOFF },
    });
    expect(rxPlan('interrupt', vhost, true)).toMatchObject({
      effective: 'interrupt',
      backoff: { spinPolls: 0 },
    });
    expect(rxPlan('adaptive', [...vhost, { name: 'ring', kind: 'vdev' }], true)).toEqual({
      requested: 'adaptive',
      effective: 'timer-backoff',
      reason: 'ports without rx interrupts: ring',
      backoff: TIMER_BACKOFF,
      pipeline: { backoff: TIMER_BACKOFF },
    });
    expect(rxPlan('adaptive', vhost, false)).toMatchObject({
      effective: 'timer-backoff',
      reason: expect.stringContaining('no rx-interrupt wait') as unknown,
    });
  });

  it('is a runtime setting: adaptive by default, FLOWLINE_RX_MODE and --rx-mode set it, others are refused by name', () => {
    const load = (argv: string[], env: NodeJS.ProcessEnv = {}) =>
      loadConfig({ kind: 'x', nfSchema: z.object({}), argv, env }).runtime.rxMode;
    expect(load([])).toBe('adaptive');
    expect(load([], { FLOWLINE_RX_MODE: 'poll' })).toBe('poll');
    expect(load(['--rx-mode', 'interrupt'], { FLOWLINE_RX_MODE: 'poll' })).toBe('interrupt');
    expect(() => load(['--rx-mode', 'sometimes'])).toThrow(/rxMode/);
  });

  it('virtioQueueSize: 1024 by default, a power of two up to 4096, in the virtio-user devargs', () => {
    const load = (argv: string[]) =>
      loadConfig({ kind: 'x', nfSchema: z.object({}), argv, env: {} }).runtime;
    expect(load([]).virtioQueueSize).toBe(1024);
    expect(() => load(['--virtio-queue-size', '3000'])).toThrow(/virtioQueueSize/);
    expect(() => load(['--virtio-queue-size', '8192'])).toThrow(/virtioQueueSize/);
    const runtime = load(['--virtio-queue-size', '4096', '--pod-dir', '/pod']);
    const ports = discoverPodPorts(
      runtime,
      {},
      {
        readDir: () => ['net1.json'],
        readFile: () => JSON.stringify({ socketPath: '/s/net1.sock' }),
      },
    );
    expect(ports[0]!.devargs[0]).toContain(',queue_size=4096');
  });
});
