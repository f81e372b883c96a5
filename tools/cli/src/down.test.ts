import { emptyStopReport } from '@flowline/node';
import { describe, expect, it } from 'vitest';
import { renderStopReport } from './down';

describe('flowline down output', () => {
  it('names every process, port and namespace stopped, with counts', () => {
    const text = renderStopReport({
      processes: [
        { name: 'node agent', pid: 10 },
        { name: 'pod default/fw', pid: 11 },
        { name: 'ovs-vswitchd', pid: 12 },
      ],
      ports: [
        { pod: 'default/fw', interface: 'net2' },
        { pod: 'default/fw', interface: 'net1' },
      ],
      namespaces: ['flpod-default-fw', 'flowline-node-ovs'],
      hugepageFiles: 0,
    });
    expect(text.split('\n')).toEqual([
      'node down; stopped and removed:',
      '  processes (3): node agent (pid 10), pod default/fw (pid 11), ovs-vswitchd (pid 12)',
      '  switch ports (2): default/fw/net2, default/fw/net1',
      '  network namespaces (2): flpod-default-fw, flowline-node-ovs',
      'nothing is left',
    ]);
  });

  it('says nothing was up only when nothing was stopped', () => {
    expect(renderStopReport(emptyStopReport())).toBe('no node was up; nothing left');
    expect(renderStopReport({ ...emptyStopReport(), hugepageFiles: 4 })).toMatch(
      /^node down; stopped and removed:\n {2}hugepage files: 4\n/,
    );
  });
});
