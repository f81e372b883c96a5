import { describe, expect, it } from 'vitest';
import { parseDumpFlows, parseDumpPorts } from './openflow';

describe('parseDumpFlows', () => {
  it('reads counters, priority, match and actions', () => {
    const text = [
      'OFPST_FLOW reply (OF1.4) (xid=0x2):',
      ' cookie=0x5, duration=12.345s, table=0, n_packets=42, n_bytes=2688, idle_age=1, priority=100,in_port=1 actions=output:2',
      ' cookie=0x0, duration=1.001s, table=0, n_packets=0, n_bytes=0, in_port=2,dl_type=0x0800 actions=drop',
    ].join('\n');
    expect(parseDumpFlows(text)).toEqual([
      {
        cookie: '0x5',
        table: 0,
        priority: 100,
        durationSec: 12.345,
        nPackets: 42,
        nBytes: 2688,
        match: 'in_port=1',
        actions: 'output:2',
      },
      {
        cookie: '0x0',
        table: 0,
        priority: 32768,
        durationSec: 1.001,
        nPackets: 0,
        nBytes: 0,
        match: 'in_port=2,dl_type=0x0800',
        actions: 'drop',
      },
    ]);
  });
});

describe('parseDumpPorts', () => {
  it('reads rx and tx counters per port, LOCAL included', () => {
    const text = `OFPST_PORT reply (xid=0x2): 2 ports
  port  1: rx pkts=10, bytes=640, drop=0, errs=0, frame=0, over=0, crc=0
           tx pkts=3, bytes=192, drop=1, errs=0, coll=0
  port LOCAL: rx pkts=0, bytes=0, drop=0, errs=0, frame=0, over=0, crc=0
           tx pkts=?, bytes=?, drop=5, errs=0, coll=0
`;
    expect(parseDumpPorts(text)).toEqual([
      {
        port: 1,
        rxPackets: 10,
        rxBytes: 640,
        rxDropped: 0,
        txPackets: 3,
        txBytes: 192,
        txDropped: 1,
      },
      {
        port: 'LOCAL',
        rxPackets: 0,
        rxBytes: 0,
        rxDropped: 0,
        txPackets: 0,
        txBytes: 0,
        txDropped: 5,
      },
    ]);
  });
});
