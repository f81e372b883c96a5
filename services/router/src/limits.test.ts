// Static routes per table: exactly the cap and one over, at start and through the API.
import { describe, expect, it } from 'vitest';
import { InvalidRouteError, RouterControlPlane, makeInterface, validateRoute } from './index';
import { MAX_ROUTES } from './limits';
import type { RouteInput } from './routes';

const net1 = makeInterface('net1', '02:00:00:00:01:01', ['10.0.1.1/24'], 'i');
/** n distinct /24s via a gateway on net1. */
const routes = (n: number): RouteInput[] =>
  Array.from({ length: n }, (_, i) => ({
    prefix: `100.${64 + (i >> 8)}.${i & 255}.0/24`,
    nextHop: '10.0.1.254',
  }));

function controlPlane(): { cp: RouterControlPlane; programmed: number[] } {
  const programmed: number[] = [];
  const cp = new RouterControlPlane(
    [net1],
    { apply: async (fib) => void programmed.push(fib.routes.length) },
    () => undefined,
  );
  return { cp, programmed };
}

async function refusal(p: Promise<unknown>): Promise<InvalidRouteError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(InvalidRouteError);
  return err as InvalidRouteError;
}

describe('static routes per table', () => {
  it('starts with exactly the cap; one more is refused naming routes, and nothing is programmed', async () => {
    const full = controlPlane();
    await full.cp.start(routes(MAX_ROUTES));
    expect(full.cp.statics.size).toBe(MAX_ROUTES);
    expect(full.programmed).toEqual([MAX_ROUTES + 1]); // and the connected subnet

    const over = controlPlane();
    const err = await refusal(over.cp.start(routes(MAX_ROUTES + 1)));
    expect(err.field).toBe('routes');
    expect(err.message).toBe(
      `routes: ${MAX_ROUTES + 1} static routes, over the ${MAX_ROUTES} one router table holds; delete routes first`,
    );
    expect(over.programmed).toEqual([]);
  });

  it('AddRoute fills the table to exactly the cap; the next is refused naming routes, the table unchanged', async () => {
    const { cp, programmed } = controlPlane();
    await cp.start(routes(MAX_ROUTES - 1));
    const last = routes(MAX_ROUTES + 1);
    expect(await cp.addRoute(last[MAX_ROUTES - 1]!)).toBe(2n);
    expect(cp.statics.size).toBe(MAX_ROUTES);
    const err = await refusal(cp.addRoute(last[MAX_ROUTES]!));
    expect(err.field).toBe('routes');
    expect(cp.statics.size).toBe(MAX_ROUTES);
    expect(cp.generation).toBe(2n);
    expect(programmed).toHaveLength(2);
    // a route of the table is still validated as before (the cap is about size alone)
    expect(validateRoute(last[0]!, [net1], 'route').iface).toBe('net1');
  });
});
