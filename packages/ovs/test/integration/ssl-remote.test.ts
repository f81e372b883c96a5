import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OpenFlow, OvsdbClient, VSwitch, startOvsDpdk, type OvsDpdk } from '../../src';
import { TestPki } from '../support/pki';

/** A /30 of 10.252.0.0/16 per test process. */
function linkAddresses(): { hostAddress: string; address: string } {
  const base = (process.pid % 16384) * 4;
  const ip = (n: number): string => `10.252.${(base + n) >> 8}.${(base + n) & 255}`;
  return { hostAddress: ip(1), address: ip(2) };
}

// The node's OVS as the chart runs it: OVSDB and OpenFlow listeners with SSL (pssl:), both
// sides presenting certificates from the chart's CA; nobody without one gets in.
describe('OVS over SSL remotes (integration)', () => {
  const work = mkdtempSync(join(tmpdir(), 'flowline-ovs-ssl-'));
  const pki = new TestPki(join(work, 'pki'));
  const controllerTls = pki.issue('flowline-chain-controller');
  let ovs: OvsDpdk;

  beforeAll(async () => {
    ovs = await startOvsDpdk({
      runDir: join(work, 'ovs'),
      netns: `flovs-ssl-${process.pid}`,
      maxLifetimeSec: 300,
      tcp: {
        ...linkAddresses(),
        ovsdbPort: 16640,
        openflowPort: 16653,
        tls: pki.issue('flowline-ovs'),
      },
    });
  }, 90_000);

  afterAll(async () => {
    await ovs?.stop();
    rmSync(work, { recursive: true, force: true });
  }, 60_000);

  it('serves OVSDB over ssl: to a client with a certificate from the CA', async () => {
    expect(ovs.ovsdbRemote).toBe(`ssl:${linkAddresses().address}:16640`);
    const client = await OvsdbClient.connect({ remote: ovs.ovsdbRemote!, tls: controllerTls });
    try {
      expect(await client.request('echo', ['over-ssl', 2])).toEqual(['over-ssl', 2]);
      expect((await new VSwitch(client).getBridge('br-flowline'))?.datapathType).toBe('netdev');
    } finally {
      client.close();
    }
  });

  it('applies and reads flows over ssl: with ovs-ofctl and the same certificate', async () => {
    const flows = new OpenFlow({
      bridge: 'br-flowline',
      remote: ovs.openflowRemote!,
      tls: controllerTls,
    });
    await flows.applyFlows(['cookie=0x9,priority=7,arp,actions=drop', 'priority=0,actions=drop']);
    expect((await ovs.openflow.dumpFlows()).map((f) => [f.cookie, f.match])).toEqual([
      ['0x9', 'arp'],
      ['0x0', ''],
    ]);
    expect((await flows.dumpFlows()).map((f) => f.cookie)).toEqual(['0x9', '0x0']);
  });

  it('turns away a client whose certificate another CA signed, and one without tls settings', async () => {
    const rogue = new TestPki(join(work, 'rogue'), 'rogue-ca').issue('intruder');
    await expect(
      OvsdbClient.connect({
        remote: ovs.ovsdbRemote!,
        // Trusts the real CA (so the server passes) but presents the rogue certificate.
        tls: { ...rogue, caCert: controllerTls.caCert },
        connectTimeoutMs: 500,
        requestTimeoutMs: 1000,
      }).then(async (c) => {
        try {
          return await c.echo();
        } finally {
          c.close();
        }
      }),
    ).rejects.toThrow(/ovsdb-server at ssl:|closed|not connected/);
    await expect(
      new OpenFlow({
        bridge: 'br-flowline',
        remote: ovs.openflowRemote!,
        tls: { ...rogue, caCert: controllerTls.caCert },
      }).dumpFlows(),
    ).rejects.toThrow(/ovs-ofctl/);
    expect(() => new OpenFlow({ bridge: 'br-flowline', remote: ovs.openflowRemote! })).toThrow(
      /needs tls/,
    );
    await expect(OvsdbClient.connect({ remote: ovs.ovsdbRemote! })).rejects.toThrow(/needs tls/);
  });
});
