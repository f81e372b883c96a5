import { describe, expect, it } from 'vitest';
import { type ChainTarget, runChainBench } from './bench';
import { cpuSeconds, measureIdleCost } from './idle';
import { chainBenchJson, chainBenchSvg, checkTargets, renderChainBench } from './report';
import { simulatedLink } from './search';

function simulatedChain(): ChainTarget & { loads: number[] } {
  const link = simulatedLink({ ndrPps: 600_000, pdrPps: 1_100_000 });
  const loads: number[] = [];
  return {
    name: 'sim',
    loads,
    async trial(pps, s) {
      loads.push(pps);
      const out = await link(pps, s);
      return { ...out, extra: { latencyUs: { p50: 10, p90: 20, p99: pps / 10_000, max: 99 } } };
    },
    counters: async () => ({
      hops: [{ hop: 'default/fw', packets: 5, dropped: 1 }],
      drops: { 'default/fw: acl_deny': 1 },
    }),
    processes: () => [{ name: 'self', pid: process.pid }],
  };
}

describe('chain benchmark over a simulated chain', () => {
  it('measures latency at 10/50/90 % of the PDR it found and reports every part', async () => {
    const target = simulatedChain();
    const r = await runChainBench(target, {
      search: { minPps: 10_000, maxPps: 4_000_000, durationsS: [1, 5], relativeResolution: 0.02 },
      idleSeconds: 0.2,
    });
    const pdr = r.search.pdr.lowerPps;
    expect(pdr).toBeGreaterThan(1_100_000 * 0.98);
    expect(r.latency.map((l) => l.offeredPps)).toEqual(
      [0.1, 0.5, 0.9].map((f) => Math.round(pdr * f)),
    );
    expect(target.loads.slice(-3)).toEqual(r.latency.map((l) => l.offeredPps));
    expect(r.idle?.processes[0]?.name).toBe('self');
    const checks = checkTargets(r);
    expect(checks.find((c) => c.what === 'PDR')?.met).toBe(true);
    expect(checks.find((c) => c.what === 'NDR')?.met).toBe(true);
    // p99 at half the PDR is pdr/2/10000 µs in the simulation: about 55 µs, under 500.
    expect(checks.find((c) => c.what === 'p99 at 50 % of PDR')?.met).toBe(true);
    const text = renderChainBench(r);
    expect(text).toMatch(/NDR 0\.\d{3} Mpps/);
    expect(text).toContain('default/fw: acl_deny');
    const json = JSON.parse(JSON.stringify(chainBenchJson(r))) as { targets: unknown[] };
    expect(json.targets).toHaveLength(4);
    const svg = chainBenchSvg(r);
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.match(/<circle/g)!.length).toBeGreaterThanOrEqual(
      r.search.trials.filter((t) => t.phase === 1).length,
    );
  });
});

describe('idle cost', () => {
  it('reads the CPU time the kernel counts (as process.cpuUsage does); a sleeping process is near zero', async () => {
    const before = cpuSeconds(process.pid)!;
    const usage = process.cpuUsage();
    // Burn 0.3 s of CPU (not of wall time: the machine may be busy).
    let u = process.cpuUsage(usage);
    while (u.user + u.system < 300_000) u = process.cpuUsage(usage);
    const mine = cpuSeconds(process.pid)! - before;
    // /proc counts in clock ticks (10 ms): agree within a few ticks.
    expect(Math.abs(mine - (u.user + u.system) / 1e6)).toBeLessThan(0.05);
    const idle = await measureIdleCost([{ name: 'self', pid: process.pid }], 0.5);
    expect(idle.totalPercent).toBeLessThan(20);
    // Threads by name: this process's main thread is named after its command.
    expect(idle.processes[0]!.threads.every((t) => typeof t.name === 'string')).toBe(true);
    expect(cpuSeconds(2 ** 30)).toBeUndefined();
  });
});
