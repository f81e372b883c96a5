import { describe, expect, it } from 'vitest';

import { buildEalArgs, explainEalLog } from './eal';
import { EalOptionError } from './errors';

describe('buildEalArgs', () => {
  it('translates the defaults: in-memory, single-file segments, no PCI, IOVA va, no telemetry', () => {
    expect(buildEalArgs({ filePrefix: 'fl-a' }, 2)).toEqual([
      '-l',
      '0',
      '--main-lcore',
      '0',
      '--file-prefix',
      'fl-a',
      '--in-memory',
      '--single-file-segments',
      '--no-pci',
      '--iova-mode=va',
      '--no-telemetry',
    ]);
  });

  it('translates every typed option', () => {
    const args = buildEalArgs(
      {
        filePrefix: 'fl-b',
        lcores: [1, 0],
        memoryMb: 512,
        inMemory: false,
        hugeDir: '/dev/hugepages',
        pciAllow: ['0000:03:00.1', '03:00.2,rxq_pkt_burst=32'],
        vdevs: ['net_ring0'],
        logLevel: ['notice', 'pmd.net.vhost:debug'],
        extraArgs: ['--vmware-tsc-map'],
      },
      4,
    );
    expect(args).toEqual([
      '-l',
      '1,0',
      '--main-lcore',
      '1',
      '--file-prefix',
      'fl-b',
      '-m',
      '512',
      '--huge-unlink=always',
      '--single-file-segments',
      '--huge-dir',
      '/dev/hugepages',
      '-a',
      '0000:03:00.1',
      '-a',
      '03:00.2,rxq_pkt_burst=32',
      '--vdev',
      'net_ring0',
      '--log-level=notice',
      '--log-level=pmd.net.vhost:debug',
      '--no-telemetry',
      '--vmware-tsc-map',
    ]);
    expect(buildEalArgs({ filePrefix: 'x', noHuge: true }, 1)).toContain('--no-huge');
  });

  it.each([
    [{ filePrefix: 'x', lcores: [] }, 'lcores', /at least one/],
    [{ filePrefix: 'x', lcores: [0, 2] }, 'lcores', /core 2 does not exist.*0\.\.1/],
    [{ filePrefix: 'x', lcores: [1, 1] }, 'lcores', /twice/],
    [{ filePrefix: 'a b' }, 'filePrefix', /characters/],
    [{ filePrefix: '..' }, 'filePrefix', /not starting with/],
    [{ filePrefix: 'x', memoryMb: -1 }, 'memoryMb', /positive/],
    [{ filePrefix: 'x', hugeDir: 'rel' }, 'hugeDir', /absolute/],
    [{ filePrefix: 'x', noHuge: true, hugeDir: '/dev/hugepages' }, 'hugeDir', /noHuge/],
    [{ filePrefix: 'x', pciAllow: ['eth0'] }, 'pciAllow', /PCI address/],
    [{ filePrefix: 'x', vdevs: ['net_ring0,bad'] }, 'vdevs[0]', /key=value/],
    [{ filePrefix: 'x', vdevs: ['0000:03:00.1'] }, 'vdevs[0]', /pciAllow/],
    [{ filePrefix: 'x', iovaMode: 'xx' as 'va' }, 'iovaMode', /'va' or 'pa'/],
  ])('rejects %j naming %s', (opts, option, re) => {
    let err: unknown;
    try {
      buildEalArgs(opts, 2);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(EalOptionError);
    expect((err as EalOptionError).option).toBe(option);
    expect((err as EalOptionError).message).toMatch(re);
  });
});

describe('explainEalLog', () => {
  it('names the argument from DPDK messages', () => {
    expect(
      explainEalLog(
        "EAL: Detected CPU lcores: 2\nEAL: Invalid process type specified\nEAL: Invalid 'command line' arguments.",
      ).argument,
    ).toBe('--proc-type');
    expect(explainEalLog('EAL: invalid core list syntax').argument).toBe('-l');
    expect(explainEalLog('EAL: Cannot get hugepage information.').argument).toBe('-m');
    expect(explainEalLog('EAL: Detected NUMA nodes: 1').argument).toBeUndefined();
  });
});
