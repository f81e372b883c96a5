import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deviceInfoErrors } from '../support/device-info-schema';
import { CniFixture } from '../support/fixture';

// The NPWG device-info file and the plugin's attachment records through ADD, CHECK, DEL and GC
// (exec protocol, 1.1.0), with 64-hex container IDs under a socketDir where they do not fit
// readably: the hashed folder is found again by DEL and GC from the record alone.

describe('device-info files and attachment records with hashed pod folders (integration)', () => {
  const fx = new CniFixture('daemon');
  const socketDir = (): string => join(fx.base, 'var/run/flowline/vhost');
  const conf = (o: Record<string, unknown> = {}): Record<string, unknown> =>
    fx.conf({ socketDir: socketDir(), ...o });
  let netns: string;
  let n = 0;
  const cid = (): string => createHash('sha256').update(`${fx.id}/${n++}`).digest('hex');
  const env = (id: string, command: string): Record<string, string> => ({
    CNI_COMMAND: command,
    CNI_CONTAINERID: id,
    CNI_IFNAME: 'net1',
    CNI_NETNS: netns,
    CNI_ARGS: 'IgnoreUnknown=1',
  });
  const infoFile = (id: string): string => join(fx.deviceInfoDir, `${fx.network}-${id}_net1`);
  const hashed = (id: string): string =>
    `+${createHash('sha256').update(id).digest('hex').slice(0, 16)}`;
  const tree = (): string[] =>
    existsSync(socketDir())
      ? readdirSync(socketDir())
          .filter((f) => f !== '.locks' && f !== '.cache')
          .sort()
      : [];

  beforeAll(async () => {
    await fx.start();
    netns = fx.netns('devinfo');
  }, 180_000);
  afterAll(() => fx.stop(), 60_000);

  it('ADD writes the device-info file (spec schema) and the record; CHECK checks it; DEL removes both', async () => {
    const id = cid();
    const add = await fx.run(env(id, 'ADD'), conf());
    expect(add.code, add.stdout).toBe(0);
    const socket = join(socketDir(), hashed(id), 'net1.sock');
    // 1.1.0 results carry the socket (interfaces[].socketPath).
    expect(add.json).toMatchObject({ interfaces: [{ name: 'net1', socketPath: socket }] });
    const info = JSON.parse(readFileSync(infoFile(id), 'utf8'));
    expect(deviceInfoErrors(info)).toEqual([]);
    expect(info['vhost-user']).toEqual({ mode: 'server', path: socket });
    expect(tree()).toEqual([hashed(id), '.index'].sort());
    const prev = { ...conf(), prevResult: add.json };
    expect((await fx.run(env(id, 'CHECK'), prev)).code).toBe(0);
    // CHECK fails (110) on a device-info file that is gone or describes another socket.
    writeFileSync(
      infoFile(id),
      JSON.stringify({ ...info, 'vhost-user': { mode: 'server', path: '/x' } }),
    );
    expect((await fx.run(env(id, 'CHECK'), prev)).json).toMatchObject({ code: 110 });
    rmSync(infoFile(id));
    const gone = await fx.run(env(id, 'CHECK'), prev);
    expect(gone.json).toMatchObject({ code: 110 });
    expect(String(gone.json!.msg)).toContain(`device-info file ${infoFile(id)} is missing`);
    expect((await fx.run(env(id, 'DEL'), conf())).code).toBe(0);
    expect(tree()).toEqual(['.index']);
    expect(fx.records(socketDir())).toEqual([]);
    expect(fx.deviceInfoFiles()).toEqual([]);
    expect(fx.leases()).toEqual([]);
  });

  it('takes the path an NPWG implementation passes (runtimeConfig.CNIDeviceInfoFile), only in the spec folder', async () => {
    const id = cid();
    const given = join(fx.deviceInfoDir, `multus-chosen-${id}`);
    const c = conf({ runtimeConfig: { CNIDeviceInfoFile: given } });
    expect((await fx.run(env(id, 'ADD'), c)).code).toBe(0);
    expect(fx.deviceInfoFiles()).toEqual([`multus-chosen-${id}`]);
    // DEL without the capability (a runtime that lost it) still finds it through the record.
    expect((await fx.run(env(id, 'DEL'), conf())).code).toBe(0);
    expect(fx.deviceInfoFiles()).toEqual([]);

    const outside = await fx.run(
      env(cid(), 'ADD'),
      conf({ runtimeConfig: { CNIDeviceInfoFile: join(fx.base, 'elsewhere') } }),
    );
    expect(outside.json).toMatchObject({ code: 7 });
    expect(String(outside.json!.msg)).toContain('runtimeConfig.CNIDeviceInfoFile');
    expect(existsSync(join(fx.base, 'elsewhere'))).toBe(false);
    expect(await fx.portNames()).toEqual([fx.ovs.bridge]);
    expect(fx.leases()).toEqual([]);
  });

  it('a failed ADD (IPAM fails after the record and the port exist) leaves no record, device-info, port or folder', async () => {
    const bad = await fx.run(
      env(cid(), 'ADD'),
      conf({
        ipam: { type: 'host-local', dataDir: fx.ipamDir, ranges: [[{ subnet: 'not-a-subnet' }]] },
      }),
    );
    expect(bad.code).toBe(1);
    expect(tree()).toEqual(['.index']);
    expect(fx.records(socketDir())).toEqual([]);
    expect(fx.deviceInfoFiles()).toEqual([]);
    expect(await fx.portNames()).toEqual([fx.ovs.bridge]);
  });

  it('GC removes a stale attachment whose port is gone and whose file is garbled: the record names it', async () => {
    const [keep, stale, lost] = [cid(), cid(), cid()];
    for (const id of [keep, stale, lost])
      expect((await fx.run(env(id, 'ADD'), conf())).code).toBe(0);
    // Behind the plugin's back: lost's OVS port is deleted and its attachment file garbled, so
    // only the plugin's record ties the hashed folder and the device-info file to it.
    const lostPort = JSON.parse(
      readFileSync(join(socketDir(), hashed(lost), 'net1.json'), 'utf8'),
    ).ovsPort;
    await fx.ovs.vswitch.delPort(lostPort);
    writeFileSync(join(socketDir(), hashed(lost), 'net1.json'), '{"garbled');
    // Garbled records: stale's goes with it (its OVS port says it is this network's); one
    // nothing of this network names stays (records are shared by the networks of a socketDir).
    writeFileSync(join(socketDir(), '.index', `${stale}:net1.json`), '{"garbled');
    const dead = `dead${fx.id}:net1.json`;
    writeFileSync(join(socketDir(), '.index', dead), '{"garbled');
    const gc = await fx.run(
      { CNI_COMMAND: 'GC' },
      conf({ 'cni.dev/valid-attachments': [{ containerID: keep, ifname: 'net1' }] }),
    );
    expect(gc.code, gc.stdout).toBe(0);
    expect(tree()).toEqual([hashed(keep), '.index'].sort());
    expect(fx.records(socketDir())).toEqual([`${keep}:net1.json`, dead].sort());
    rmSync(join(socketDir(), '.index', dead));
    expect(fx.deviceInfoFiles()).toEqual([`${fx.network}-${keep}_net1`]);
    expect(fx.leases()).toHaveLength(1);
    expect(await fx.portNames()).toHaveLength(2);
    expect((await fx.run(env(keep, 'DEL'), conf())).code).toBe(0);
    expect(fx.deviceInfoFiles()).toEqual([]);
    expect(fx.records(socketDir())).toEqual([]);
  });
});
