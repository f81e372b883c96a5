import {
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CniFixture, PLUGIN_MODES } from '../support/fixture';

// The pod's folder under socketDir is the pod's to write (contract 2,
// docs/architecture.md#cni-to-switch-and-pod): everything the plugin
// reads there may be crafted or garbled. Through the executable, as a runtime runs it, with the
// daemon and in-process: GC, DEL and CHECK touch only what they derive, leave victims outside
// (and inside) alone, still clean up what is theirs, and say what they did.
describe.each(PLUGIN_MODES)('attachment files written by the pod, %s (integration)', (mode) => {
  const fx = new CniFixture(mode);
  let netns: string;
  let n = 0;
  const cid = (): string => `c${fx.id}x${++n}`;
  const victims = () => ({
    rel: `${fx.base}/victim-rel`, // = <socketDir>/../victim-rel
    abs: `/tmp/flcni-victim-${fx.id}`,
    json: `${fx.base}/victim-json`,
    dir: `${fx.base}/victim-dir`,
  });
  const servers: Server[] = [];

  beforeAll(async () => {
    await fx.start();
    netns = fx.netns('files');
  }, 90_000);
  afterAll(async () => {
    for (const s of servers) s.close();
    rmSync(victims().abs, { force: true });
    await fx.stop();
  }, 60_000);
  beforeEach(() => {
    const v = victims();
    for (const f of [v.rel, v.abs, v.json]) writeFileSync(f, 'precious');
    rmSync(v.dir, { recursive: true, force: true });
    mkdirSync(v.dir);
    writeFileSync(join(v.dir, 'net1.json'), 'precious');
    writeFileSync(join(v.dir, 'net1.sock'), 'precious');
  });
  const victimsIntact = (): void => {
    const v = victims();
    for (const f of [v.rel, v.abs, v.json]) expect(readFileSync(f, 'utf8'), f).toBe('precious');
    expect(readdirSync(v.dir).sort()).toEqual(['net1.json', 'net1.sock']);
    for (const f of ['net1.json', 'net1.sock'])
      expect(readFileSync(join(v.dir, f), 'utf8')).toBe('precious');
  };

  const podArgs = (name: string) => ({
    CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=files;K8S_POD_NAME=${name}`,
  });
  const env = (id: string, extra: Record<string, string> = {}) => ({
    CNI_CONTAINERID: id,
    CNI_NETNS: netns,
    CNI_IFNAME: 'net1',
    ...extra,
  });
  const add = async (id: string, extra: Record<string, string> = {}) => {
    const r = await fx.run({ CNI_COMMAND: 'ADD', ...env(id, extra) }, fx.conf());
    expect(r.code, r.stdout).toBe(0);
    return r.json!;
  };
  const folderOf = (id: string, extra: Record<string, string> = {}): string => {
    const pod = /K8S_POD_NAME=([^;]+)/.exec(extra.CNI_ARGS ?? '')?.[1];
    return join(fx.socketDir, pod ? `files_${pod}` : id);
  };
  const jsonOf = (folder: string): Record<string, unknown> =>
    JSON.parse(readFileSync(join(folder, 'net1.json'), 'utf8')) as Record<string, unknown>;
  const rewrite = (folder: string, changes: Record<string, unknown>): void =>
    writeFileSync(join(folder, 'net1.json'), JSON.stringify({ ...jsonOf(folder), ...changes }));
  /** A live unix socket at `path`, as the pod's DPDK (the vhost-user server) leaves one. */
  const socketAt = (path: string): Promise<void> =>
    new Promise((resolve) => {
      const s = createServer();
      servers.push(s);
      s.listen(path, () => resolve());
    });
  const gc = (valid: string[]) =>
    fx.runLogged(
      { CNI_COMMAND: 'GC' },
      fx.conf({
        'cni.dev/valid-attachments': valid.map((containerID) => ({ containerID, ifname: 'net1' })),
      }),
      'gc',
    );

  it('GC removes stale attachments by derived paths only: crafted paths, symlinks and a symlinked folder leave the victims intact', async () => {
    const v = victims();
    const [a, b, c, e, k] = [cid(), cid(), cid(), cid(), cid()];
    const d = cid();
    const dArgs = podArgs(`pod-${d}`);
    for (const id of [a, b, c, e, k]) await add(id);
    await add(d, dArgs);
    const kPort = jsonOf(folderOf(k)).ovsPort as string;
    // A: paths out of socketDir by "..", and another (kept) attachment's OVS port.
    rewrite(folderOf(a), { socketPath: `${fx.socketDir}/../victim-rel`, ovsPort: kPort });
    await socketAt(join(folderOf(a), 'net1.sock')); // its real socket: GC removes that
    // B: an absolute path.
    rewrite(folderOf(b), { socketPath: v.abs });
    // C: its socket is a symlink to a victim.
    symlinkSync(v.abs, join(folderOf(c), 'net1.sock'));
    // D: its pod folder is a symlink to a folder holding files of the same names.
    renameSync(folderOf(d, dArgs), `${fx.base}/d-moved`);
    symlinkSync(v.dir, folderOf(d, dArgs));
    // E: its json is a symlink to a victim.
    rmSync(join(folderOf(e), 'net1.json'));
    symlinkSync(v.json, join(folderOf(e), 'net1.json'));

    const r = await gc([k]);
    victimsIntact();
    // What is not a socket, and the symlinked folder, were left and reported (code 120).
    expect(r.json, r.stdout).toMatchObject({ code: 120 });
    expect(String(r.json!.msg)).toMatch(/removed 3 of 5 stale attachments/);
    const details = String(r.json!.details);
    expect(details).toContain(
      `${join(folderOf(c), 'net1.sock')} left alone: it is a symbolic link`,
    );
    expect(details).toContain(`${folderOf(d, dArgs)} left alone: it is a symbolic link`);
    // Everything else of the stale ones is gone: ports, leases, files, folders.
    for (const id of [a, b, e]) expect(existsSync(folderOf(id)), id).toBe(false);
    expect(readdirSync(folderOf(c))).toEqual(['net1.sock']);
    const ports = await fx.portNames();
    expect(ports).toEqual([fx.ovs.bridge, kPort].sort());
    expect(fx.leases()).toHaveLength(1);
    expect(readdirSync(folderOf(k))).toEqual(['net1.json']);
    expect(r.log).toContainEqual(
      expect.objectContaining({
        msg: 'gc removed attachment files',
        attachment: `${a}/net1`,
        removed: expect.arrayContaining([expect.stringMatching(/net1\.sock$/)]),
      }),
    );

    // Once an operator removed what was reported, GC completes.
    rmSync(folderOf(c), { recursive: true });
    rmSync(folderOf(d, dArgs));
    rmSync(`${fx.base}/d-moved`, { recursive: true });
    const again = await gc([k]);
    expect(again.code, again.stdout).toBe(0);
    victimsIntact();
    expect((await fx.run({ CNI_COMMAND: 'DEL', ...env(k) }, fx.conf())).code).toBe(0);
  });

  it('DEL and CHECK derive the socket and the port: a crafted json, a symlinked socket, json or folder leave the victims intact', async () => {
    const v = victims();
    const [x, y, z, w] = [cid(), cid(), cid(), cid()];
    const wArgs = podArgs(`pod-${w}`);
    const xResult = await add(x);
    await add(y);
    const zResult = await add(z);
    await add(w, wArgs);
    const yPort = jsonOf(folderOf(y)).ovsPort as string;
    rewrite(folderOf(x), { socketPath: `${fx.socketDir}/../victim-rel`, ovsPort: yPort });
    const check = (id: string, prev: unknown) =>
      fx.run({ CNI_COMMAND: 'CHECK', ...env(id) }, fx.conf({ prevResult: prev }));
    // The json's paths are not what CHECK compares with: it derives them.
    expect((await check(x, xResult)).code).toBe(0);
    symlinkSync(v.abs, join(folderOf(x), 'net1.sock'));
    const delX = await fx.runLogged({ CNI_COMMAND: 'DEL', ...env(x) }, fx.conf(), 'deleted');
    expect(delX.code, delX.stdout).toBe(0);
    victimsIntact();
    expect(await fx.portNames()).toContain(yPort);
    expect(readdirSync(folderOf(x))).toEqual(['net1.sock']);
    expect(delX.log).toContainEqual(
      expect.objectContaining({
        msg: 'DEL left files that are not what the plugin made',
        refused: [
          {
            path: join(folderOf(x), 'net1.sock'),
            reason: expect.stringContaining('symbolic link'),
          },
        ],
      }),
    );
    rmSync(folderOf(x), { recursive: true });

    // A json that is a symlink: CHECK fails saying so; DEL unlinks the link, not its target.
    rmSync(join(folderOf(z), 'net1.json'));
    symlinkSync(v.json, join(folderOf(z), 'net1.json'));
    const bad = await check(z, zResult);
    expect(bad.json).toMatchObject({ code: 110 });
    expect(String(bad.json!.msg)).toContain('is a symbolic link');
    expect((await fx.run({ CNI_COMMAND: 'DEL', ...env(z) }, fx.conf())).code).toBe(0);
    expect(existsSync(folderOf(z))).toBe(false);
    victimsIntact();

    // A pod folder that is a symlink: DEL does not enter it; ADD refuses it (code 5, naming it).
    renameSync(folderOf(w, wArgs), `${fx.base}/w-moved`);
    symlinkSync(v.dir, folderOf(w, wArgs));
    const delW = await fx.run({ CNI_COMMAND: 'DEL', ...env(w, wArgs) }, fx.conf());
    expect(delW.code, delW.stdout).toBe(0);
    victimsIntact();
    const addW = await fx.run({ CNI_COMMAND: 'ADD', ...env(w, wArgs) }, fx.conf());
    expect(addW.json).toMatchObject({ code: 5 });
    expect(String(addW.json!.msg)).toContain(`${folderOf(w, wArgs)} is a symbolic link`);
    victimsIntact();
    rmSync(folderOf(w, wArgs));
    rmSync(`${fx.base}/w-moved`, { recursive: true });

    expect((await fx.run({ CNI_COMMAND: 'DEL', ...env(y) }, fx.conf())).code).toBe(0);
    expect(await fx.portNames()).toEqual([fx.ovs.bridge]);
    expect(fx.leases()).toEqual([]);
    expect(fx.socketTree()).toEqual([]);
  });

  it('a truncated or garbled attachment file: CHECK says so, DEL and GC clean up what they derive and log the file and the error', async () => {
    const p1 = cid();
    const p1Result = await add(p1);
    writeFileSync(join(folderOf(p1), 'net1.json'), ''); // truncated
    const check = await fx.run(
      { CNI_COMMAND: 'CHECK', ...env(p1) },
      fx.conf({ prevResult: p1Result }),
    );
    expect(check.json).toMatchObject({ code: 110 });
    expect(String(check.json!.msg)).toContain(`${folderOf(p1)}/net1.json is unusable: not JSON`);
    const del = await fx.runLogged({ CNI_COMMAND: 'DEL', ...env(p1) }, fx.conf(), 'deleted');
    expect(del.code, del.stdout).toBe(0);
    expect(existsSync(folderOf(p1))).toBe(false);
    expect(await fx.portNames()).toEqual([fx.ovs.bridge]);
    expect(fx.leases()).toEqual([]);
    expect(del.log).toContainEqual(
      expect.objectContaining({
        level: 'warn',
        msg: 'attachment file unreadable; DEL removes what it derives',
        file: join(folderOf(p1), 'net1.json'),
        error: expect.stringContaining('not JSON'),
      }),
    );
    expect(del.log).toContainEqual(
      expect.objectContaining({
        msg: 'deleted',
        portRemoved: true,
        removed: expect.arrayContaining([join(folderOf(p1), 'net1.json'), folderOf(p1)]),
      }),
    );

    // GC: pod folders (identity only from OVS), one garbled, one truncated, one kept and
    // garbled, and a garbled leftover that no OVS port claims (left: it may be another
    // network's).
    const [p2, p3, p4] = [cid(), cid(), cid()];
    const args = (id: string) => podArgs(`pod-${id}`);
    for (const id of [p2, p3, p4]) await add(id, args(id));
    const p4Port = jsonOf(folderOf(p4, args(p4))).ovsPort as string;
    writeFileSync(join(folderOf(p2, args(p2)), 'net1.json'), '{"cniVersion": "1.1.0", "contai');
    writeFileSync(join(folderOf(p3, args(p3)), 'net1.json'), '');
    writeFileSync(join(folderOf(p4, args(p4)), 'net1.json'), '\u0000garbage');
    const leftover = join(fx.socketDir, `files_left-${fx.id}`);
    mkdirSync(leftover);
    writeFileSync(join(leftover, 'net1.json'), '{"network":');
    const r = await gc([p4]);
    expect(r.code, r.stdout).toBe(0);
    for (const id of [p2, p3]) expect(existsSync(folderOf(id, args(id)))).toBe(false);
    expect(readdirSync(leftover)).toEqual(['net1.json']);
    expect(await fx.portNames()).toEqual([fx.ovs.bridge, p4Port].sort());
    expect(fx.leases()).toHaveLength(1);
    expect(readdirSync(folderOf(p4, args(p4)))).toEqual(['net1.json']);
    for (const folder of [
      folderOf(p2, args(p2)),
      folderOf(p3, args(p3)),
      folderOf(p4, args(p4)),
      leftover,
    ])
      expect(r.log).toContainEqual(
        expect.objectContaining({
          level: 'warn',
          msg: 'attachment file unreadable',
          file: join(folder, 'net1.json'),
          error: expect.stringContaining('not JSON'),
        }),
      );
    expect(r.log).toContainEqual(
      expect.objectContaining({ msg: 'gc', stale: 2, unclaimed: 1, removed: 2, errors: 0 }),
    );
    rmSync(leftover, { recursive: true });
    expect((await fx.run({ CNI_COMMAND: 'DEL', ...env(p4, args(p4)) }, fx.conf())).code).toBe(0);
    expect(fx.socketTree()).toEqual([]);
  });

  it('a truncated or garbled IPAM version cache: ADD works, says so, and rewrites it', async () => {
    const cache = join(fx.socketDir, '.cache', 'plugin-versions.json');
    const first = cid();
    await add(first);
    const ids = [first];
    for (const damage of ['', '{"/usr/lib/cni/host-local:1:2": ["1.0.0"']) {
      writeFileSync(cache, damage);
      const id = cid();
      ids.push(id);
      const r = await fx.runLogged({ CNI_COMMAND: 'ADD', ...env(id) }, fx.conf(), 'added');
      expect(r.code, r.stdout).toBe(0);
      expect(r.log).toContainEqual(
        expect.objectContaining({
          level: 'warn',
          msg: 'plugin version cache unreadable',
          file: cache,
          error: expect.any(String),
          movedTo: expect.stringContaining(`${cache}.corrupt-`),
        }),
      );
      expect(JSON.parse(readFileSync(cache, 'utf8'))).toBeTypeOf('object');
    }
    for (const id of ids)
      expect((await fx.run({ CNI_COMMAND: 'DEL', ...env(id) }, fx.conf())).code).toBe(0);
    expect(fx.leases()).toEqual([]);
  });
});
