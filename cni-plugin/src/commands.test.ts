import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeOvsdb } from '../test/support/fake-ovsdb';
import { invoke, type Outcome } from './invoke';
import { attachmentPaths, ovsPortName } from './naming';
import { writeRecord } from './records';

// Spec-driven (SPEC.md sections 3 and 4, as containernetworking/plugins' own tests are): each
// case runs one invocation through the exec protocol's in-process entry point against an IPAM
// plugin that keeps its leases as files and an ovsdb-server stand-in (test/support).

const FAKE_IPAM = join(__dirname, '..', 'test', 'support', 'fake-ipam.cjs');
const POD_ARGS = 'IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p';

interface IpamCall {
  command: string;
  id: string;
  args: string | null;
  phase: 'start' | 'end';
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A node: socketDir, CNI_PATH with the fake IPAM, a netns file, its leases and call log. */
function node(ipam: Record<string, unknown> = {}) {
  const base = mkdtempSync(join(tmpdir(), 'flcni-cmd-'));
  cleanups.push(() => rmSync(base, { recursive: true, force: true }));
  const bin = join(base, 'bin');
  mkdirSync(bin);
  copyFileSync(FAKE_IPAM, join(bin, 'fake-ipam'));
  chmodSync(join(bin, 'fake-ipam'), 0o755);
  const netns = join(base, 'netns');
  writeFileSync(netns, '');
  const store = join(base, 'leases');
  const callLog = join(base, 'ipam-calls.jsonl');
  const socketDir = join(base, 'sock');
  const sysfsRoot = join(base, 'sys');
  const conf = {
    cniVersion: '1.0.0',
    name: 'net',
    type: 'flowline',
    socketDir,
    ovsdbSocket: join(base, 'db.sock'),
    deviceInfoDir: join(base, 'devinfo'),
    ipam: { type: 'fake-ipam', store, callLog, ...ipam },
  };
  const run = (
    command: string,
    args: string | undefined,
    over: Record<string, unknown> = {},
  ): Promise<Outcome> =>
    invoke({
      env: {
        PATH: process.env.PATH,
        CNI_COMMAND: command,
        CNI_CONTAINERID: 'c1',
        CNI_IFNAME: 'net1',
        CNI_NETNS: netns,
        CNI_PATH: bin,
        ...(args === undefined ? {} : { CNI_ARGS: args }),
      },
      stdin: JSON.stringify({ ...conf, ...over }),
    });
  return {
    base,
    netns,
    socketDir,
    conf,
    run,
    leases: (): string[] => (existsSync(store) ? readdirSync(store) : []),
    /** The IPAM calls logged so far (a line still being appended is not one yet). */
    calls: (): IpamCall[] =>
      existsSync(callLog)
        ? readFileSync(callLog, 'utf8')
            .split('\n')
            .slice(0, -1)
            .map((l) => JSON.parse(l) as IpamCall)
        : [],
    /** A VF of this node in the sysfs stand-in, as the device plugin allocates it. */
    vf: (deviceID = '0000:03:02.0'): { deviceID: string; sysfsRoot: string } => {
      mkdirSync(join(sysfsRoot, 'bus', 'pci', 'devices', deviceID, 'physfn'), { recursive: true });
      return { deviceID, sysfsRoot };
    },
    /** The ovsdb-server stand-in on conf.ovsdbSocket. */
    ovsdb: async (): Promise<FakeOvsdb> => {
      const db = new FakeOvsdb(conf.ovsdbSocket);
      await db.listen();
      cleanups.push(() => db.close());
      return db;
    },
  };
}

const started = (calls: IpamCall[], command: string): IpamCall[] =>
  calls.filter((c) => c.command === command && c.phase === 'start');

describe('ADD: a failed ADD leaves no IPAM lease (the delegate gets DEL before ADD fails)', () => {
  for (const addFails of ['after-reserve', 'bad-result'])
    it(`vhost-user: IPAM ${addFails}, then the bridge is missing`, async () => {
      const n = node({ addFails });
      await n.ovsdb(); // no bridge: ADD fails with 7 while the IPAM ADD runs
      const add = await n.run('ADD', POD_ARGS);
      expect(add.exitCode).toBe(1);
      expect(add.errorCode).toBe(7);
      expect(started(n.calls(), 'DEL').map((c) => c.id)).toEqual(['c1:net1']);
      expect(n.leases()).toEqual([]);
    });

  it('vhost-user: IPAM succeeded, OVS unreachable (code 11)', async () => {
    const n = node();
    const add = await n.run('ADD', POD_ARGS);
    expect(add.errorCode).toBe(11);
    expect(n.leases()).toEqual([]);
  });

  for (const [addFails, code] of [
    ['after-reserve', 11],
    ['bad-result', 6],
  ] as const)
    it(`SR-IOV VF: IPAM ${addFails} fails ADD with code ${code} and is DELeted`, async () => {
      const n = node({ addFails });
      const add = await n.run('ADD', POD_ARGS, n.vf());
      expect(add.errorCode).toBe(code);
      expect(started(n.calls(), 'DEL').map((c) => c.id)).toEqual(['c1:net1']);
      expect(n.leases()).toEqual([]);
    });
});

describe('DEL of an SR-IOV VF attachment', () => {
  it('releases the lease when CNI_ARGS are unusable (DEL never refuses for CNI_ARGS)', async () => {
    const n = node();
    const vf = n.vf();
    expect((await n.run('ADD', POD_ARGS, vf)).exitCode).toBe(0);
    expect(n.leases()).toEqual(['c1:net1']);
    const del = await n.run('DEL', 'FOO=1', vf);
    expect(del).toEqual({ exitCode: 0, stdout: '' });
    expect(started(n.calls(), 'DEL').map((c) => c.args)).toEqual(['IgnoreUnknown=1']);
    expect(n.leases()).toEqual([]);
  });

  it('waits for an ADD of the same attachment, whatever pod its CNI_ARGS name', async () => {
    const n = node({ addDelayMs: 500 });
    const vf = n.vf();
    const add = n.run('ADD', POD_ARGS, vf);
    const deadline = Date.now() + 10_000;
    while (started(n.calls(), 'ADD').length === 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 10));
    const del = n.run('DEL', 'FOO=1', vf);
    expect((await add).exitCode).toBe(0);
    expect((await del).exitCode).toBe(0);
    const order = n.calls().filter((c) => c.command !== 'VERSION');
    expect(order.map((c) => `${c.command} ${c.phase}`)).toEqual([
      'ADD start',
      'ADD end',
      'DEL start',
      'DEL end',
    ]);
    expect(n.leases()).toEqual([]);
  });
});

describe('CHECK: code 3 only when neither the record nor the OVS port knows the attachment', () => {
  const pod = { namespace: 'ns', name: 'p' };
  const check = (n: ReturnType<typeof node>): Promise<Outcome> =>
    n.run('CHECK', POD_ARGS, {
      prevResult: { cniVersion: '1.0.0', interfaces: [{ name: 'net1', sandbox: n.netns }] },
    });
  const paths = (n: ReturnType<typeof node>) =>
    attachmentPaths(n.conf, { containerId: 'c1', pod, ifname: 'net1' });
  const record = async (n: ReturnType<typeof node>): Promise<void> => {
    await writeRecord(n.socketDir, {
      network: 'net',
      containerID: 'c1',
      ifname: 'net1',
      pod,
      folder: paths(n).folderName,
    });
    mkdirSync(paths(n).podDir, { recursive: true });
  };

  it('fails with 110 naming the missing file when the record exists', async () => {
    const n = node();
    await record(n);
    const r = await check(n);
    expect(r.errorCode).toBe(110);
    expect(JSON.parse(r.stdout).msg).toContain(`${paths(n).jsonPath} is missing`);
  });

  it('fails with 110 when the pod rewrote the file to name another container', async () => {
    const n = node();
    await record(n);
    writeFileSync(
      paths(n).jsonPath,
      JSON.stringify({
        cniVersion: '1.0.0',
        network: 'net',
        containerID: 'other',
        ifname: 'net1',
        mac: '02:00:00:00:00:01',
        ips: [],
      }),
    );
    const r = await check(n);
    expect(r.errorCode).toBe(110);
    expect(JSON.parse(r.stdout).msg).toContain('container other');
  });

  it('fails with 110 when only the OVS port is left', async () => {
    const n = node();
    (await n.ovsdb()).ports.add(ovsPortName('c1', 'net1'));
    const r = await check(n);
    expect(r.errorCode).toBe(110);
    expect(JSON.parse(r.stdout).msg).toContain(`OVS port ${ovsPortName('c1', 'net1')} exists`);
  });

  it('answers 3 when there is no record and no port', async () => {
    const n = node();
    await n.ovsdb();
    expect((await check(n)).errorCode).toBe(3);
  });
});

describe('DEL with a directory the pod left at <ifname>.json.prev', () => {
  it('leaves that directory and completes: port, files, IPAM lease and record', async () => {
    const n = node();
    const db = await n.ovsdb();
    const port = ovsPortName('c1', 'net1');
    db.ports.add(port);
    const p = attachmentPaths(n.conf, {
      containerId: 'c1',
      pod: { namespace: 'ns', name: 'p' },
      ifname: 'net1',
    });
    await writeRecord(n.socketDir, {
      network: 'net',
      containerID: 'c1',
      ifname: 'net1',
      pod: { namespace: 'ns', name: 'p' },
      folder: p.folderName,
    });
    mkdirSync(`${p.jsonPath}.prev`, { recursive: true });
    writeFileSync(p.jsonPath, '{}');
    mkdirSync(n.conf.ipam.store);
    writeFileSync(join(n.conf.ipam.store, 'c1:net1'), '10.9.0.2/24');

    const del = await n.run('DEL', POD_ARGS);
    expect(del).toEqual({ exitCode: 0, stdout: '' });
    expect(db.ports.has(port)).toBe(false);
    expect(existsSync(p.jsonPath)).toBe(false);
    expect(existsSync(`${p.jsonPath}.prev`)).toBe(true);
    expect(n.leases()).toEqual([]);
    expect(readdirSync(join(n.socketDir, '.index'))).toEqual([]);
  });
});
