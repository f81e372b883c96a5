import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  OvsCommandError,
  OvsNotFoundError,
  startOvsDpdk,
  type OvsDpdk,
  type TableUpdates,
} from '../../src';
import { Signal } from '../support/signal';

// A real private ovsdb-server + ovs-vswitchd-dpdk (root, hugepages). One PMD, idle-sleeping.
describe('private OVS-DPDK (integration)', () => {
  let ovs: OvsDpdk;

  beforeAll(async () => {
    ovs = await startOvsDpdk({
      runDir: `/tmp/flowline-ovs-it-${process.pid}`,
      netns: `flovs-it-${process.pid}`,
      maxLifetimeSec: 300,
    });
  }, 90_000);

  afterAll(async () => {
    await ovs?.stop();
  }, 60_000);

  it('initialises DPDK with the bounded settings and the netdev bridge', async () => {
    const root = await ovs.vswitch.getOpenVSwitch();
    expect(root.dpdkInitialized).toBe(true);
    expect(root.otherConfig['dpdk-extra']).toContain('--no-pci');
    expect(root.otherConfig['pmd-maxsleep']).toBe('50');
    const br = await ovs.vswitch.getBridge('br-flowline');
    expect(br?.datapathType).toBe('netdev');
    // the server answered our echo request with exactly our params (RFC 7047 4.1.11)
    expect(await ovs.client.request('echo', ['flowline-probe', 7])).toEqual(['flowline-probe', 7]);
  });

  it('adds and deletes bridges and ports idempotently, also when adds race', async () => {
    expect(await ovs.vswitch.addBridge('br-flowline', { datapathType: 'netdev' })).toBe(false);
    const results = await Promise.all(
      Array.from({ length: 5 }, () =>
        ovs.vswitch.addPort('br-flowline', 'vhu-race', {
          type: 'dpdkvhostuserclient',
          options: { 'vhost-server-path': `${ovs.runDir}/race.sock` },
          externalIds: { owner: 'test' },
        }),
      ),
    );
    expect(results.filter(Boolean)).toHaveLength(1);
    const ports = await ovs.vswitch.listPorts('br-flowline');
    expect(ports.filter((p) => p.name === 'vhu-race')).toHaveLength(1);
    const iface = await ovs.vswitch.waitForInterface(
      'vhu-race',
      (i) => (i.ofport ?? -1) > 0,
      10_000,
      'an ofport',
    );
    expect(iface.type).toBe('dpdkvhostuserclient');
    expect(iface.options['vhost-server-path']).toBe(`${ovs.runDir}/race.sock`);
    expect(iface.externalIds.owner).toBe('test');
    expect(await ovs.vswitch.delPort('vhu-race')).toBe(true);
    expect(await ovs.vswitch.delPort('vhu-race')).toBe(false);
    expect(await ovs.vswitch.getInterface('vhu-race')).toBeUndefined();
    await expect(ovs.vswitch.addPort('br-nope', 'p1')).rejects.toBeInstanceOf(OvsNotFoundError);
  });

  it('reports inserts and deletes through a monitor', async () => {
    const updates: TableUpdates[] = [];
    const updated = new Signal();
    const mon = await ovs.client.monitor('Open_vSwitch', { Port: { columns: ['name'] } }, (u) => {
      updates.push(u);
      updated.notify();
    });
    expect(Object.values(mon.initial.Port ?? {}).map((r) => r.new?.name)).toContain('br-flowline');
    await ovs.vswitch.addPort('br-flowline', 'mon-p', { type: 'internal' });
    await ovs.vswitch.delPort('mon-p');
    await updated.until(() => updates.length >= 2, 'the insert and the delete of mon-p');
    await mon.cancel();
    const names = updates.flatMap((u) =>
      Object.values(u.Port ?? {}).map((r) => (r.new ?? r.old)?.name),
    );
    expect(names.filter((n) => n === 'mon-p').length).toBeGreaterThanOrEqual(2);
  });

  it('applies a flow set atomically as one bundle and reads it back', async () => {
    await ovs.openflow.applyFlows([
      'priority=100,in_port=LOCAL,actions=drop',
      'priority=0,actions=drop',
    ]);
    let flows = await ovs.openflow.dumpFlows();
    expect(flows.map((f) => `${f.priority} ${f.match} ${f.actions}`).sort()).toEqual([
      '0  drop',
      '100 in_port=LOCAL drop',
    ]);
    // One invalid flow: the bundle fails and nothing changes.
    await expect(
      ovs.openflow.applyFlows([
        'priority=5,actions=drop',
        'priority=6,in_port=1,actions=output:99999999',
      ]),
    ).rejects.toBeInstanceOf(OvsCommandError);
    flows = await ovs.openflow.dumpFlows();
    expect(flows).toHaveLength(2);
    await ovs.openflow.applyFlows(['priority=7,actions=drop'], 'add');
    expect(await ovs.openflow.dumpFlows()).toHaveLength(3);
    const ports = await ovs.openflow.dumpPorts();
    expect(ports.some((p) => p.port === 'LOCAL')).toBe(true);
  });

  it('survives an ovs-vswitchd restart (flows are gone and pushed again)', async () => {
    await ovs.restartVswitchd();
    expect(await ovs.openflow.dumpFlows()).toEqual([]);
    await ovs.openflow.applyFlows(['priority=1,actions=drop']);
    expect(await ovs.openflow.dumpFlows()).toHaveLength(1);
  }, 90_000);

  it("stop leaves no EAL runtime directory or hugepage file behind, and keeps another prefix's", async () => {
    const runtime = `/var/run/dpdk/${ovs.filePrefix}`;
    expect(existsSync(runtime)).toBe(true); // ovs-vswitchd's EAL made it
    // an instance whose prefix extends this one's (runDir .../x-1 and .../x-12)
    const other = `/dev/hugepages/${ovs.filePrefix}2map_0`;
    writeFileSync(other, '');
    try {
      await ovs.stop();
      expect(existsSync(runtime)).toBe(false);
      expect(existsSync(other)).toBe(true);
      expect(
        readdirSync('/dev/hugepages').filter(
          (f) => f.startsWith(ovs.filePrefix) && `/dev/hugepages/${f}` !== other,
        ),
      ).toEqual([]);
    } finally {
      rmSync(other, { force: true });
    }
  }, 60_000);
});
