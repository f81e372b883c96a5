import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  listAttachmentFiles,
  readAttachmentFile,
  removeAttachmentFiles,
  verifiedPodDir,
  writeAttachmentFile,
  type AttachmentFile,
} from './attachment-file';

const attachment = (over: Partial<AttachmentFile> = {}): AttachmentFile => ({
  cniVersion: '1.1.0',
  network: 'net',
  containerID: 'c1',
  ifname: 'net1',
  netns: '/run/netns/x',
  socketPath: '/s/c1/net1.sock',
  mac: '02:00:00:00:00:01',
  mtu: 1500,
  bridge: 'br',
  ovsPort: 'flabc',
  ips: [{ address: '10.0.0.2/24' }],
  routes: [],
  dns: {},
  ...over,
});

describe('attachment files: nothing in a pod folder is trusted', () => {
  const root = mkdtempSync(join(tmpdir(), 'flcni-att-'));
  const socketDir = join(root, 's');
  const pod = join(socketDir, 'c1');
  const victim = join(root, 'victim');
  const servers: Server[] = [];
  /** A real unix socket file at `path` (what a DPDK virtio-user server leaves). */
  const socketAt = (path: string): Promise<void> =>
    new Promise((resolve) => {
      const s = createServer();
      servers.push(s);
      s.listen(path, () => resolve());
    });

  beforeEach(() => {
    rmSync(socketDir, { recursive: true, force: true });
    mkdirSync(pod, { recursive: true });
    writeFileSync(victim, 'precious');
  });
  afterEach(async () => {
    for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const victimIntact = (): void => expect(readFileSync(victim, 'utf8')).toBe('precious');

  it('writes crash-safely (no temporary file left) and reads back what it wrote', async () => {
    await writeAttachmentFile(join(pod, 'net1.json'), attachment());
    expect(readdirSync(pod)).toEqual(['net1.json']);
    expect(await readAttachmentFile(pod, 'net1')).toEqual({ state: 'ok', file: attachment() });
    expect(await readAttachmentFile(pod, 'net2')).toEqual({ state: 'missing' });
  });

  it('says why a file is unusable: truncated, garbled, another ifname, a bad containerID, a symlink, a FIFO', async () => {
    const json = join(pod, 'net1.json');
    const cases: [() => void, RegExp][] = [
      [() => writeFileSync(json, ''), /not JSON/],
      [() => writeFileSync(json, JSON.stringify(attachment()).slice(0, 40)), /not JSON/],
      [() => writeFileSync(json, '\u0000\u00ff garbage'), /not JSON/],
      [() => writeFileSync(json, '[1]'), /not a JSON object/],
      [() => writeFileSync(json, JSON.stringify(attachment({ ifname: 'eth0' }))), /ifname/],
      [
        () => writeFileSync(json, JSON.stringify(attachment({ containerID: '../../etc' }))),
        /containerID/,
      ],
      [() => symlinkSync(victim, json), /symbolic link/],
      [() => execFileSync('mkfifo', [json]), /not a regular file \(a FIFO\)/],
    ];
    for (const [make, why] of cases) {
      rmSync(json, { force: true });
      make();
      const r = await readAttachmentFile(pod, 'net1');
      expect(r.state, String(why)).toBe('unreadable');
      expect(r.state === 'unreadable' && r.error).toMatch(why);
    }
    victimIntact();
  });

  it('removes the socket, the json and the folder; leaves a victim that paths in the json name', async () => {
    writeFileSync(
      join(pod, 'net1.json'),
      JSON.stringify(attachment({ socketPath: `${socketDir}/../victim`, ovsPort: 'other' })),
    );
    await socketAt(join(pod, 'net1.sock'));
    const r = await removeAttachmentFiles(socketDir, 'c1', 'net1');
    expect(r.refused).toEqual([]);
    expect(r.failed).toEqual([]);
    expect(r.removed.sort()).toEqual([join(pod, 'net1.json'), join(pod, 'net1.sock'), pod].sort());
    expect(existsSync(pod)).toBe(false);
    victimIntact();
  });

  it('unlinks only a socket at the socket path: a symlink to a victim, a file or a folder stay', async () => {
    for (const make of [
      () => symlinkSync(victim, join(pod, 'net1.sock')),
      () => writeFileSync(join(pod, 'net1.sock'), 'x'),
      () => mkdirSync(join(pod, 'net1.sock')),
    ]) {
      rmSync(pod, { recursive: true, force: true });
      mkdirSync(pod, { recursive: true });
      writeFileSync(join(pod, 'net1.json'), JSON.stringify(attachment()));
      make();
      const r = await removeAttachmentFiles(socketDir, 'c1', 'net1');
      expect(r.refused).toEqual([
        { path: join(pod, 'net1.sock'), reason: expect.stringMatching(/not a socket/) },
      ]);
      expect(r.removed).toEqual([join(pod, 'net1.json')]);
      victimIntact();
    }
  });

  it('treats <ifname>.json.prev like a tmp file: a file or symlink goes, a folder stays, nothing fails', async () => {
    const prev = join(pod, 'net1.json.prev');
    for (const [make, gone] of [
      [() => writeFileSync(prev, '{}'), true],
      [() => symlinkSync(victim, prev), true],
      [() => mkdirSync(join(prev, 'inside'), { recursive: true }), false],
    ] as const) {
      rmSync(pod, { recursive: true, force: true });
      mkdirSync(pod, { recursive: true });
      writeFileSync(join(pod, 'net1.json'), JSON.stringify(attachment()));
      make();
      const r = await removeAttachmentFiles(socketDir, 'c1', 'net1');
      expect(r.failed).toEqual([]);
      expect(existsSync(join(pod, 'net1.json'))).toBe(false);
      expect(existsSync(prev)).toBe(!gone);
      if (!gone)
        expect(r.refused).toEqual([
          { path: prev, reason: expect.stringMatching(/a directory, not an attachment file/) },
        ]);
      victimIntact();
    }
  });

  it('unlinks a json that is a symlink, never its target', async () => {
    symlinkSync(victim, join(pod, 'net1.json'));
    const r = await removeAttachmentFiles(socketDir, 'c1', 'net1');
    expect(r.removed).toContain(join(pod, 'net1.json'));
    expect(existsSync(pod)).toBe(false);
    victimIntact();
  });

  it('does not enter a pod folder that is a symlink, nor one named by ".." or an absolute path', async () => {
    const elsewhere = join(root, 'elsewhere');
    mkdirSync(elsewhere, { recursive: true });
    writeFileSync(join(elsewhere, 'net1.json'), JSON.stringify(attachment()));
    writeFileSync(join(elsewhere, 'net1.sock'), 'not ours');
    symlinkSync(elsewhere, join(socketDir, 'c2'));
    const r = await removeAttachmentFiles(socketDir, 'c2', 'net1');
    expect(r.removed).toEqual([]);
    expect(r.refused).toEqual([
      { path: join(socketDir, 'c2'), reason: expect.stringContaining('symbolic link') },
    ]);
    expect(readdirSync(elsewhere).sort()).toEqual(['net1.json', 'net1.sock']);
    for (const folder of ['..', '../elsewhere', elsewhere, '.locks'])
      expect((await removeAttachmentFiles(socketDir, folder, 'net1')).refused).toHaveLength(1);
    expect((await removeAttachmentFiles(socketDir, 'c1', '../victim')).refused).toHaveLength(1);
    expect(readdirSync(elsewhere).sort()).toEqual(['net1.json', 'net1.sock']);
    victimIntact();
    // The listing skips it too, and says so.
    const listed = await listAttachmentFiles(socketDir);
    expect(listed.found).toEqual([]);
    expect(listed.refused.map((x) => x.path)).toEqual([join(socketDir, 'c2')]);
  });

  it('accepts a socketDir reached through a symlink (the operator may configure one)', async () => {
    const alias = join(root, 'alias');
    rmSync(alias, { force: true });
    symlinkSync(socketDir, alias);
    expect(await verifiedPodDir(alias, 'c1')).toEqual({ state: 'ok', dir: pod });
    expect(await verifiedPodDir(alias, 'c9')).toEqual({ state: 'missing' });
  });
});
