import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  OpenFlow,
  OvsdbClient,
  VSwitch,
  startOvsDpdk,
  switchName,
  type OvsDpdk,
  type OvsTls,
} from '../../src';
import { TestPki } from '../support/pki';

/** A /30 of 10.252.0.0/16 per test process. */
function linkAddresses(): { hostAddress: string; address: string } {
  const base = (process.pid % 16384) * 4;
  const ip = (n: number): string => `10.252.${(base + n) >> 8}.${(base + n) & 255}`;
  return { hostAddress: ip(1), address: ip(2) };
}

// The node's OVS as the chart runs it: OVSDB and OpenFlow listeners with SSL (pssl:), both
// sides presenting certificates, from two CAs: the controller CA signs only the controller's
// certificate and is the switch's CA cert (the switch accepts the controller alone); the switch
// CA signs one certificate per node, naming it (ovs-switch.<node>), and is the controller's CA
// cert. The controller checks the name (OvsTls.peerName): this switch is node-a's.
describe('OVS over SSL remotes (integration)', () => {
  const work = mkdtempSync(join(tmpdir(), 'flowline-ovs-ssl-'));
  const controllerCa = new TestPki(join(work, 'controller-ca'), 'controller-ca');
  const switchCa = new TestPki(join(work, 'switch-ca'), 'switch-ca');
  const switchTls = switchCa.issue('ovs-switch.node-a', { san: true, peerCa: controllerCa.caCert });
  const controllerTls = {
    ...controllerCa.issue('flowline-chain-controller', { peerCa: switchCa.caCert }),
    peerName: switchName('node-a'),
  };
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
        tls: switchTls,
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

  it('applies and reads flows over ssl: with ovs-ofctl and the same certificate (through the verifying relay)', async () => {
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
    // Without a name to check, ovs-ofctl's own SSL (the CA alone) reaches it too.
    const { peerName: _, ...caOnly } = controllerTls;
    const plain = new OpenFlow({ bridge: 'br-flowline', remote: ovs.openflowRemote!, tls: caOnly });
    expect((await plain.dumpFlows()).map((f) => f.cookie)).toEqual(['0x9', '0x0']);
  });

  it("echoes ovs-vswitchd over ssl: on a kept connection, the switch's name checked", async () => {
    const flows = new OpenFlow({
      bridge: 'br-flowline',
      remote: ovs.openflowRemote!,
      tls: controllerTls,
    });
    const other = new OpenFlow({
      bridge: 'br-flowline',
      remote: ovs.openflowRemote!,
      tls: { ...controllerTls, peerName: switchName('node-b') },
    });
    try {
      await flows.echo(2000);
      await flows.echo(2000);
      await expect(other.echo(2000)).rejects.toThrow(
        /the switch's certificate names ovs-switch\.node-a, not ovs-switch\.node-b/,
      );
    } finally {
      flows.close();
      other.close();
    }
  });

  /** The flow table, without what changes by itself (durations). */
  const table = async () =>
    (await ovs.openflow.dumpFlows()).map((f) => [f.cookie, f.priority, f.match, f.actions]);

  /** An OVSDB echo and an ovs-ofctl add with `tls`: what each says when refused. */
  const attempt = async (tls: OvsTls): Promise<{ ovsdb: unknown; openflow: unknown }> => ({
    ovsdb: await OvsdbClient.connect({
      remote: ovs.ovsdbRemote!,
      tls,
      connectTimeoutMs: 500,
      requestTimeoutMs: 1000,
    })
      .then(async (c) => {
        try {
          return await c.echo();
        } finally {
          c.close();
        }
      })
      .catch((e: unknown) => e),
    openflow: await new OpenFlow({ bridge: 'br-flowline', remote: ovs.openflowRemote!, tls })
      .applyFlows(['priority=0,actions=NORMAL'])
      .then(
        () => 'applied',
        (e: unknown) => e,
      ),
  });

  it("the controller refuses a switch presenting another node's certificate: nothing is sent to it", async () => {
    const before = await table();
    // This switch is node-a's; the controller dials it as node-b's.
    const got = await attempt({ ...controllerTls, peerName: switchName('node-b') });
    const named = /the switch's certificate names ovs-switch\.node-a, not ovs-switch\.node-b/;
    expect(String(got.ovsdb)).toMatch(named);
    expect(String(got.openflow)).toMatch(named);
    expect(await table()).toEqual(before);
  });

  it("a switch's certificate presented as the controller is refused by the switch", async () => {
    const before = await table();
    // A node's own switch key and certificate, trusting the switch CA: what a compromised node
    // has. The switch trusts only the controller CA.
    const asController: OvsTls = { ...switchTls, caCert: switchCa.caCert };
    const named = await attempt({ ...asController, peerName: switchName('node-a') });
    expect(named.ovsdb).toBeInstanceOf(Error);
    expect(named.openflow).toBeInstanceOf(Error);
    const native = await attempt(asController);
    expect(native.ovsdb).toBeInstanceOf(Error);
    expect(String(native.openflow)).toMatch(/ovs-ofctl/);
    expect(await table()).toEqual(before);
  });

  it('turns away a client whose certificate another CA signed, and one without tls settings', async () => {
    const rogue = new TestPki(join(work, 'rogue'), 'rogue-ca').issue('intruder');
    await expect(
      OvsdbClient.connect({
        remote: ovs.ovsdbRemote!,
        // Trusts the real CA (so the server passes) but presents the rogue certificate.
        tls: { ...rogue, caCert: controllerTls.caCert, peerName: controllerTls.peerName },
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
