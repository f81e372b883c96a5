import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CniFixture } from '../support/fixture';
import { Testpmd } from '../support/testpmd';

// ADD wires a vhost-user port into a real OVS-DPDK; a DPDK virtio-user port opened on the
// returned socket links up and carries packets through the bridge under an OpenFlow rule.
describe('CNI ADD → vhost-user data path through OVS-DPDK (integration)', () => {
  const fx = new CniFixture();
  let testpmd: Testpmd | undefined;

  beforeAll(() => fx.start(), 90_000);
  afterAll(async () => {
    await testpmd?.stop();
    await fx.stop();
  }, 60_000);

  it('ADD, link-up, packets through the bridge, CHECK, DEL', async () => {
    // each port gets a mempool of its own (the fixture's perPortMemory): see fixture.ts
    expect((await fx.ovs.vswitch.getOpenVSwitch()).otherConfig['per-port-memory']).toBe('true');
    const pods = [
      { ns: 'default', name: 'fw-0', cid: `cidfw0${fx.id}` },
      { ns: 'default', name: 'router-0', cid: `cidrt0${fx.id}` },
    ];
    const results: Record<string, unknown>[] = [];
    const envs = pods.map((p) => ({
      CNI_CONTAINERID: p.cid,
      CNI_NETNS: fx.netns(p.name),
      CNI_IFNAME: 'net1',
      CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${p.ns};K8S_POD_NAME=${p.name};K8S_POD_INFRA_CONTAINER_ID=${p.cid}`,
    }));
    for (const env of envs) {
      const r = await fx.run({ CNI_COMMAND: 'ADD', ...env }, fx.conf());
      expect(r.code, r.stdout + r.stderr).toBe(0);
      results.push(r.json!);
    }
    const sockets = results.map((r) => (r.interfaces as { socketPath: string }[])[0]!.socketPath);
    expect(sockets).toEqual([
      `${fx.socketDir}/default_fw-0/net1.sock`,
      `${fx.socketDir}/default_router-0/net1.sock`,
    ]);
    const description = JSON.parse(readFileSync(`${fx.socketDir}/default_fw-0/net1.json`, 'utf8'));
    expect(description.socketPath).toBe(sockets[0]);
    expect(description.ips[0].address).toMatch(/^10\.77\.0\.\d+\/24$/);

    const ifaces = await Promise.all(
      results.map((r) => {
        const port = JSON.parse(
          readFileSync(
            String((r.interfaces as { socketPath: string }[])[0]!.socketPath).replace(
              '.sock',
              '.json',
            ),
            'utf8',
          ),
        ).ovsPort;
        return fx.ovs.vswitch.waitForInterface(
          port,
          (i) => (i.ofport ?? -1) > 0,
          15_000,
          'an ofport',
        );
      }),
    );
    const [a, b] = ifaces as [(typeof ifaces)[0], (typeof ifaces)[0]];

    // When testpmd waits for OVS's vhost-user client in vain (seen once under heavy load), the
    // failure carries what ovs-vswitchd said about those sockets.
    testpmd = await Testpmd.start(sockets, `flcnipmd${fx.id}`).catch((err: Error) => {
      const log = existsSync(fx.ovs.vswitchdLog) ? readFileSync(fx.ovs.vswitchdLog, 'utf8') : '';
      const vhost = log
        .split('\n')
        .filter((l) => /vhost|dpdk/i.test(l))
        .slice(-30)
        .join('\n');
      throw new Error(`${err.message}\n--- ovs-vswitchd (vhost/dpdk lines) ---\n${vhost}`);
    });
    for (const i of ifaces)
      await fx.ovs.vswitch.waitForInterface(i.name, (x) => x.linkState === 'up', 20_000, 'link up');

    // A → B through the bridge; anything from B is dropped. testpmd forwards what port 1 (B)
    // receives back out of port 0 (A), so one initial burst keeps circulating A → OVS → B.
    await fx.ovs.openflow.applyFlows([
      `priority=100,in_port=${a.ofport},actions=output:${b.ofport}`,
      `priority=100,in_port=${b.ofport},actions=drop`,
      'priority=0,actions=drop',
    ]);
    await testpmd.command('start tx_first');
    await new Promise((r) => setTimeout(r, 2000));
    const stopOut = await testpmd.command('stop');
    const stats = Testpmd.parseForwardStats(stopOut);
    expect(stats.size, testpmd.output.slice(-2000)).toBe(2);
    // OVS folds datapath flow counts into the OpenFlow rules' stats from its revalidator
    // threads (every ~500 ms), so read them until they have caught up with what B received.
    const rxB = stats.get(1)?.rxPackets ?? 0;
    let flows = await fx.ovs.openflow.dumpFlows();
    // ovs-ofctl prints in_port as a number, or as the port's name with --names.
    const counted = (port: typeof a) =>
      flows.find((f) =>
        new RegExp(`in_port=("?)(${port.ofport}|${port.name})\\1(,|$)`).test(f.match),
      );
    for (let i = 0; i < 50 && (counted(a)?.nPackets ?? 0) < rxB; i++) {
      await new Promise((r) => setTimeout(r, 100));
      flows = await fx.ovs.openflow.dumpFlows();
    }
    const aToB = counted(a)!;
    const fromB = counted(b)!;
    expect(aToB.nPackets).toBeGreaterThan(32);
    expect(fromB.nPackets).toBeGreaterThan(0); // tx_first's burst on B, dropped
    expect(stats.get(1)!.rxPackets).toBeGreaterThan(0); // received on B: came through OVS from A
    expect(stats.get(0)!.rxPackets).toBe(0); // nothing reaches A: B's traffic is dropped
    expect(stats.get(1)!.rxPackets).toBeLessThanOrEqual(aToB.nPackets);
    await testpmd.stop();
    testpmd = undefined;
    expect(existsSync(`/var/run/dpdk/flcnipmd${fx.id}`)).toBe(false); // its EAL left nothing

    // CHECK with the ADD result as prevResult, then DEL (twice), then CHECK says unknown.
    for (const [i, env] of envs.entries()) {
      const check = await fx.run(
        { CNI_COMMAND: 'CHECK', ...env },
        fx.conf({ prevResult: results[i] }),
      );
      expect(check.code, check.stdout).toBe(0);
      expect(check.stdout).toBe('');
    }
    for (const env of envs) {
      for (let n = 0; n < 2; n++) {
        const del = await fx.run(
          { CNI_COMMAND: 'DEL', ...env },
          fx.conf({ prevResult: results[0] }),
        );
        expect(del.code, del.stdout).toBe(0);
      }
    }
    expect(existsSync(`${fx.socketDir}/default_fw-0`)).toBe(false);
    expect(await fx.portNames()).toEqual([fx.ovs.bridge]);
    expect(fx.leases()).toEqual([]);
    const gone = await fx.run(
      { CNI_COMMAND: 'CHECK', ...envs[0]! },
      fx.conf({ prevResult: results[0] }),
    );
    expect(gone.code).toBe(1);
    expect(gone.json?.code).toBe(3);
  }, 180_000);
});
