import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EmulatedHost, parsePfSpec, vfAddress } from './emulate';
import { EmulationError } from './errors';

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
