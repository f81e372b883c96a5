import {
  existsSync,
  lstatSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EmulatedHost, parsePfSpec, pfAddress, vfAddress, vfIfname } from './emulate';
import { EmulationError, VfCreationError } from './errors';

// Names given to the emulated host (a CLI's --ifname, --driver, --pf) stay names: never a path
// out of its tree, never another netdev of the machine.
describe('EmulatedHost names', () => {
  let dir: string;
  let host: EmulatedHost;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'fl-emu-names-'));
    host = EmulatedHost.create({
      root: join(dir, 'r'),
      veth: false,
      pfs: [{ name: 'ens1f0', numVfs: 1 }],
    });
  });
  afterEach(() => {
    host.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('sets the link of its own PF and VF netdevs only', () => {
    host.setLink('ens1f0', 'down');
    for (const other of ['../../..', 'eth0', 'lo'])
      expect(() => host.setLink(other, 'down')).toThrow(EmulationError);
    expect(existsSync(join(dir, 'operstate'))).toBe(false);
  });

  it('binds only to a driver name, never a path', () => {
    expect(() => host.bind(vfAddress(0, 0), '../../../x')).toThrow(/is not a driver name/);
    expect(existsSync(join(dir, 'x'))).toBe(false);
    expect(() => parsePfSpec('ens1f0:1:0:../x')).toThrow(/is not a driver name/);
    expect(parsePfSpec('ens2f0:2:1:vfio-pci').vfDriver).toBe('vfio-pci');
  });
});

/** Every entry under `root`: a folder, a link's target or a file's content. */
function snapshot(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string): void => {
    const path = join(root, rel);
    const st = lstatSync(path);
    if (st.isSymbolicLink()) out[rel] = `-> ${readlinkSync(path)}`;
    else if (st.isDirectory()) {
      out[rel] = 'dir';
      for (const name of readdirSync(path)) walk(join(rel, name));
    } else out[rel] = readFileSync(path, 'utf8');
  };
  walk('.');
  return out;
}

// Writing sriov_numvfs makes all the VFs or none: one that cannot be made (here something in
// the way of VF 2, at its folder or at its netdev's class/net link) takes back the VFs made
// before it, so the count on record stays true and a later write of 0 or N works.
describe('EmulatedHost numvfs that fails part-way', () => {
  let dir: string;
  let host: EmulatedHost;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'fl-emu-numvfs-'));
    host = EmulatedHost.create({
      root: join(dir, 'r'),
      veth: false,
      pfs: [{ name: 'ens1f0', numVfs: 0 }],
    });
  });
  afterEach(() => {
    host.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it.each([
    ['its folder', () => join(host.root, 'devices/pci0000:00', vfAddress(0, 2))],
    ['its netdev', () => join(host.root, 'class/net', vfIfname('ens1f0', 2))],
  ])(
    'leaves the tree as it was when VF 2 cannot be made (%s), naming the VF',
    (_where, blocker) => {
      writeFileSync(blocker(), 'in the way\n');
      const before = snapshot(host.root);

      let err: unknown;
      try {
        host.setNumVfs('ens1f0', 4);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(VfCreationError);
      expect(err).toBeInstanceOf(EmulationError);
      expect(err).toMatchObject({ pf: 'ens1f0', vf: 2, address: vfAddress(0, 2) });
      expect((err as Error).message).toMatch(
        /^VF 2 of ens1f0 \(0000:3b:02\.2\): could not be created \(.*\); the 2 VFs made before it were removed and sriov_numvfs stays 0/,
      );
      expect((err as Error).cause).toBeInstanceOf(Error);
      expect(snapshot(host.root)).toEqual(before); // the blocker stays: not this call's

      // The count on record is still true: 0 is accepted, and N once the way is clear.
      host.setNumVfs('ens1f0', 0);
      rmSync(blocker());
      host.setNumVfs('ens1f0', 4);
      const reopened = EmulatedHost.open(host.root);
      expect(reopened.spec.pfs[0]!.numVfs).toBe(4);
      for (let vf = 0; vf < 4; vf++)
        expect(existsSync(join(host.root, 'bus/pci/devices', vfAddress(0, vf)))).toBe(true);
      host.setNumVfs('ens1f0', 0);
      expect(readdirSync(join(host.root, 'bus/pci/devices'))).toEqual([pfAddress(0)]);
    },
  );
});
