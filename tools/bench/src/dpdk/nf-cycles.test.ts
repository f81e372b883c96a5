import { describe, expect, it } from 'vitest';
import { formatNfCycles, meanNfCycles, nfCyclesPerPacket } from './nf-cycles';

describe('vhost topology: the NF cycles a packet', () => {
  // the ACL case's done line from the 22:38 run, cut to what is read
  const acl = JSON.stringify({
    done: true,
    report: {
      cycles: {
        hz: 2600000000,
        busy: 78326848500,
        rx: 1684924150,
        parse: 314033174,
        tx: 2637218064,
        sampledPackets: 21131136,
        stages: [
          { name: 'acl', kind: 'acl', cycles: 259259130 },
          { name: 'l2fwd1', kind: 'l2fwd', cycles: 0 },
        ],
      },
    },
  });

  it('divides each part by the packets of the timed bursts, not by every packet', () => {
    const c = nfCyclesPerPacket(acl)!;
    expect(c.rx).toBeCloseTo(79.74, 2);
    expect(c.parse).toBeCloseTo(14.86, 2);
    expect(c.stages.map((s) => +s.toFixed(2))).toEqual([12.27, 0]);
    expect(c.tx).toBeCloseTo(124.8, 1);
    expect(c.total).toBeCloseTo(c.rx + c.parse + 12.269 + c.tx, 2);
    expect(formatNfCycles(c)).toBe('232 (80+15+12+0+125)');
  });

  it('has nothing for an NF without timed packets or a line that is not its report', () => {
    expect(nfCyclesPerPacket(JSON.stringify({ done: true, report: {} }))).toBeUndefined();
    const none = { done: true, report: { cycles: { sampledPackets: 0, rx: 5, stages: [] } } };
    expect(nfCyclesPerPacket(JSON.stringify(none))).toBeUndefined();
    expect(nfCyclesPerPacket('')).toBeUndefined();
    expect(nfCyclesPerPacket('NF acl failed')).toBeUndefined();
    expect(formatNfCycles(undefined)).toBe('');
  });
});

describe('vhost topology: the NF cycles over sessions', () => {
  const c = (rx: number, parse: number, stages: number[], tx: number) => ({
    total: rx + parse + stages.reduce((a, b) => a + b, 0) + tx,
    rx,
    parse,
    stages,
    tx,
  });
  it('averages each part over the sessions', () => {
    const m = meanNfCycles([c(80, 14, [12, 0], 124), c(84, 12, [14, 0], 130)])!;
    expect(m.rx).toBe(82);
    expect(m.parse).toBe(13);
    expect(m.stages).toEqual([13, 0]);
    expect(m.tx).toBe(127);
    expect(m.total).toBe(235);
  });
  it('has none without figures, or when the stages differ', () => {
    expect(meanNfCycles([])).toBeUndefined();
    expect(meanNfCycles([c(80, 14, [12], 124), c(80, 14, [12, 0], 124)])).toBeUndefined();
  });
});
