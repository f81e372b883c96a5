import { describe, expect, it } from 'vitest';
import { withExtraCycles } from '../stats';
import { CONTROL_BURN_CYCLES, sensitivity } from './control';

const HZ = 2.6e9;
/** Rounds whose candidate runs at `mpps` (the reference does not enter the control). */
const at = (mpps: number) => [0, 1, 2].map(() => ({ reference: 15, candidate: mpps }));
/** The rate `mpps` becomes when every packet costs CONTROL_BURN_CYCLES more. */
const slower = (mpps: number) => withExtraCycles(mpps, CONTROL_BURN_CYCLES, HZ);

describe('vhost topology sensitivity control', () => {
  it('discriminates when the burned cycles show as the expected drop', () => {
    const c = sensitivity(at(15), at(slower(15)), HZ)!;
    expect(c.measuredOverExpected).toBeCloseTo(1, 6);
    expect(c.discriminates).toBe(true);
    expect(c.note).toMatch(/the NF sets the rate/);
  });

  it('says the generator sets the rate when the drop does not show', () => {
    const c = sensitivity(at(7.1), at(7.0), HZ)!;
    expect(c.measuredOverExpected).toBeLessThan(0.1);
    expect(c.discriminates).toBe(false);
    expect(c.note).toMatch(/generator sets the rate/);
  });

  it('takes both cases at the same machine speed: a reference that halved between them does not pass for the burned cycles', () => {
    // (a) at 16 Mpps with the reference at 15; (e) later with both down to about 10 (the
    // generator slowed): 10 is what 100 more cycles would make of 16, but the NF kept pace
    // with the reference, so the drop is the machine's
    const base = [0, 1, 2].map(() => ({ reference: 15, candidate: 16 }));
    const burn = [0, 1, 2].map(() => ({ reference: 10.5, candidate: 10 }));
    const c = sensitivity(base, burn, HZ)!;
    expect(c.discriminates).toBe(false);
    // and the same drop with the reference steady is the NF's
    const steady = [0, 1, 2].map(() => ({ reference: 15, candidate: slower(16) }));
    expect(sensitivity(base, steady, HZ)!.measuredOverExpected).toBeCloseTo(1, 6);
  });

  it('has nothing to say without both cases or the TSC rate', () => {
    expect(sensitivity(undefined, at(7), HZ)).toBeUndefined();
    expect(sensitivity(at(15), at(7), 0)).toBeUndefined();
  });
});
