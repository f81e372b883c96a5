import * as grpc from '@grpc/grpc-js';
import { arpFrame } from '@flowline/packet';
import { routerV1 } from '@flowline/proto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  MAX_ROUTES,
  RouterControlPlane,
  makeInterface,
  routerService,
  validateRoute,
} from './index';

type Unary<Req, Res> = (req: Req, cb: (e: grpc.ServiceError | null, r?: Res) => void) => unknown;
const call = <Req, Res>(fn: Unary<Req, Res>, req: Req) =>
  new Promise<Res>((resolve, reject) => fn(req, (e, r) => (e ? reject(e) : resolve(r!))));
const failure = <Req, Res>(fn: Unary<Req, Res>, req: Req) =>
  call(fn, req).then(
    () => undefined,
    (e: grpc.ServiceError) => e,
  );

describe('flowline.router.v1 over gRPC', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flowline-rt-'));
  const cp = new RouterControlPlane(
    [makeInterface('net1', '02:00:00:00:01:01', ['10.0.1.1/24'], 'i')],
    { apply: async () => undefined },
    () => undefined,
    () => 5000,
  );
  const server = new grpc.Server();
  let client: routerV1.RouterClient;

  beforeAll(async () => {
    await cp.start();
    const svc = routerService(
      cp,
      { counters: () => ({ forwarded: 42n, droppedByReason: { no_route: 3n } }) },
      () => 6500,
    );
    server.addService(svc.definition, svc.implementation);
    const address = `unix://${join(dir, 'rt.sock')}`;
    await new Promise<void>((res, rej) =>
      server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (e) =>
        e ? rej(e) : res(),
      ),
    );
    client = new (routerV1.loadRouterV1().Router)(address, grpc.credentials.createInsecure());
  });
  afterAll(async () => {
    client.close();
    await new Promise<void>((r) => server.tryShutdown(() => r()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('AddRoute, ListRoutes with connected and static origins', async () => {
    expect(
      await call(client.AddRoute.bind(client), {
        route: { prefix: '172.16.0.0/12', nextHop: '10.0.1.254' },
      }),
    ).toEqual({ generation: '2', routeCount: 1 });
    const { routes } = await call(client.ListRoutes.bind(client), {});
    expect(routes).toEqual([
      { prefix: '10.0.1.0/24', nextHop: '', interface: 'net1', origin: 'connected' },
      { prefix: '172.16.0.0/12', nextHop: '10.0.1.254', interface: 'net1', origin: 'static' },
    ]);
  });

  it('maps errors to statuses that name the field', async () => {
    const bad = await failure(client.AddRoute.bind(client), {
      route: { prefix: '172.16.0.0/33', nextHop: '10.0.1.254' },
    });
    expect(bad).toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      details: expect.stringMatching(/^route\.prefix: /),
    });
    expect(await failure(client.AddRoute.bind(client), {})).toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      details: 'route: is required',
    });
    expect(
      await failure(client.AddRoute.bind(client), {
        route: { prefix: '172.16.0.0/12', nextHop: '10.0.1.253' },
      }),
    ).toMatchObject({ code: grpc.status.ALREADY_EXISTS });
    expect(await failure(client.DeleteRoute.bind(client), { prefix: '10.0.1.0/24' })).toMatchObject(
      { code: grpc.status.FAILED_PRECONDITION },
    );
    expect(await failure(client.DeleteRoute.bind(client), { prefix: '10.8.0.0/16' })).toMatchObject(
      { code: grpc.status.NOT_FOUND },
    );
  });

  it('ListNeighbors shows state and age; GetCounters merges dataplane and slow path', async () => {
    cp.handlePunt(
      arpFrame({
        op: 'reply',
        senderMac: '02:00:00:00:0b:01',
        senderIp: '10.0.1.254',
        targetMac: '02:00:00:00:01:01',
        targetIp: '10.0.1.1',
      }),
      'net1',
      'arp',
    );
    const { neighbors } = await call(client.ListNeighbors.bind(client), {});
    expect(neighbors).toContainEqual({
      address: '10.0.1.254',
      mac: '02:00:00:00:0b:01',
      interface: 'net1',
      state: 'REACHABLE',
      ageMs: '1500',
    });
    const c = await call(client.GetCounters.bind(client), {});
    expect(c).toMatchObject({
      forwarded: '42',
      noRoute: '3',
      arpRequestsSent: '1',
      droppedByReason: { no_route: '3' },
    });
  });

  it('GetCounters counts packets too big for their MTU and not fragmented among the drops', async () => {
    cp.counters.tooBig = 5n;
    cp.counters.fragmented = 2n;
    cp.counters.icmpTooBigSent = 3n;
    cp.counters.fragmentsSent = 4n;
    try {
      const c = await call(client.GetCounters.bind(client), {});
      expect(c.droppedByReason).toEqual({ no_route: '3', too_big: '3' });
      expect(c).toMatchObject({
        tooBig: '5',
        icmpTooBigSent: '3',
        fragmented: '2',
        fragmentsSent: '4',
      });
    } finally {
      cp.counters.tooBig = 0n;
      cp.counters.fragmented = 0n;
      cp.counters.icmpTooBigSent = 0n;
      cp.counters.fragmentsSent = 0n;
    }
  });

  it('AddRoute into a full table is INVALID_ARGUMENT naming routes', async () => {
    const kept = cp.statics.list();
    // fill the table to the cap directly (building it route by route is limits.test.ts's job)
    const filler = Array.from({ length: MAX_ROUTES - kept.length }, (_, i) =>
      validateRoute(
        { prefix: `100.${64 + (i >> 8)}.${i & 255}.0/24`, nextHop: '10.0.1.254' },
        cp.interfaces,
        'route',
      ),
    );
    cp.statics.replaceAll([...kept, ...filler]);
    try {
      const err = await failure(client.AddRoute.bind(client), {
        route: { prefix: '198.51.100.0/24', nextHop: '10.0.1.254' },
      });
      expect(err?.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(err?.details).toMatch(new RegExp(`^routes: ${MAX_ROUTES + 1} static routes, over`));
    } finally {
      cp.statics.replaceAll(kept);
    }
  });
});
