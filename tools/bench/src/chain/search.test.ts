import { describe, expect, it } from 'vitest';
import { searchNdrPdr, simulatedLink } from './search';

const base = { minPps: 10_000, maxPps: 5_000_000, durationsS: [1, 5], relativeResolution: 0.02 };

describe('NDR/PDR search against a simulated lossy link', () => {
  it('finds a known NDR and PDR within the resolution, from final-duration trials only', async () => {
    const link = simulatedLink({ ndrPps: 500_000, pdrPps: 1_200_000 });
    const r = await searchNdrPdr(link, base);
    expect(r.converged).toBe(true);
    for (const [bound, truth] of [
      [r.ndr, 500_000],
      [r.pdr, 1_200_000],
    ] as const) {
      expect(bound.lowerPps).toBeLessThanOrEqual(truth);
      expect(bound.upperPps).toBeGreaterThan(truth);
      expect(bound.upperPps! - bound.lowerPps).toBeLessThanOrEqual(0.02 * bound.upperPps!);
      expect(bound.lowerTrial?.durationS).toBe(5);
    }
    expect(r.ndr.lowerTrial!.lost).toBe(0);
    expect(r.pdr.lowerTrial!.lossRatio).toBeLessThanOrEqual(0.005);
    // Shared trials: far fewer than two separate binary searches of each phase would take.
    expect(link.trials).toBeLessThan(40);
  });

  it('with a capacity that jitters ±3 % per trial, still lands within resolution + jitter', async () => {
    for (const seed of [1, 7, 42]) {
      const link = simulatedLink({ ndrPps: 300_000, pdrPps: 900_000, noise: 0.03, seed });
      const r = await searchNdrPdr(link, base);
      expect(Math.abs(r.ndr.lowerPps - 300_000) / 300_000).toBeLessThan(0.02 + 0.06);
      expect(Math.abs(r.pdr.lowerPps - 900_000) / 900_000).toBeLessThan(0.02 + 0.06);
    }
  });

  it('a host that stalls some trials: a majority of three per load finds the truth far more often than one trial', async () => {
    const good = (r: Awaited<ReturnType<typeof searchNdrPdr>>): boolean =>
      r.ndr.lowerPps <= 500_000 &&
      r.ndr.upperPps! > 500_000 &&
      r.pdr.lowerPps <= 1_200_000 &&
      r.pdr.upperPps! > 1_200_000;
    let one = 0;
    let three = 0;
    for (let seed = 1; seed <= 20; seed++) {
      const st = { ndrPps: 500_000, pdrPps: 1_200_000, stallProbability: 0.15, seed };
      if (good(await searchNdrPdr(simulatedLink(st), base))) one++;
      const r = await searchNdrPdr(simulatedLink(st), {
        ...base,
        trialsPerLoad: 3,
        maxTrials: 200,
      });
      if (good(r)) three++;
    }
    // Deterministic seeds: 7 of 20 with one trial per load, 15 of 20 with three.
    expect(one).toBeLessThan(10);
    expect(three).toBeGreaterThanOrEqual(14);
  });

  it('a noisy fail above a pass keeps the pass: the NDR never exceeds the PDR', async () => {
    // The demo's short search on a loaded host: 242 kpps once lost 10 % between a clean
    // 219 kpps and a 266 kpps within the PDR's 0.5 %.
    const r = await searchNdrPdr(
      async (load, s) => {
        const sent = Math.round(load * s);
        const ratio =
          Math.abs(load - 242_000) < 5_000
            ? 0.1
            : load > 300_000
              ? 0.02
              : load > 250_000
                ? 0.003
                : 0;
        return { sent, lost: Math.round(sent * ratio) };
      },
      {
        minPps: 10_000,
        maxPps: 2_000_000,
        durationsS: [1],
        relativeResolution: 0.1,
        maxTrials: 10,
      },
    );
    expect(r.ndr.lowerPps).toBeLessThanOrEqual(r.pdr.lowerPps);
    // Every load below the lowest fail that passed is still evidence: the PDR is the highest
    // such load, and the NDR the highest clean one.
    const fails = r.trials.filter((t) => t.lossRatio > 0.005).map((t) => t.offeredPps);
    const lowestFail = Math.min(...fails);
    const passedBelow = r.trials
      .filter((t) => t.lossRatio <= 0.005 && t.offeredPps < lowestFail)
      .map((t) => t.offeredPps);
    expect(r.pdr.lowerPps).toBe(Math.max(...passedBelow));
    for (let seed = 1; seed <= 20; seed++) {
      const st = { ndrPps: 500_000, pdrPps: 600_000, stallProbability: 0.2, noise: 0.1, seed };
      const n = await searchNdrPdr(simulatedLink(st), base);
      expect(n.ndr.lowerPps).toBeLessThanOrEqual(n.pdr.lowerPps);
    }
  });

  it('with three trials per load, a failed trial between two passes does not fail the load', async () => {
    const seen = new Map<number, number>();
    // Capacity 800 kpps; every load's first trial loses 1 % (a stall), its later ones do not.
    const r = await searchNdrPdr(
      async (load, s) => {
        const n = (seen.get(load) ?? 0) + 1;
        seen.set(load, n);
        const sent = Math.round(load * s);
        const lost = n === 1 || load > 800_000 ? Math.round(sent * 0.01) : 0;
        return { sent, lost };
      },
      { ...base, durationsS: [5], trialsPerLoad: 3 },
    );
    expect(r.ndr.lowerPps).toBeLessThanOrEqual(800_000);
    expect(r.ndr.upperPps).toBeGreaterThan(800_000);
    expect(r.ndr.upperPps! - r.ndr.lowerPps).toBeLessThanOrEqual(0.02 * r.ndr.upperPps!);
    // Every passing load needed its 2nd and 3rd trial; a failing one 2 fails (≤ 800k never).
    expect(r.ndr.lowerTrial!.lost).toBe(0);
  });

  it('a link that loses nothing up to the maximum reports the maximum; one losing at the minimum reports 0', async () => {
    const fast = await searchNdrPdr(simulatedLink({ ndrPps: 9e6, pdrPps: 1e7 }), base);
    expect(fast.ndr).toMatchObject({ lowerPps: 5_000_000 });
    expect(fast.ndr.upperPps).toBeUndefined();
    const dead = await searchNdrPdr(simulatedLink({ ndrPps: 100, pdrPps: 200 }), base);
    expect(dead.ndr.lowerPps).toBe(0);
    expect(dead.pdr.lowerPps).toBe(0);
    expect(dead.ndr.upperPps).toBe(10_000);
  });

  it('stops at maxTrials and says it did not converge', async () => {
    const link = simulatedLink({ ndrPps: 500_000, pdrPps: 1_200_000 });
    const r = await searchNdrPdr(link, { ...base, relativeResolution: 0.0001, maxTrials: 12 });
    expect(link.trials).toBe(12);
    expect(r.converged).toBe(false);
  });

  it('refuses nonsense bounds', async () => {
    const link = simulatedLink({ ndrPps: 1, pdrPps: 2 });
    await expect(searchNdrPdr(link, { ...base, minPps: 0 })).rejects.toThrow(/minPps/);
    await expect(searchNdrPdr(link, { ...base, durationsS: [] })).rejects.toThrow(/durations/);
  });
});
