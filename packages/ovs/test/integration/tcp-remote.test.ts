import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { OpenFlow, OvsdbClient, VSwitch, startOvsDpdk, type OvsDpdk } from '../../src';
import { Signal } from '../support/signal';

/** A /30 of 10.254.0.0/16 per test process, so parallel runs do not share addresses. */
function linkAddresses(): { hostAddress: string; address: string } {
  const base = (process.pid % 16384) * 4;
  const ip = (n: number): string => `10.254.${(base + n) >> 8}.${(base + n) & 255}`;
  return { hostAddress: ip(1), address: ip(2) };
}

// OVS reached as a chain controller on another machine reaches a node's OVS: OVSDB and OpenFlow
// over TCP at the node's address (here a veth into the OVS netns), nothing through files.
describe('OVS over TCP remotes (integration)', () => {
  let ovs: OvsDpdk;
  let remote: OvsdbClient | undefined;
  const netns = `flovs-tcp-${process.pid}`;

  beforeAll(async () => {
    ovs = await startOvsDpdk({
      runDir: `/tmp/flowline-ovs-tcp-${process.pid}`,
      netns,
      maxLifetimeSec: 300,
      tcp: { ...linkAddresses(), ovsdbPort: 16640, openflowPort: 16653 },
    });
  }, 90_000);

  afterAll(async () => {
    remote?.close();
    await ovs?.stop();
  }, 60_000);

  it('answers OVSDB transact, monitor and echo at tcp:<node address>:<port>', async () => {
    const { address } = linkAddresses();
    expect(ovs.ovsdbRemote).toBe(`tcp:${address}:16640`);
    remote = await OvsdbClient.connect({ remote: ovs.ovsdbRemote!, connectTimeoutMs: 5000 });
    expect(remote.remote).toBe(ovs.ovsdbRemote);
    expect(remote.socketPath).toBeUndefined();
    expect(await remote.request('echo', ['over-tcp', 1])).toEqual(['over-tcp', 1]);
    const vs = new VSwitch(remote);
    expect((await vs.getBridge('br-flowline'))?.datapathType).toBe('netdev');

    const seen: string[] = [];
    const updated = new Signal();
    const monitor = await remote.monitor('Open_vSwitch', { Port: { columns: ['name'] } }, (u) => {
      for (const row of Object.values(u.Port ?? {})) if (row.new) seen.push(String(row.new.name));
      updated.notify();
    });
    // Added through the node-local unix socket (as the CNI plugin does), seen over TCP.
    await ovs.vswitch.addPort('br-flowline', 'tcp-seen0', { type: 'internal' });
    await updated.until(() => seen.includes('tcp-seen0'), 'tcp-seen0 in the monitor over TCP');
    await monitor.cancel();
    expect((await vs.listPorts('br-flowline')).map((p) => p.name)).toContain('tcp-seen0');
    await ovs.vswitch.delPort('tcp-seen0');
  });

  it('applies a bundle and reads flows over OpenFlow at tcp:<node address>:<port>', async () => {
    const { address } = linkAddresses();
    expect(ovs.openflowRemote).toBe(`tcp:${address}:16653`);
    const tcpFlows = new OpenFlow({ bridge: 'br-flowline', remote: ovs.openflowRemote! });
    expect(tcpFlows.remote).toBe(ovs.openflowRemote);
    await tcpFlows.applyFlows([
      'cookie=0x7,priority=100,ip,nw_dst=10.9.0.0/16,actions=drop',
      'priority=0,actions=drop',
    ]);
    // The same table through the node-local .mgmt socket.
    const local = await ovs.openflow.dumpFlows();
    expect(local.map((f) => [f.cookie, f.priority, f.match, f.actions])).toEqual([
      ['0x7', 100, 'ip,nw_dst=10.9.0.0/16', 'drop'],
      ['0x0', 0, '', 'drop'],
    ]);
    expect((await tcpFlows.dumpFlows()).map((f) => f.match)).toEqual(local.map((f) => f.match));
  });

  it('echoes ovs-vswitchd at tcp:<node address>:<port>: fails at once when it dies (ovsdb-server still answering), answers again once it is back', async () => {
    const of = new OpenFlow({ bridge: 'br-flowline', remote: ovs.openflowRemote! });
    try {
      await of.echo(2000);
      const restarting = ovs.restartVswitchd();
      let failed: unknown;
      for (const end = Date.now() + 10_000; !failed && Date.now() < end;)
        failed = await of.echo(300).then(
          () => new Promise((r) => setTimeout(() => r(undefined), 20)),
          (e: unknown) => e,
        );
      expect(String(failed)).toMatch(/the OpenFlow connection to tcp:\S+ (closed|failed)/);
      await restarting;
      await new VSwitch(remote!).getOpenVSwitch(); // ovsdb-server was there throughout
      let back: unknown = 'not yet';
      for (const end = Date.now() + 10_000; back !== undefined && Date.now() < end;)
        back = await of.echo(500).catch((e: unknown) => e);
      expect(back).toBeUndefined();
    } finally {
      of.close();
    }
  }, 60_000);

  it('a closed port is a clear connection error naming the remote', async () => {
    const { address } = linkAddresses();
    await expect(
      OvsdbClient.connect({ remote: `tcp:${address}:16641`, connectTimeoutMs: 300 }),
    ).rejects.toThrow(
      new RegExp(
        `cannot connect to ovsdb-server at tcp:${address.replace(/\./g, '\\.')}:16641: .*set-manager`,
      ),
    );
  });

  it('stop() removes the veth with the netns', async () => {
    const { hostAddress } = linkAddresses();
    const holder = (): string =>
      execFileSync('ip', ['-o', 'addr', 'show', 'to', `${hostAddress}/32`], {
        encoding: 'utf8',
      }).trim();
    expect(holder()).toMatch(/flv[0-9a-f]{8}h/);
    await ovs.stop();
    expect(existsSync(`/run/netns/${netns}`)).toBe(false);
    expect(holder()).toBe('');
  });
});
