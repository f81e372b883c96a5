import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from './errors';
import { validateStart } from './validation';

const ports = ['net1', 'net2'];
const flow = (over: Record<string, unknown> = {}) => ({
  srcIp: '10.0.0.1',
  dstIp: '10.0.0.2',
  srcPort: 1000,
  dstPort: 2000,
  ...over,
});

function fieldOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(InvalidArgumentError);
    return (e as InvalidArgumentError).field;
  }
  throw new Error('expected the request to be refused');
}

describe('validateStart', () => {
  it('fills defaults: first port, UDP, smallest frame, TTL 64, ACK, every port counted', () => {
    const plan = validateStart({ flows: [flow()] }, ports);
    expect(plan).toEqual({
      flows: [
        {
          name: 'flow-0',
          txPort: 'net1',
          protocol: 'udp',
          family: 4,
          srcIp: '10.0.0.1',
          dstIp: '10.0.0.2',
          srcPort: 1000,
          dstPort: 2000,
          size: 64,
          ratePps: 0,
          count: 0,
          ttl: 64,
          tcpFlags: 0x10,
        },
      ],
      rxPorts: ['net1', 'net2'],
      countAnyRun: false,
    });
  });

  it('takes IPv6 TCP with IMIX, MACs, a count as the proto loader gives uint64 (string)', () => {
    const plan = validateStart(
      {
        flows: [
          flow({
            name: 'v6',
            txPort: 'net2',
            protocol: 'TCP',
            srcIp: 'fd00::1',
            dstIp: 'fd00::2',
            imix: true,
            count: '5000',
            ratePps: 1000,
            srcMac: '02:00:00:00:00:AA',
            dstMac: '02:00:00:00:00:bb',
            tcpFlags: 2,
          }),
        ],
        rxPorts: ['net1'],
        countAnyRun: true,
      },
      ports,
    );
    expect(plan.flows[0]).toMatchObject({
      name: 'v6',
      txPort: 'net2',
      protocol: 'tcp',
      family: 6,
      size: 'imix',
      count: 5000,
      ratePps: 1000,
      srcMac: '02:00:00:00:00:aa',
      tcpFlags: 2,
    });
    expect(plan.rxPorts).toEqual(['net1']);
    expect(plan.countAnyRun).toBe(true);
  });

  it('splits total_rate_pps evenly over the flows', () => {
    const plan = validateStart({ totalRatePps: 3000, flows: [flow(), flow(), flow()] }, ports);
    expect(plan.flows.map((f) => f.ratePps)).toEqual([1000, 1000, 1000]);
  });

  it('the smallest frame depends on family and protocol (tag 16 bytes, FCS 4)', () => {
    const size = (over: Record<string, unknown>) =>
      validateStart({ flows: [flow(over)] }, ports).flows[0]!.size;
    expect(size({})).toBe(64);
    expect(size({ protocol: 'TCP' })).toBe(74);
    expect(size({ srcIp: 'fd00::1', dstIp: 'fd00::2' })).toBe(82);
    expect(size({ srcIp: 'fd00::1', dstIp: 'fd00::2', protocol: 'TCP' })).toBe(94);
  });

  it('names the bad field of each refused request', () => {
    const bad = (req: Record<string, unknown>) => fieldOf(() => validateStart(req, ports));
    const third = (over: Record<string, unknown>) => ({ flows: [flow(), flow(), flow(over)] });
    expect(bad(third({ ratePps: -5 }))).toBe('flows[2].rate_pps');
    expect(bad(third({ ratePps: Number.NaN }))).toBe('flows[2].rate_pps');
    expect(bad({ totalRatePps: 100, flows: [flow(), flow({ ratePps: 5 })] })).toBe(
      'flows[1].rate_pps',
    );
    expect(bad({ totalRatePps: -1, flows: [flow()] })).toBe('total_rate_pps');
    expect(bad({ totalRatePps: 10 })).toBe('total_rate_pps');
    expect(bad(third({ srcIp: '10.0.0.300' }))).toBe('flows[2].src_ip');
    expect(bad(third({ dstIp: 'fd00::1' }))).toBe('flows[2].dst_ip');
    expect(bad(third({ srcPort: 70000 }))).toBe('flows[2].src_port');
    expect(bad(third({ dstPort: 1.5 }))).toBe('flows[2].dst_port');
    expect(bad(third({ txPort: 'eth9' }))).toBe('flows[2].tx_port');
    expect(bad(third({ protocol: 'SCTP' }))).toBe('flows[2].protocol');
    expect(bad(third({ frameSize: 63 }))).toBe('flows[2].frame_size');
    expect(bad(third({ frameSize: 1519 }))).toBe('flows[2].frame_size');
    expect(bad(third({ frameSize: 70, protocol: 'TCP' }))).toBe('flows[2].frame_size');
    expect(bad(third({ frameSize: 128, imix: true }))).toBe('flows[2].frame_size');
    expect(bad(third({ count: '-1' }))).toBe('flows[2].count');
    expect(bad(third({ count: '18446744073709551615' }))).toBe('flows[2].count');
    expect(bad(third({ ttl: 256 }))).toBe('flows[2].ttl');
    expect(bad(third({ tcpFlags: 2 }))).toBe('flows[2].tcp_flags');
    expect(bad(third({ srcMac: '02:00:00:00:00' }))).toBe('flows[2].src_mac');
    expect(bad(third({ dstMac: 'zz:00:00:00:00:00' }))).toBe('flows[2].dst_mac');
    expect(bad(third({ name: 'flow-0' }))).toBe('flows[2].name');
    expect(bad(third({ name: 'has space' }))).toBe('flows[2].name');
    expect(bad({ flows: [], rxPorts: ['net1', 'nope'] })).toBe('rx_ports[1]');
    expect(bad({ flows: [], rxPorts: ['net1', 'net1'] })).toBe('rx_ports[1]');
    expect(bad({ flows: Array.from({ length: 1025 }, () => flow()) })).toBe('flows');
  });

  it('says why in the message, after the field', () => {
    expect(() => validateStart({ flows: [flow(), flow({ ratePps: -1 })] }, ports)).toThrow(
      /^flows\[1\]\.rate_pps: must be a finite number >= 0, got -1$/,
    );
    expect(() =>
      validateStart({ flows: [flow({ frameSize: 70, protocol: 'TCP' })] }, ports),
    ).toThrow(/flows\[0\]\.frame_size: 70 is outside 74\.\.1518/);
  });

  it('needs a port: no flows to send and no port to count on is refused', () => {
    expect(fieldOf(() => validateStart({}, []))).toBe('flows');
    expect(fieldOf(() => validateStart({ flows: [flow()] }, []))).toBe('flows[0].tx_port');
    expect(validateStart({}, ['net1'])).toEqual({
      flows: [],
      rxPorts: ['net1'],
      countAnyRun: false,
    });
  });
});
