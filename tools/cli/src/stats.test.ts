// How chain counters are shown: `flowline stats` (hops, and each crossing between nodes with its
// rate) and `flowline chain list`; and the collector reading them from a ChainService over
// mutual TLS.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { chainV1, loadNetworkFunctionV1 } from '@flowline/proto';
import { LocalPki, certificatesLoaded, serverCredentials } from '@flowline/grpc-auth';
import { afterAll, describe, expect, it } from 'vitest';
import { OperatorCredentials } from './clients';
import { renderChainList } from './main';
import { CONTROLLER, type StatsView, StatsCollector, crossingRows, renderStats } from './stats';

/** A chain as ListChains returns it (every field set, as the loader's defaults do). */
function chain(
  name: string,
  hops: [nf: string, packets: number][],
  crossings: chainV1.TunnelCrossing__Output[],
): chainV1.Chain__Output {
  return {
    name,
    generation: '1',
    spec: {
      classifier: null,
      hops: hops.map(([nf]) => ({
        nf,
        ingressInterface: 'net1',
        egressInterface: 'net2',
        config: null,
      })),
      egressPort: '',
      failurePolicy: 'FAILURE_POLICY_UNSPECIFIED',
      bidirectional: false,
      priority: 0,
    },
    status: {
      phase: 'ACTIVE',
      message: 'programmed; every hop healthy',
      classifiedPackets: String(hops[0]?.[1] ?? 0),
      updatedUnixNanos: '0',
      hops: hops.map(([nf, packets]) => ({
        nf,
        healthy: true,
        message: '',
        ingressOvsPort: '',
        egressOvsPort: '',
        packets: String(packets),
      })),
      crossings,
    },
  };
}

/** gen (node-a) → fw (node-a) → rtr (node-b) → sink (node-a). */
const cross = (fwToRtr: number, rtrToSink: number): chainV1.Chain__Output =>
  chain(
    'cross',
    [
      ['default/fw', fwToRtr],
      ['default/rtr', fwToRtr],
    ],
    [
      {
        step: 1,
        fromNode: 'node-a',
        toNode: 'node-b',
        tunnelPort: 'gnv-node-b',
        packets: String(fwToRtr),
        reverse: false,
        oversizeDrops: '0',
      },
      {
        step: 2,
        fromNode: 'node-b',
        toNode: 'node-a',
        tunnelPort: '',
        packets: String(rtrToSink),
        reverse: false,
        oversizeDrops: '4',
      },
    ],
  );

/** A chain on one node: no crossings. */
const local = chain('local', [['default/fw', 5]], []);

describe('flowline stats', () => {
  const view = (crossings: StatsView['crossings']): StatsView => ({
    at: 0,
    ports: [],
    drops: {},
    hops: [
      { chain: 'cross', hop: 'default/fw', healthy: true, packets: 2000, mpps: 0.002 },
      { chain: 'cross', hop: 'default/rtr', healthy: true, packets: 2000, mpps: 0.002 },
    ],
    crossings,
    chains: [{ name: 'cross', phase: 'ACTIVE', classified: 2000 }],
    errors: {},
  });

  it('shows each crossing under the hops: from → to, step, tunnel port, packets, Mpps', () => {
    const rows = crossingRows([cross(2000, 1999), local]).map((c, i) => ({
      ...c,
      mpps: [0.002, 0.0015][i]!,
    }));
    expect(renderStats(view(rows)).split('\n\n').slice(0, 2)).toEqual([
      [
        'chain          hop  healthy  packets   Mpps',
        '-----  -----------  -------  -------  -----',
        'cross   default/fw      yes     2000  0.002',
        'cross  default/rtr      yes     2000  0.002',
      ].join('\n'),
      [
        'chain         crossing  step  tunnel port  packets  too long   Mpps',
        '-----  ---------------  ----  -----------  -------  --------  -----',
        'cross  node-a → node-b     1   gnv-node-b     2000         0  0.002',
        'cross  node-b → node-a     2            ?     1999         4  0.002',
      ].join('\n'),
    ]);
  });

  it("marks a bidirectional chain's reverse crossings", () => {
    const both = chain(
      'both',
      [['default/fw', 7]],
      [
        {
          step: 1,
          fromNode: 'a',
          toNode: 'b',
          tunnelPort: 'gnv-b',
          packets: '7',
          reverse: false,
          oversizeDrops: '0',
        },
        {
          step: 1,
          fromNode: 'b',
          toNode: 'a',
          tunnelPort: 'gnv-a',
          packets: '3',
          reverse: true,
          oversizeDrops: '0',
        },
      ],
    );
    const rows = crossingRows([both]);
    expect(rows.map((r) => [r.reverse, r.packets])).toEqual([
      [false, 7],
      [true, 3],
    ]);
    expect(renderStats(view(rows)).split('\n\n')[1]!.split('\n').slice(2)).toEqual([
      'both             a → b     1        gnv-b        7         0  0.000',
      'both   b → a (reverse)     1        gnv-a        3         0  0.000',
    ]);
  });

  it('has no crossing table when no chain crosses nodes', () => {
    const text = renderStats(view(crossingRows([local])));
    expect(text).not.toMatch(/crossing/);
    expect(text.split('\n\n')).toHaveLength(2); // hops, ports
  });
});

describe('flowline chain list', () => {
  it('lists the chains, then the crossings of those that span nodes', () => {
    expect(renderChainList([cross(2000, 1999), local])).toBe(
      [
        'name    phase                      hops  classified                        message',
        '-----  ------  ------------------------  ----------  -----------------------------',
        'cross  ACTIVE  default/fw → default/rtr        2000  programmed; every hop healthy',
        'local  ACTIVE                default/fw           5  programmed; every hop healthy',
        '',
        'chain         crossing  step  tunnel port  packets  too long',
        '-----  ---------------  ----  -----------  -------  --------',
        'cross  node-a → node-b     1   gnv-node-b     2000         0',
        'cross  node-b → node-a     2            ?     1999         4',
      ].join('\n'),
    );
  });

  it('is the chains table alone when none crosses nodes', () => {
    expect(renderChainList([local]).split('\n')).toHaveLength(3);
  });
});

describe('StatsCollector', () => {
  const work = mkdtempSync(join(tmpdir(), 'flowline-cli-stats-'));
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it("reads each chain's crossings from ListChains, with their rate between two reads", async () => {
    let listed = cross(1000, 1000);
    const server = new grpc.Server();
    server.addService(chainV1.loadChainV1().ChainService.service, {
      ListChains: (_call: unknown, cb: (e: null, r: { chains: chainV1.Chain__Output[] }) => void) =>
        cb(null, { chains: [listed, local] }),
    });
    const address = `unix://${join(work, 'cc.sock')}`;
    // Mutual TLS as the controller serves it: its certificate, the operator's for the CLI.
    const pki = new LocalPki(join(work, 'pki'));
    const controllerTls = pki.controller();
    await certificatesLoaded(controllerTls);
    await new Promise<void>((ok, ko) =>
      server.bindAsync(
        address,
        serverCredentials(controllerTls, { warn: () => undefined }, 'stand-in ChainService'),
        (e) => (e ? ko(e) : ok()),
      ),
    );
    const collector = new StatsCollector(
      [],
      address,
      new OperatorCredentials(pki.operator(), 'flowline'),
    );
    try {
      const first = await collector.read();
      expect(first.crossings).toEqual([
        {
          chain: 'cross',
          from: 'node-a',
          to: 'node-b',
          step: 1,
          tunnelPort: 'gnv-node-b',
          packets: 1000,
          mpps: 0,
          oversizeDrops: 0,
          reverse: false,
        },
        {
          chain: 'cross',
          from: 'node-b',
          to: 'node-a',
          step: 2,
          tunnelPort: '',
          packets: 1000,
          mpps: 0,
          oversizeDrops: 4,
          reverse: false,
        },
      ]);
      listed = cross(3000, 2000);
      await new Promise((r) => setTimeout(r, 50));
      const second = await collector.read();
      const seconds = (second.at - first.at) / 1000;
      expect(second.crossings.map((c) => [c.step, c.packets, c.mpps])).toEqual([
        [1, 3000, 2000 / seconds / 1e6],
        [2, 2000, 1000 / seconds / 1e6],
      ]);
    } finally {
      collector.close();
      await new Promise<void>((ok) => server.tryShutdown(() => ok()));
    }
  });

  it("says who does not answer, drops a broken stream's rows and opens it again", async () => {
    const pki = new LocalPki(join(work, 'pki-nf'));
    const nfTls = pki.nf('default', 'fw');
    await certificatesLoaded(nfTls);
    const address = `unix://${join(work, 'fw.sock')}`;
    let packets = 0;
    const start = async (): Promise<grpc.Server> => {
      const server = new grpc.Server();
      server.addService(loadNetworkFunctionV1().NetworkFunction.service, {
        WatchStats: (call: grpc.ServerWritableStream<unknown, unknown>) => {
          const tick = setInterval(() => {
            packets += 1000;
            call.write({ ports: [{ name: 'net1', rxPackets: String(packets), txPackets: '0' }] });
          }, 100);
          call.on('cancelled', () => clearInterval(tick));
          call.on('close', () => clearInterval(tick));
        },
      });
      await new Promise<void>((ok, ko) =>
        server.bindAsync(
          address,
          serverCredentials(nfTls, { warn: () => undefined }, 'stand-in NF'),
          (e) => (e ? ko(e) : ok()),
        ),
      );
      return server;
    };
    // No NF yet, and a controller address nothing listens on.
    const collector = new StatsCollector(
      [{ name: 'default/fw', grpcAddress: address }],
      `unix://${join(work, 'no-controller.sock')}`,
      new OperatorCredentials(pki.operator(), 'flowline'),
      100,
    );
    const until = async (ok: (v: StatsView) => boolean): Promise<StatsView> => {
      for (let i = 0; i < 100; i++) {
        const v = await collector.read();
        if (ok(v)) return v;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error('timed out');
    };
    let server: grpc.Server | undefined;
    try {
      const down = await until((v) => v.errors['default/fw'] !== undefined);
      expect(down.errors['default/fw']).toMatch(/^UNAVAILABLE/);
      expect(down.errors[CONTROLLER]).toMatch(/^UNAVAILABLE/);
      expect(down.ports).toEqual([]);
      expect(renderStats(down)).toContain('not answering');
      // The NF comes up: its stream is opened again, its rows come, its error goes.
      server = await start();
      const up = await until((v) => v.ports.length > 0 && v.ports[0]!.rxMpps > 0);
      expect(up.errors['default/fw']).toBeUndefined();
      // It goes away: no rows from its old samples, its error again.
      server.forceShutdown();
      server = undefined;
      const gone = await until((v) => v.errors['default/fw'] !== undefined);
      expect(gone.ports).toEqual([]);
    } finally {
      collector.close();
      server?.forceShutdown();
    }
  });
});
