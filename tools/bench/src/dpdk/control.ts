/**
 * The vhost-user topology's sensitivity control: a case that burns a known number of cycles per
 * packet more than plain l2fwd must run that much slower, or the generator, not the NF, sets
 * the rate (and the ratios to testpmd say nothing about the NF).
 */
import { compare, type Round, withExtraCycles } from '../stats';

/** What the control case's stage burns per packet. */
export const CONTROL_BURN_CYCLES = 100;

/**
 * Whether the NF sets the rate: the rate of (e) against the one (a)'s rate and the burned cycles
 * predict (1 when every burned cycle shows; near 0 when the generator is the bottleneck and the
 * NF's extra work hides in its idle time). The cases run minutes apart and the machine drifts
 * (the reference has been seen to halve between them), so both are taken at (a)'s machine
 * speed: each case's median ratio to the reference measured in its own rounds, times the
 * reference's median during (a).
 */
export function sensitivity(
  base: readonly Round[] | undefined,
  burn: readonly Round[] | undefined,
  tscHz: number,
):
  | { burnCycles: number; measuredOverExpected: number; discriminates: boolean; note: string }
  | undefined {
  if (!base?.length || !burn?.length || !tscHz) return undefined;
  const at = compare([...base]);
  const a = at.ratio * at.referenceMedian;
  const e = compare([...burn]).ratio * at.referenceMedian;
  const expected = withExtraCycles(a, CONTROL_BURN_CYCLES, tscHz);
  // the share of the expected drop that showed
  const m = (a - e) / (a - expected);
  const discriminates = m >= 0.7 && m <= 1.3;
  const seen = `${CONTROL_BURN_CYCLES} cycles per packet show up as ${(m * 100).toFixed(0)}% of the expected drop (${a.toFixed(2)} -> ${e.toFixed(2)} Mpps at the reference's speed during (a), expected ${expected.toFixed(2)})`;
  return {
    burnCycles: CONTROL_BURN_CYCLES,
    measuredOverExpected: m,
    discriminates,
    note: discriminates
      ? `sensitivity control: ${seen}: the NF sets the rate`
      : `sensitivity control: ${seen}: the generator sets the rate, so these ratios do not measure the NF (targets not measured)`,
  };
}
