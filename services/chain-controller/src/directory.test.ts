import { ATTACHMENT_EXTERNAL_IDS as IDS, HASHED_FOLDER, podFolderName } from '@flowline/ovs';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { recordingLogger } from '../test/support/recording-logger';
import { AttachmentDirectory, type SwitchPortRecord } from './directory';

/**
 * The attachment directory reads files the NF pod can write: the OVS port it returns must be
 * the one the switch records for the pod's interface (the CNI plugin's external_ids), never
 * a name the file makes up.
 */
const podPort = (namespace: string, pod: string, ifname: string, name: string) => ({
  name,
  externalIds: { [IDS.podNamespace]: namespace, [IDS.podName]: pod, [IDS.ifname]: ifname },
});
const SWITCH: SwitchPortRecord[] = [
  podPort('nfs', 'fw', 'net1', 'flfw000001'),
  podPort('nfs', 'fw', 'net2', 'flfw000002'),
  podPort('nfs', 'fw', 'net6', 'flfw000006'),
  podPort('nfs', 'fw', 'net7', 'flfw000007'),
  podPort('nfs', 'fw', 'net8', 'flfw000008'),
  podPort('nfs', 'victim', 'net1', 'flvictim01'),
  { name: 'dpdk0', externalIds: {} },
];

describe('AttachmentDirectory', () => {
  let dir: string;
  const file = (folder: string, name: string, content: unknown) =>
    writeFileSync(join(dir, folder, name), JSON.stringify(content));

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'flowline-attach-'));
    mkdirSync(join(dir, 'nfs_fw'));
    mkdirSync(join(dir, 'nfs_victim'));
    file('nfs_victim', 'net1.json', { ovsPort: 'flvictim01' });
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("takes each interface's port from the switch's records, refusing files that name another", async () => {
    file('nfs_fw', 'net1.json', { ovsPort: 'flfw000001' }); // as the plugin wrote it
    file('nfs_fw', 'net2.json', { ovsPort: 'flvictim01' }); // another pod's port
    file('nfs_fw', 'net3.json', { ovsPort: 'dpdk0' }); // the uplink, for an interface OVS has not
    file('nfs_fw', 'net4.json', { ovsPort: 'flfw000002' }); // its own other interface's port
    symlinkSync(join(dir, 'nfs_victim', 'net1.json'), join(dir, 'nfs_fw', 'net6.json'));
    execFileSync('mkfifo', [join(dir, 'nfs_fw', 'net7.json')]); // a read would block
    writeFileSync(
      join(dir, 'nfs_fw', 'net8.json'),
      ' '.repeat(1 << 20) + '{"ovsPort":"flfw000008"}',
    );
    const logger = recordingLogger();
    const attachments = new AttachmentDirectory(
      dir,
      async () => SWITCH,
      () => ({}),
      logger,
    );
    const record = await attachments.lookup('nfs/fw');
    expect(record).toEqual({
      name: 'nfs/fw',
      interfaces: { net1: 'flfw000001' },
      // Whose certificate its gRPC server must present: the pod's namespace and name.
      workload: { namespace: 'nfs', name: 'fw' },
    });
    const refused = logger.lines.map((l) => [l.file, l.claimed, l.onSwitch, l.error]);
    expect(refused).toEqual(
      expect.arrayContaining([
        [join(dir, 'nfs_fw', 'net2.json'), 'flvictim01', 'flfw000002', undefined],
        [join(dir, 'nfs_fw', 'net3.json'), 'dpdk0', null, undefined],
        [join(dir, 'nfs_fw', 'net4.json'), 'flfw000002', null, undefined],
        [join(dir, 'nfs_fw', 'net6.json'), undefined, undefined, expect.stringMatching(/ELOOP/)],
        [join(dir, 'nfs_fw', 'net7.json'), undefined, undefined, 'not a regular file'],
        [join(dir, 'nfs_fw', 'net8.json'), undefined, undefined, expect.stringMatching(/bytes/)],
      ]),
    );
    expect(logger.lines.every((l) => l.level === 'warn')).toBe(true);
    // Warned once per problem, not on every lookup.
    const count = logger.lines.length;
    await attachments.lookup('nfs/fw');
    expect(logger.lines.length).toBe(count);
  });

  it('a file for an interface the switch has no port of this pod for resolves nothing', async () => {
    const attachments = new AttachmentDirectory(dir, async () => SWITCH);
    file('nfs_fw', 'net1.json', { ovsPort: 'flfw000001' });
    const withoutIds = SWITCH.map((p) => ({ name: p.name, externalIds: {} }));
    expect((await attachments.lookup('nfs/fw'))?.interfaces).toEqual({ net1: 'flfw000001' });
    const blind = new AttachmentDirectory(dir, async () => withoutIds);
    expect((await blind.lookup('nfs/fw'))?.interfaces).toEqual({});
  });

  it('names that leave the socket dir find nothing', async () => {
    mkdirSync(join(dir, 'outside'));
    const attachments = new AttachmentDirectory(join(dir, 'sockets'), async () => SWITCH);
    mkdirSync(join(dir, 'sockets'));
    for (const nf of ['../outside', 'nfs/..', '../../x', 'nfs/fw/../../outside', '.._x'])
      expect(await attachments.lookup(nf)).toBeUndefined();
  });
});

describe('AttachmentDirectory with a pod whose folder name had to be hashed', () => {
  it("finds the pod in the CNI plugin's hashed folder", async () => {
    // A socket dir and pod name long enough that `<ns>_<pod>/<ifname>.sock` passes 107 bytes.
    const dir = mkdtempSync(join(tmpdir(), `flowline-attach-${'x'.repeat(40)}-`));
    try {
      const ns = 'tenant-with-a-long-namespace';
      const pod = 'firewall-with-a-rather-long-name-0';
      const folder = podFolderName(dir, { containerId: '', pod: { namespace: ns, name: pod } });
      expect(folder).toMatch(HASHED_FOLDER);
      mkdirSync(join(dir, folder));
      writeFileSync(join(dir, folder, 'net1.json'), JSON.stringify({ ovsPort: 'fllong0001' }));
      const attachments = new AttachmentDirectory(dir, async () => [
        podPort(ns, pod, 'net1', 'fllong0001'),
      ]);
      expect((await attachments.lookup(`${ns}/${pod}`))?.interfaces).toEqual({
        net1: 'fllong0001',
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
