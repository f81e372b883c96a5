// Device-info files and CDI specs: written crash-safely, and read back when a plugin starts over
// files an earlier run left (it crashed or was killed while pods used them).
import { createLogger } from '@flowline/telemetry';
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseConfig } from './config';
import { EmulatedHost, vfAddress } from '@flowline/emulation';
import { type AllocationSettings, type DeviceProvider, planProviders } from './providers';
import { PoolAssigner } from './selectors';
import { Sysfs, discoverHugepages, discoverPfs } from './sysfs';

interface Logged {
  level: string;
  component: string;
  msg: string;
  [field: string]: unknown;
}

const CONFIG = parseConfig({
  pools: [
    { name: 'sriov_vf', selectors: { pfNames: ['ens1f0'] } },
    { name: 'vfio', deviceType: 'vfio-pci', selectors: { pfNames: ['ens2f0'] }, cdi: true },
  ],
});

let dir: string;
let host: EmulatedHost;
let logs: Logged[];
let settings: AllocationSettings;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'fl-dp-files-'));
  host = EmulatedHost.create({
    root: join(dir, 'sys'),
    veth: false,
    pfs: [
      { name: 'ens1f0', numVfs: 3, numaNode: 0 },
      { name: 'ens2f0', numVfs: 2, numaNode: 0, vfDriver: 'vfio-pci' },
    ],
  });
  logs = [];
  settings = {
    devInfoDir: join(dir, 'devinfo'),
    cdiDir: join(dir, 'cdi'),
    vfioDir: join(dir, 'vfio'),
    logger: createLogger('device-plugin', {
      write: (line) => logs.push(JSON.parse(line) as Logged),
    }),
  };
});
afterEach(() => {
  host.destroy();
  rmSync(dir, { recursive: true, force: true });
});

/** What the daemon does at start: scan the host, plan the providers. */
function startPlugin(): Map<string, DeviceProvider> {
  const sysfs = new Sysfs(host.root);
  const snapshot = {
    vfsByPool: new PoolAssigner().assign(discoverPfs(sysfs), CONFIG.pools),
    hugepages: discoverHugepages(sysfs),
  };
  return planProviders(CONFIG, snapshot, new Map(), settings);
}

const devInfo = (address: string): string =>
  join(settings.devInfoDir, `flowline.io-sriov_vf-${address}-device.json`);
const cdiSpec = (): string => join(settings.cdiDir, 'flowline.io-vfio.json');
const npwg = (address: string): unknown => ({
  type: 'pci',
  version: '1.1.0',
  pci: { 'pci-address': address, 'pf-pci-address': '0000:3b:00.0' },
});

describe('device-info files and CDI specs', () => {
  it('are written whole at the NPWG path, readable by others, with no temporary or .prev file left', () => {
    const vf = startPlugin().get('flowline.io/sriov_vf')!;
    vf.allocate([vfAddress(0, 1)]);
    const first = statSync(devInfo(vfAddress(0, 1))).ino;
    vf.allocate([vfAddress(0, 1)]); // Allocate again (a container restart) rewrites it
    // by a new file renamed over the old one, never by writing into the file readers open
    expect(statSync(devInfo(vfAddress(0, 1))).ino).not.toBe(first);
    expect(JSON.parse(readFileSync(devInfo(vfAddress(0, 1)), 'utf8'))).toEqual(
      npwg(vfAddress(0, 1)),
    );
    expect(statSync(devInfo(vfAddress(0, 1))).mode & 0o777).toBe(0o644);
    expect(readdirSync(settings.devInfoDir)).toEqual([
      `flowline.io-sriov_vf-${vfAddress(0, 1)}-device.json`,
    ]);
    expect(readdirSync(settings.cdiDir)).toEqual(['flowline.io-vfio.json']);
    expect(statSync(cdiSpec()).mode & 0o777).toBe(0o644);
  });

  it('left cut short or garbled by an earlier run: the plugin starts, says which file and why, and rewrites them from the host', () => {
    // An earlier run allocated three VFs and the CDI spec, then died; a crash (or a disk) left
    // one file truncated, one garbled, and the CDI spec garbled; one VF's file is intact.
    const earlier = startPlugin();
    earlier.get('flowline.io/sriov_vf')!.allocate([0, 1, 2].map((i) => vfAddress(0, i)));
    const intact = devInfo(vfAddress(0, 0));
    const truncated = devInfo(vfAddress(0, 1));
    const garbled = devInfo(vfAddress(0, 2));
    writeFileSync(truncated, readFileSync(truncated, 'utf8').slice(0, 25));
    writeFileSync(garbled, '\u0000\u0000{"type": "pci", garbage');
    writeFileSync(cdiSpec(), '{"cdiVersion": "0.6.0", "kind": "flowline.io/vf');
    // A VF gone since (its file garbled too): moved aside, not rewritten.
    const gone = devInfo('0000:3b:02.7');
    writeFileSync(gone, 'not json');

    const providers = startPlugin();

    for (const file of [truncated, garbled])
      expect(JSON.parse(readFileSync(file, 'utf8')), file).toEqual(
        npwg(file.match(/(0000:[^-]+)-device/)![1]!),
      );
    expect(JSON.parse(readFileSync(cdiSpec(), 'utf8')).kind).toBe('flowline.io/vfio');
    const warned = logs.filter((l) => l.level === 'warn');
    expect(warned.map((l) => l.file).sort()).toEqual([truncated, garbled, gone, cdiSpec()].sort());
    for (const l of warned) {
      expect(l.component).toBe('device-plugin');
      expect(l.error, String(l.file)).toMatch(/JSON|Unexpected|position/);
      expect(String(l.movedTo)).toMatch(/\.corrupt-/);
      expect(readFileSync(String(l.movedTo), 'utf8')).not.toBe('');
    }
    expect(warned.find((l) => l.file === truncated)!.msg).toMatch(/rewritten from the host/);
    expect(warned.find((l) => l.file === gone)!.msg).toMatch(/VF is gone; not rewritten/);
    expect(
      readdirSync(settings.devInfoDir)
        .filter((f) => f.endsWith('-device.json'))
        .sort(),
    ).toEqual(
      [intact, truncated, garbled].map((f) => f.slice(settings.devInfoDir.length + 1)).sort(),
    );

    // The files of the earlier run are now this run's: stopping removes them, intact one too.
    for (const p of providers.values()) p.cleanup();
    expect(readdirSync(settings.devInfoDir).filter((f) => f.endsWith('-device.json'))).toEqual([]);
    expect(readdirSync(settings.cdiDir).filter((f) => f.endsWith('.json'))).toEqual([]);
  });

  it('leaves files of other pools and other programs in the shared folder alone', () => {
    mkdirSync(settings.devInfoDir, { recursive: true });
    const other = [
      'flowline.io-sriov_vf2-0000:3b:02.0-device.json', // another pool whose name starts alike
      'intel.com-sriov-0000:3b:02.0-device.json', // another device plugin
    ];
    for (const f of other) writeFileSync(join(settings.devInfoDir, f), 'garbled by someone else');
    const providers = startPlugin();
    for (const p of providers.values()) p.cleanup();
    expect(readdirSync(settings.devInfoDir).sort()).toEqual(other.sort());
    expect(logs.filter((l) => l.level === 'warn')).toEqual([]);
  });
});
