/**
 * How many static routes one router table holds — the one place this is decided (README
 * "Limits").
 *
 * MAX_ROUTES is 8,192: where the native IPv6 LPM table stops growing with its routes. The LPM
 * stage (fl_lpm_build, packages/dpdk/native/fl_stage_lpm.c) sizes rte_lpm6 with 8 tbl8 groups per
 * IPv6 route, capped at 65,536 groups, which it reaches at 8,192 routes; rte_lpm (IPv4) gets
 * one group per route, as many as any IPv4 table needs. The count is for both families together,
 * so a table that fits does so whatever its mix. Connected subnets and learned neighbours are
 * in the native table too, on top of these.
 */
import { InvalidRouteError } from './errors';

export const MAX_ROUTES = 8_192;

/** Refuses a table of `count` static routes over the cap, naming the `routes` field. */
export function checkRouteCount(count: number): void {
  if (count > MAX_ROUTES)
    throw new InvalidRouteError(
      'routes',
      `${count} static routes, over the ${MAX_ROUTES} one router table holds; delete routes first`,
    );
}
