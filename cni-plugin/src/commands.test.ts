import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
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
    containerId = 'c1',
  ): Promise<Outcome> =>
    invoke({
      env: {
        PATH: process.env.PATH,
        CNI_COMMAND: command,
        CNI_CONTAINERID: containerId,
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
    /** A VF of this node in the sysfs stand-in, passed as Multus passes the allocation. */
    vf: (deviceID = '0000:03:02.0'): { runtimeConfig: { deviceID: string }; sysfsRoot: string } => {
      mkdirSync(join(sysfsRoot, 'bus', 'pci', 'devices', deviceID, 'physfn'), { recursive: true });
      return { runtimeConfig: { deviceID }, sysfsRoot };
    },
    /** The ovsdb-server stand-in on conf.ovsdbSocket (with conf's bridge when `bridge`). */
    ovsdb: async (bridge = false): Promise<FakeOvsdb> => {
      const db = new FakeOvsdb(conf.ovsdbSocket);
      if (bridge) db.bridges.add('br-flowline');
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

describe('ADD of an attachment that exists is refused before the IPAM ADD (its lease stays)', () => {
  it('vhost-user: a second ADD of c1/net1 is 101 and the first lease is still there', async () => {
    const n = node();
    const db = await n.ovsdb(true);
    const first = await n.run('ADD', POD_ARGS);
    expect(first.exitCode, first.stdout).toBe(0);
    expect(db.ports.has(ovsPortName('c1', 'net1'))).toBe(true);
    expect(n.leases()).toEqual(['c1:net1']);
    // The pod may remove its own folder's files: the record and the port still say it exists.
    const p = attachmentPaths(n.conf, {
      containerId: 'c1',
      pod: { namespace: 'ns', name: 'p' },
      ifname: 'net1',
    });
    rmSync(p.jsonPath);

    const second = await n.run('ADD', POD_ARGS);
    expect(second.errorCode).toBe(101);
    expect(JSON.parse(second.stdout).msg).toContain('already exists');
    expect(n.leases()).toEqual(['c1:net1']);
    expect(started(n.calls(), 'ADD')).toHaveLength(1);
    expect(started(n.calls(), 'DEL')).toEqual([]);
    // The first attachment is whole: its port and record are still there.
    expect(db.ports.has(ovsPortName('c1', 'net1'))).toBe(true);
    expect(readdirSync(join(n.socketDir, '.index'))).toEqual(['c1:net1.json']);
  });

  it('vhost-user: refused on the OVS port alone (no record), the lease untouched', async () => {
    const n = node();
    const db = await n.ovsdb(true);
    db.ports.add(ovsPortName('c1', 'net1'));
    mkdirSync(n.conf.ipam.store);
    writeFileSync(join(n.conf.ipam.store, 'c1:net1'), '10.9.0.2/24');
    const add = await n.run('ADD', POD_ARGS);
    expect(add.errorCode).toBe(101);
    expect(JSON.parse(add.stdout).msg).toContain(`OVS port ${ovsPortName('c1', 'net1')}`);
    expect(n.leases()).toEqual(['c1:net1']);
    expect(started(n.calls(), 'ADD')).toEqual([]);
    expect(started(n.calls(), 'DEL')).toEqual([]);
  });

  it('SR-IOV VF: a second ADD of c1/net1 is 101 and the first lease is still there', async () => {
    const n = node();
    const vf = n.vf();
    expect((await n.run('ADD', POD_ARGS, vf)).exitCode).toBe(0);
    expect(n.leases()).toEqual(['c1:net1']);
    const second = await n.run('ADD', POD_ARGS, vf);
    expect(second.errorCode).toBe(101);
    expect(n.leases()).toEqual(['c1:net1']);
    expect(started(n.calls(), 'ADD')).toHaveLength(1);
    expect(started(n.calls(), 'DEL')).toEqual([]);
    // DEL releases it all, the record last; then ADD works again.
    expect((await n.run('DEL', POD_ARGS, vf)).exitCode).toBe(0);
    expect(n.leases()).toEqual([]);
    expect(readdirSync(join(n.socketDir, '.index'))).toEqual([]);
    expect((await n.run('ADD', POD_ARGS, vf)).exitCode).toBe(0);
  });
});

describe('CHECK with the netns gone: 3 only when the attachment is gone too', () => {
  const prevResult = (n: ReturnType<typeof node>) => ({
    cniVersion: '1.0.0',
    interfaces: [{ name: 'net1', sandbox: n.netns }],
  });

  it('vhost-user: 110 while the record, port and lease exist', async () => {
    const n = node();
    const db = await n.ovsdb(true);
    expect((await n.run('ADD', POD_ARGS)).exitCode).toBe(0);
    rmSync(n.netns);
    const r = await n.run('CHECK', POD_ARGS, { prevResult: prevResult(n) });
    expect(r.errorCode).toBe(110);
    expect(JSON.parse(r.stdout).msg).toContain(
      `CNI_NETNS ${n.netns} does not exist, though the plugin's record of it exists`,
    );
    // Only the OVS port left (a record-less attachment): still 110.
    rmSync(join(n.socketDir, '.index', 'c1:net1.json'));
    const port = await n.run('CHECK', POD_ARGS, { prevResult: prevResult(n) });
    expect(port.errorCode).toBe(110);
    expect(JSON.parse(port.stdout).msg).toContain(`OVS port ${ovsPortName('c1', 'net1')} exists`);
    db.ports.clear();
    expect((await n.run('CHECK', POD_ARGS, { prevResult: prevResult(n) })).errorCode).toBe(3);
  });

  it('SR-IOV VF: 110 while its record exists, 3 once DEL removed it', async () => {
    const n = node();
    const vf = n.vf();
    expect((await n.run('ADD', POD_ARGS, vf)).exitCode).toBe(0);
    rmSync(n.netns);
    const r = await n.run('CHECK', POD_ARGS, { ...vf, prevResult: prevResult(n) });
    expect(r.errorCode).toBe(110);
    expect(n.leases()).toEqual(['c1:net1']);
    expect((await n.run('DEL', POD_ARGS, vf)).exitCode).toBe(0);
    expect((await n.run('CHECK', POD_ARGS, { ...vf, prevResult: prevResult(n) })).errorCode).toBe(
      3,
    );
  });
});

describe("GC leaves what may be another network's (records and pod folders are shared)", () => {
  it("netA's GC with an empty valid list leaves netB's unreadable record and garbled file", async () => {
    const n = node();
    const db = await n.ovsdb(true);
    const index = join(n.socketDir, '.index');
    // This network's attachment, its record garbled: its OVS port says it is this network's.
    expect((await n.run('ADD', POD_ARGS)).exitCode).toBe(0);
    writeFileSync(join(index, 'c1:net1.json'), '{"network":"net","contain');
    // Another network's: a record cut short, a garbled attachment file no port here claims.
    writeFileSync(join(index, 'cB:net1.json'), '{"network":"netB","contain');
    const other = join(n.socketDir, 'ns_pb');
    mkdirSync(other);
    writeFileSync(join(other, 'net1.json'), '{"cniVersion": "1.1.0", "contai');

    const gc = await n.run('GC', undefined, {
      cniVersion: '1.1.0',
      'cni.dev/valid-attachments': [],
    });
    expect(gc.exitCode, gc.stdout).toBe(0);
    expect(db.ports.size).toBe(0);
    expect(n.leases()).toEqual([]);
    expect(readdirSync(index)).toEqual(['cB:net1.json']);
    expect(readFileSync(join(other, 'net1.json'), 'utf8')).toBe('{"cniVersion": "1.1.0", "contai');
  });
});

describe('SR-IOV VF: the VF comes from runtimeConfig.deviceID and is held by one attachment', () => {
  it("refuses a top-level deviceID (the NAD's author writes it) before anything is made", async () => {
    const n = node();
    const { runtimeConfig, sysfsRoot } = n.vf();
    const add = await n.run('ADD', POD_ARGS, { deviceID: runtimeConfig.deviceID, sysfsRoot });
    expect(add.errorCode).toBe(7);
    expect(JSON.parse(add.stdout).msg).toContain('runtimeConfig.deviceID');
    expect(started(n.calls(), 'ADD')).toEqual([]);
    expect(n.leases()).toEqual([]);
    // DEL still takes it, to release what an attachment recorded.
    expect(
      (await n.run('DEL', POD_ARGS, { deviceID: runtimeConfig.deviceID, sysfsRoot })).exitCode,
    ).toBe(0);
  });

  it('refuses a VF another attachment holds (7), its lease untouched; free again after its DEL', async () => {
    const n = node();
    const vf = n.vf();
    expect((await n.run('ADD', POD_ARGS, vf, 'c1')).exitCode).toBe(0);
    const other = await n.run(
      'ADD',
      'IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=q',
      vf,
      'c2',
    );
    expect(other.errorCode).toBe(7);
    expect(JSON.parse(other.stdout).msg).toContain(
      'runtimeConfig.deviceID 0000:03:02.0 is held by attachment c1/net1 of network net',
    );
    expect(n.leases()).toEqual(['c1:net1']);
    expect(started(n.calls(), 'ADD').map((c) => c.id)).toEqual(['c1:net1']);
    expect(readdirSync(join(n.socketDir, '.index'))).toEqual(['c1:net1.json']);
    // CHECK of the holder passes the claim (the fake IPAM has no CHECK); DEL frees the VF.
    const prevResult = {
      cniVersion: '1.0.0',
      interfaces: [{ name: 'net1', sandbox: n.netns, pciID: '0000:03:02.0' }],
    };
    expect(
      (await n.run('CHECK', POD_ARGS, { ...vf, prevResult, ipam: undefined }, 'c1')).exitCode,
    ).toBe(0);
    expect((await n.run('DEL', POD_ARGS, vf, 'c1')).exitCode).toBe(0);
    expect((await n.run('ADD', POD_ARGS, vf, 'c2')).exitCode).toBe(0);
    expect(n.leases()).toEqual(['c2:net1']);
  });

  it('takes over the claim of an attachment whose record is gone (GC removed it)', async () => {
    const n = node();
    const vf = n.vf();
    expect((await n.run('ADD', POD_ARGS, vf, 'c1')).exitCode).toBe(0);
    rmSync(join(n.socketDir, '.index', 'c1:net1.json'));
    expect((await n.run('ADD', POD_ARGS, vf, 'c2')).exitCode).toBe(0);
  });

  it('GC of a stale VF attachment releases its lease, claim and record', async () => {
    const n = node();
    const vf = n.vf();
    await n.ovsdb(true);
    expect((await n.run('ADD', POD_ARGS, vf, 'c1')).exitCode).toBe(0);
    const gc = await n.run('GC', undefined, {
      cniVersion: '1.1.0',
      'cni.dev/valid-attachments': [],
    });
    expect(gc.exitCode, gc.stdout).toBe(0);
    expect(n.leases()).toEqual([]);
    expect(readdirSync(join(n.socketDir, '.index'))).toEqual([]);
    expect(readdirSync(join(n.socketDir, '.vf'))).toEqual([]);
  });
});

describe('the vhost-user socket path: nothing or a socket, never a symlink or a file', () => {
  const pod = { namespace: 'ns', name: 'p' };
  /** A unix socket at `path`, as the pod's DPDK application makes it. */
  const listen = async (path: string): Promise<void> => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(path, resolve));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  };
  /** What the pod could put at the path: a symlink to another pod's socket, a regular file. */
  const plant = (n: ReturnType<typeof node>, socketPath: string, what: string): void => {
    rmSync(socketPath, { force: true });
    if (what === 'symlink') symlinkSync(join(n.socketDir, 'ns_victim', 'net1.sock'), socketPath);
    else writeFileSync(socketPath, '');
  };

  for (const what of ['symlink', 'file'])
    it(`ADD refuses a ${what} there (5) before the IPAM ADD, and leaves it`, async () => {
      const n = node();
      await n.ovsdb(true);
      const p = attachmentPaths(n.conf, { containerId: 'c1', pod, ifname: 'net1' });
      mkdirSync(p.podDir, { recursive: true });
      plant(n, p.socketPath, what);
      const add = await n.run('ADD', POD_ARGS);
      expect(add.errorCode).toBe(5);
      expect(JSON.parse(add.stdout).msg).toContain(
        `the socket path ${p.socketPath} is ${what === 'symlink' ? 'a symbolic link' : 'a regular file'}`,
      );
      expect(started(n.calls(), 'ADD')).toEqual([]);
      expect(n.leases()).toEqual([]);
      expect(readdirSync(p.podDir)).toEqual(['net1.sock']);
    });

  it('ADD takes a socket already there (the pod application made it)', async () => {
    const n = node();
    await n.ovsdb(true);
    const p = attachmentPaths(n.conf, { containerId: 'c1', pod, ifname: 'net1' });
    mkdirSync(p.podDir, { recursive: true });
    await listen(p.socketPath);
    const add = await n.run('ADD', POD_ARGS);
    expect(add.exitCode, add.stdout).toBe(0);
  });

  it('CHECK passes with nothing or a socket there, fails with 110 for a symlink or a file', async () => {
    const n = node();
    await n.ovsdb(true);
    // Without IPAM: the fake IPAM has no CHECK.
    const add = await n.run('ADD', POD_ARGS, { ipam: undefined });
    expect(add.exitCode, add.stdout).toBe(0);
    const check = () =>
      n.run('CHECK', POD_ARGS, { ipam: undefined, prevResult: JSON.parse(add.stdout) });
    expect((await check()).exitCode).toBe(0);
    const p = attachmentPaths(n.conf, { containerId: 'c1', pod, ifname: 'net1' });
    await listen(p.socketPath);
    expect((await check()).exitCode).toBe(0);
    for (const what of ['symlink', 'file']) {
      plant(n, p.socketPath, what);
      const r = await check();
      expect(r.errorCode, what).toBe(110);
      expect(JSON.parse(r.stdout).msg).toContain(
        `the socket path ${p.socketPath} is ${what === 'symlink' ? 'a symbolic link (to ' : 'a regular file'}`,
      );
    }
  });
});
