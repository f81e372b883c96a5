import { type FlowResults, type TrafficResults, bucketOf, bucketRange } from '@flowline/dpdk';
import { describe, expect, it } from 'vitest';
import { histogramQuantileNs, perSecond, resultsMessage, totalsOf } from './results';

const flow = (over: Partial<FlowResults>): FlowResults => ({
  flow: 0,
  txPackets: 0,
  txBytes: 0,
  txDone: false,
  rxPackets: 0,
  rxBytes: 0,
  expected: 0,
  lost: 0,
  duplicates: 0,
  reordered: 0,
  late: 0,
  txSeconds: 1,
  rxSeconds: 1,
  ...over,
});

describe('results math', () => {
  it('rates are per second over the time given, 0 before any time passed', () => {
    expect(perSecond(1000, 0.5)).toBe(2000);
    expect(perSecond(1000, 0)).toBe(0);
  });

  it("a finished count-limited run's rates are over its sending time, however late they are read", () => {
    // 1,000,000 packets sent in 2 s, read 60 s after the start: 500,000 pps, not 16,667
    const done = flow({
      txPackets: 1e6,
      rxPackets: 1e6,
      txDone: true,
      txSeconds: 2,
      rxSeconds: 2.5,
    });
    const m = resultsMessage({
      runId: 1,
      state: 'RUNNING',
      elapsedMs: 60_000,
      names: ['a'],
      results: {
        running: true,
        txDone: true,
        flows: [done],
        rxUntagged: 0,
        rxForeign: 0,
        txBackpressure: 0,
        allocFailed: 0,
        sleeps: 0,
        tscHz: 1e9,
        elapsedSeconds: 60,
      },
    });
    expect(m.flows![0]).toMatchObject({ txPps: 500_000, rxPps: 400_000 });
    expect(m.totals).toMatchObject({ txPps: 500_000, rxPps: 400_000 });
  });

  it('totals add the flows; the loss ratio is lost over expected; bits count frame bytes', () => {
    const t = totalsOf([
      flow({
        txPackets: 100,
        txBytes: 6400,
        rxPackets: 90,
        rxBytes: 5760,
        expected: 100,
        lost: 10,
      }),
      flow({
        flow: 1,
        txPackets: 300,
        txBytes: 30000,
        rxPackets: 302,
        rxBytes: 30200,
        expected: 300,
        duplicates: 2,
        reordered: 5,
        txSeconds: 2,
        rxSeconds: 2,
      }),
    ]);
    expect(t).toEqual({
      txPackets: 400,
      txBytes: 36400,
      rxPackets: 392,
      rxBytes: 35960,
      lost: 10,
      duplicates: 2,
      reordered: 5,
      expected: 400,
      lossRatio: 10 / 400,
      txPps: 200,
      rxPps: 196,
      txBps: (36400 * 8) / 2,
      rxBps: (35960 * 8) / 2,
    });
    expect(totalsOf([]).lossRatio).toBe(0);
  });

  it('builds the proto message: uint64 as decimal strings, names by flow, latency only when measured', () => {
    const results: TrafficResults = {
      running: true,
      txDone: false,
      flows: [
        flow({
          txPackets: 10,
          rxPackets: 10,
          expected: 10,
          latency: { samples: 10, minNs: 100, meanNs: 150, p50Ns: 140, p99Ns: 190, maxNs: 200 },
        }),
        flow({ flow: 1, rxPackets: 0 }),
        flow({ flow: 2, rxPackets: 3, expected: 3 }),
      ],
      rxUntagged: 4,
      rxForeign: 1,
      txBackpressure: 2 ** 40,
      allocFailed: 0,
      sleeps: 7,
      tscHz: 2e9,
      elapsedSeconds: 1,
    };
    const m = resultsMessage({
      runId: 3,
      state: 'RUNNING',
      elapsedMs: 1000,
      names: ['a', 'b'],
      results,
    });
    expect(m).toMatchObject({
      runId: 3,
      state: 'RUNNING',
      txDone: false,
      elapsedMs: '1000',
      rxUntagged: '4',
      rxForeign: '1',
      txBackpressure: '1099511627776',
      totals: { txPackets: '10', rxPackets: '13', lost: '0', lossRatio: 0, rxPps: 13 },
    });
    expect(m.flows!.map((f) => f.name)).toEqual(['a', 'b', 'flow-2']);
    expect(m.flows![0]).toMatchObject({
      txPackets: '10',
      rxPps: 10,
      latency: { samples: '10', p50Ns: 140, p99Ns: 190, maxNs: 200 },
    });
    expect(m.flows![1]!.latency).toBeUndefined();
  });

  it('an idle NF has an empty result', () => {
    expect(resultsMessage({ runId: 0, state: 'IDLE', elapsedMs: 0, names: [] })).toMatchObject({
      state: 'IDLE',
      flows: [],
      totals: { txPackets: '0', lossRatio: 0 },
    });
  });

  it('p90 per flow and p50/p90/p99 over all flows come from the histograms', () => {
    // tscHz 1e9: a cycle is a ns. Flow 0: 80 at ~1000 ns, 20 at ~8000 ns; flow 1: 100 at ~2000 ns.
    const h0 = new Float64Array(1024);
    const h1 = new Float64Array(1024);
    h0[bucketOf(1000)] = 80;
    h0[bucketOf(8000)] = 20;
    h1[bucketOf(2000)] = 100;
    const mid = (v: number): number => {
      const { low, width } = bucketRange(bucketOf(v));
      return low + (width - 1) / 2;
    };
    const lat = (minNs: number, maxNs: number) => ({
      samples: 100,
      minNs,
      meanNs: 0,
      p50Ns: 0,
      p99Ns: 0,
      maxNs,
    });
    const flows = [
      flow({ rxPackets: 100, latency: lat(990, 8100) }),
      flow({ flow: 1, rxPackets: 100, latency: lat(1990, 2100) }),
    ];
    const results = { flows, tscHz: 1e9 } as TrafficResults; // only these are read
    const m = resultsMessage({
      runId: 1,
      state: 'STOPPED',
      elapsedMs: 1000,
      names: ['a', 'b'],
      results,
      histograms: [h0, h1],
    });
    expect(m.flows![0]!.latency!.p90Ns).toBe(mid(8000));
    expect(m.flows![1]!.latency!.p90Ns).toBe(mid(2000));
    // Together: 80 at 1000, 100 at 2000, 20 at 8000 of 200.
    expect(m.totals!.latency).toMatchObject({
      samples: '200',
      minNs: 990,
      maxNs: 8100,
      p50Ns: mid(2000),
      p90Ns: mid(2000),
      p99Ns: mid(8000),
    });
    expect(histogramQuantileNs(new Float64Array(8), 0.5, 1e9, 0, 1)).toBeUndefined();
  });
});
