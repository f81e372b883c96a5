import { describe, expect, it } from 'vitest';

import { abComparison, lcoreRoundTrip, renderReport, type CaseResult, type Report } from './report';
import type { PhaseGateSummary } from '../dpdk/headroom';

const base: Report = {
  benchmark: 'flowline-nf-bound',
  date: '2026-12-05T00:00:00.000Z',
  seconds: 1,
  tscHz: 2.6e9,
  frameBytes: { ipv4: 64, ipv6: 66 },
  rounds: 3,
  windowMs: 1000,
  burst: 32,
  flows: 65_536,
  bigFlows: 1_048_576,
  results: [],
  aclBuild: [],
  vhost: undefined,
  failures: [],
};

describe('report: --ab-addon comparison', () => {
  it("prints this build's Mpps over the other build's per case: the median of per-round ratios and their spread", () => {
    // rounds: this build 11, 12, 9 Mpps against the other build's 10 each (and a fourth round
    // that only this build finished, which is left out)
    const mine = [11, 12, 9, 50].map((mpps) => ({ mpps }));
    const other = [10, 10, 10].map((mpps) => ({ mpps }));
    const { table } = renderReport({
      ...base,
      abCompare: [abComparison('ct64k', '/tmp/old.node', mine, other)],
    });
    expect(table).toContain(
      'ct64k: this build / /tmp/old.node = 1.100 (median of 3 per-round ratios, 0.900..1.200)',
    );
  });

  it('prints no comparison line without --ab-addon', () => {
    expect(renderReport(base).table).not.toContain('this build /');
  });
});

describe('report: the vhost-user part', () => {
  it("prints each case's NF cycles a packet next to its ratio, and nothing for an NF without them", () => {
    const row = (label: string, nfCycles?: object) => ({
      label,
      candidateMedian: 13.91,
      referenceMedian: 16.03,
      ratio: 0.868,
      target: 0.85,
      met: true,
      countedRounds: 5,
      triedRounds: 24,
      ...(nfCycles ? { nfCycles } : {}),
    });
    const { table } = renderReport({
      ...base,
      vhost: {
        results: [
          {
            ...row('(b) pipeline ACL, 1,000 rules', {
              total: 231.7,
              rx: 79.7,
              parse: 14.9,
              stages: [12.3, 0],
              tx: 124.8,
            }),
            ratioInterval: { lo: 0.8512, hi: 0.8899, coverage: 1 - 18 / 256 },
          },
          row('(b2) pipeline ACL, no interval', {
            total: 231.7,
            rx: 79.7,
            parse: 14.9,
            stages: [12.3, 0],
            tx: 124.8,
          }),
          row('(d) pure-JS forwarder'),
        ],
        control: { note: 'sensitivity control: the NF sets the rate' },
      },
    });
    const lines = table.split('\n');
    const acl = lines.find((l) => l.startsWith('(b) pipeline ACL'))!;
    expect(acl).toMatch(
      /0\.868 +0\.85\.\.0\.89 \(92 %\) +>= 0\.85: met +232 \(80\+15\+12\+0\+125\)$/,
    );
    const noInterval = lines.find((l) => l.startsWith('(b2) pipeline ACL'))!;
    expect(noInterval).toMatch(/0\.868 +>= 0\.85: met +232/);
    expect(lines.find((l) => l.startsWith('(d) pure-JS'))!).toMatch(/>= 0\.85: met\s*$/);
    expect(table).not.toMatch(/phase gate/);
  });

  // a vhost part with no rows: only its control and gate lines
  const gateTable = (phaseGate: PhaseGateSummary): string =>
    renderReport({
      ...base,
      vhost: {
        results: [],
        control: { note: 'sensitivity control: the NF sets the rate' },
        phaseGate,
      },
    }).table;

  it("reports the phase gate's probes and waiting when the run had it", () => {
    expect(gateTable({ probes: 81, waitedMs: 84_640, budgetMs: 331_500, sessionsCut: 1 })).toMatch(
      /the NF sets the rate\nphase gate: 81 probes of the reference, 84\.6 s spent waiting.*; time budget 332 s: 1 sessions stopped at their share\n/,
    );
  });

  it("names the vhost-user links' virtqueues: the run's, or split for a run that did not say", () => {
    const heading = (ring?: string): string | undefined =>
      renderReport({ ...base, vhost: { results: [], ...(ring ? { ring } : {}) } })
        .table.split('\n')
        .find((l) => l.startsWith('vhost-user topology'));
    expect(heading('packed')).toMatch(/; packed virtqueues\):$/);
    expect(heading()).toMatch(/; split virtqueues\):$/);
  });

  it('says the gate was off when the run had it off', () => {
    expect(gateTable({ waitMaxMs: 0, probes: 0, waitedMs: 0 })).toMatch(
      /the NF sets the rate\nphase gate: off \(--gate-wait-ms 0\)\n/,
    );
  });
});

describe('report: the footer', () => {
  it("says over how many sessions of fresh processes phase A's rounds ran", () => {
    expect(renderReport({ ...base, sessions: 3 }).table).toContain(
      "(1 s, 3 interleaved rounds of 1000 ms windows, phase A's over 3 sessions of fresh processes, TSC 2.60 GHz)",
    );
    expect(renderReport(base).table).toContain(
      '(1 s, 3 interleaved rounds of 1000 ms windows, TSC 2.60 GHz)',
    );
  });
});

describe("report: OVS's fast path", () => {
  it('leaves a ratio to an OVS that was off its fast path unjudged, and says why', () => {
    const results: CaseResult[] = [
      {
        id: 'acl10k',
        label: 'Flowline ACL 10,000 rules',
        phase: 'A',
        peer: 'flowline',
        mpps: 12.76,
        mppsMin: 11.8,
        mppsMax: 13.21,
        cyclesPerPacket: 165,
        ovs: 'ovs-acl10k',
        ovsRatio: 280.8,
        target: { ovs: 4 },
        ovsUnsteady: 'OVS had upcalls in 5 of 5 windows',
        samples: [12.76],
      },
      {
        id: 'ct64k',
        label: 'Flowline conntrack + ACL 1k, 65,536 flows',
        phase: 'A',
        peer: 'flowline',
        mpps: 20.19,
        mppsMin: 19.14,
        mppsMax: 20.37,
        cyclesPerPacket: 104,
        ovs: 'ovs-ct',
        ovsRatio: 406.8,
        target: { ovs: 8, mpps: 15 },
        ovsUnsteady: 'OVS had upcalls in 4 of 5 windows',
        met: true,
        samples: [20.19],
      },
      {
        id: 'ovs-acl10k',
        label: 'OVS-DPDK ACL 10,000 rules (OpenFlow)',
        phase: 'A',
        peer: 'ovs',
        mpps: 0.05,
        mppsMin: 0.04,
        mppsMax: 0.08,
        cyclesPerPacket: 45_435,
        check: {
          windows: 5,
          windowsWithUpcalls: 5,
          warmupMpps: 0.63,
          ofWarmup: 0.08,
          steady: false,
        },
        samples: [0.05],
      },
    ];
    const lines = renderReport({ ...base, results }).table.split('\n');
    const line = (label: string): string => lines.find((l) => l.includes(label)) ?? '';
    expect(line('Flowline ACL 10,000')).toContain(
      '>= 4x OVS: not measured (OVS had upcalls in 5 of 5 windows)',
    );
    expect(line('Flowline ACL 10,000')).not.toMatch(/: (NOT )?met|OVS: \?/);
    expect(line('conntrack')).not.toContain('>= 8x OVS, ');
    expect(line('conntrack')).toContain(
      '>= 15 Mpps: met; >= 8x OVS: not measured (OVS had upcalls in 4 of 5 windows)',
    );
    expect(line('OVS-DPDK ACL 10,000')).toContain(
      'upcalls in 5 of 5 windows, warm-up 0.63 Mpps (windows at 0.08 of it), NOT at its speed: ratios to it not judged',
    );
  });
});

describe('report: the processor', () => {
  it('names the processor the run was on, last, and nothing when the report has none', () => {
    const cpu = {
      model: 'Intel(R) Xeon(R) Processor',
      id: 'family 6 model 167 stepping 1',
      cpus: 2,
      caches: [{ level: 2, type: 'Unified', size: '2048K', sharedWith: '0' }],
    };
    const lines = renderReport({ ...base, cpu }).table.split('\n');
    expect(lines.at(-1)).toBe(
      'processor: Intel(R) Xeon(R) Processor (family 6 model 167 stepping 1), 2 CPUs, L2 2048K (CPUs 0)',
    );
    expect(renderReport(base).table).not.toContain('processor:');
  });

  it("gives a cache line's round trip between the NF's lcores, the median over its processes", () => {
    const rt = lcoreRoundTrip([998, 943, 962], 2.1e9);
    expect(rt).toEqual({ cycles: 962, min: 943, max: 998, ns: 962 / 2.1, processes: 3 });
    expect(renderReport({ ...base, lcoreRoundTrip: rt }).table.split('\n')).toContain(
      "core to core: a cache line's round trip between the NF's two lcores took 962 cycles (458 ns; median of 3 NF processes, 943..998)",
    );
    expect(lcoreRoundTrip([], 2.1e9)).toBeUndefined();
    expect(lcoreRoundTrip([950], 0)).toBeUndefined();
    expect(renderReport(base).table).not.toContain('core to core');
  });
});
