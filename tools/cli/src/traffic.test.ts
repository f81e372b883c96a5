import type { trafficGenV1 } from '@flowline/proto';
import { describe, expect, it } from 'vitest';
import {
  TrafficSpecError,
  buildStartRequest,
  flowRows,
  parseFlowsFile,
  renderResults,
  sendingTimeMs,
} from './traffic';

const FILE = `totalRatePps: 9000
rx_ports: [net2]
flows:
  - { name: web, txPort: net1, srcIp: 10.1.0.10, dstIp: 10.2.0.10, dst_port: 80, count: 300 }
  - { name: dns, txPort: net1, srcIp: 10.1.0.10, dstIp: 10.2.0.10, dstPort: 53, count: 600, ratePps: 5 }
`;

describe('traffic flows from a file and flags', () => {
  it('reads the StartRequest with snake_case or camelCase names', () => {
    const req = parseFlowsFile(FILE, 'f.yaml');
    expect(req.totalRatePps).toBe(9000);
    expect(req.rxPorts).toEqual(['net2']);
    expect(req.flows!.map((f) => [f.name, f.dstPort, f.count])).toEqual([
      ['web', 80, 300],
      ['dns', 53, 600],
    ]);
  });

  it('names an unknown field, with the fields there are', () => {
    expect(() => parseFlowsFile('flows: [{ dst_prot: 80 }]', 'f.yaml')).toThrow(
      /^f\.yaml: flows\[0\]\.dst_prot: not a field \(fields: name, txPort, /,
    );
    expect(() => parseFlowsFile('flow: []', 'f.yaml')).toThrow(/f\.yaml\.flow: not a field/);
    expect(() => parseFlowsFile('flows: []', 'f.yaml')).toThrow(/at least one flow/);
    expect(() => parseFlowsFile('flows: [', 'f.yaml')).toThrow(TrafficSpecError);
  });

  it('--rate, --count, --size and the ports apply to every flow of the file', () => {
    const req = buildStartRequest(
      { text: FILE, source: 'f.yaml' },
      { rate: '20000', count: '1000', size: 'imix', txPort: 'net3', rxPort: ['net4'] },
    );
    expect(req.totalRatePps).toBe(20000);
    expect(req.rxPorts).toEqual(['net4']);
    for (const f of req.flows!)
      expect(f).toMatchObject({ count: 1000, imix: true, frameSize: 0, txPort: 'net3' });
    // The total rate replaces a flow's own (the generator refuses both together).
    expect(req.flows![1]!.ratePps).toBeUndefined();
    expect(buildStartRequest({ text: FILE, source: 'f' }, { size: '512' }).flows![0]).toMatchObject(
      { frameSize: 512, imix: false },
    );
  });

  it('makes one flow from flags alone, and says what is missing or wrong', () => {
    expect(
      buildStartRequest(undefined, {
        srcIp: '10.1.0.10',
        dstIp: '10.2.0.10',
        dstPort: '80',
        protocol: 'tcp',
        rate: '100',
        count: '5',
      }),
    ).toEqual({
      flows: [
        {
          name: 'flow-0',
          srcIp: '10.1.0.10',
          dstIp: '10.2.0.10',
          protocol: 'TCP',
          dstPort: 80,
          count: 5,
        },
      ],
      totalRatePps: 100,
    });
    expect(() => buildStartRequest(undefined, { dstIp: '10.2.0.10' })).toThrow(/--src-ip/);
    expect(() => buildStartRequest(undefined, { srcIp: 'a', dstIp: 'b', size: '9000' })).toThrow(
      '--size: "9000" is not a frame size (64..1518) or imix',
    );
    expect(() => buildStartRequest(undefined, { srcIp: 'a', dstIp: 'b', rate: '-1' })).toThrow(
      /--rate/,
    );
    expect(() => buildStartRequest({ text: FILE, source: 'f' }, { dstPort: '80' })).toThrow(
      /--dst-port describes a flow of its own/,
    );
  });

  it('knows how long count-limited flows take to send, and that unlimited ones never end', () => {
    // 9000 pps over two flows: 4500 each; the longer flow (600) takes 133 ms.
    expect(sendingTimeMs(parseFlowsFile(FILE, 'f'))).toBeCloseTo((600 / 4500) * 1000);
    expect(sendingTimeMs({ flows: [{ count: 10, ratePps: 5 }] })).toBe(2000);
    expect(sendingTimeMs({ flows: [{ count: 0 }], totalRatePps: 10 })).toBeUndefined();
  });
});

describe('traffic results', () => {
  const results = {
    runId: 4,
    state: 'RUNNING',
    txDone: true,
    elapsedMs: '2500',
    flows: [
      {
        name: 'web',
        txPackets: '1000',
        rxPackets: '998',
        duplicates: '1',
        lost: '3',
        latency: { p50Ns: 12_500, p99Ns: 80_000 },
      },
      { name: 'telnet', txPackets: '1000', rxPackets: '0', duplicates: '0', lost: '0' },
    ],
    totals: { txPackets: '2000', rxPackets: '998', txPps: 800 },
  } as unknown as trafficGenV1.Results__Output;

  it('per flow: sent, received (without duplicates), not received, loss %, p50/p99', () => {
    expect(flowRows(results)).toEqual([
      {
        name: 'web',
        sent: 1000,
        received: 997,
        notReceived: 3,
        lossPercent: 0.3,
        sequenceGaps: 3,
        p50Us: 12.5,
        p99Us: 80,
      },
      {
        name: 'telnet',
        sent: 1000,
        received: 0,
        notReceived: 1000,
        lossPercent: 100,
        sequenceGaps: 0,
      },
    ]);
    expect(renderResults('default/gen', results).split('\n')).toEqual([
      'default/gen: run 4 RUNNING (all sent), 2.5 s; sent 2000, received 998',
      'flow    sent  received  not received  loss %  p50 µs  p99 µs',
      '------  ----  --------  ------------  ------  ------  ------',
      'web     1000       997             3    0.30    12.5    80.0',
      'telnet  1000         0          1000  100.00       -       -',
    ]);
  });
});
