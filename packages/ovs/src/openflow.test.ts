import { describe, expect, it } from 'vitest';
import { OpenFlow, parseDumpFlows, parseDumpPorts, parseMeterStats } from './openflow';

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

describe('parseMeterStats', () => {
  it("reads each meter's packets and bytes in (as ovs-vswitchd-dpdk 3.1 prints them)", () => {
    const text = `OFPST_METER reply (OF1.4) (xid=0x2):
meter:7 flow_count:1 packet_in_count:50 byte_in_count:75700 duration:1.089s bands:
0: packet_count:0 byte_count:0

meter:12 flow_count:1 packet_in_count:200 byte_in_count:288400 duration:1.083s bands:
0: packet_count:0 byte_count:0
`;
    expect(parseMeterStats(text)).toEqual([
      { meterId: 7, packets: 50, bytes: 75700 },
      { meterId: 12, packets: 200, bytes: 288400 },
    ]);
    expect(parseMeterStats('OFPST_METER reply (OF1.4) (xid=0x2):\n')).toEqual([]);
  });

  it('refuses a meter id OpenFlow does not give a meter before running ovs-ofctl', async () => {
    const of = new OpenFlow({ bridge: 'br0', ofctl: '/nonexistent/ovs-ofctl' });
    for (const id of [0, -1, 1.5, 0xffff0001])
      await expect(of.addCountingMeter(id)).rejects.toThrow(`meter id ${id} is not 1-4294901760`);
    await expect(of.deleteMeter(0)).rejects.toThrow('meter id 0 is not');
  });
});
