import { lstat, mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { removeStateFile, writeStateFile } from '@flowline/state-file';
import { readUntrusted, type UntrustedRead } from './attachment-file';
import { containerIdProblem, ifnameProblem, isPodIdentity } from './env';
import { PCI_ADDRESS } from './config';
import { CniCode, CniError } from './errors';

// The plugin's own record of each attachment: `<socketDir>/.index/<containerID>:<ifname>.json`,
// written by ADD before anything else exists and removed by DEL and GC after everything else.
// socketDir's dot folders are the plugin's (pods get their own folder, never socketDir), so this
// is where CHECK, DEL and GC find an attachment's identity when the runtime's CNI_ARGS differ from
// ADD's (or are unusable) and what its device-info file is. What is taken from a record is the
// identity (container ID, interface, pod) and the device-info path, each checked as ADD checks
// them; the folder, socket and port are derived from that identity as ADD derived them.

export interface AttachmentRecord {
  network: string;
  containerID: string;
  ifname: string;
  pod?: { namespace: string; name: string };
  /**
   * For people reading the folder list; derived again (folderName), never read back. None for a
   * VF attachment.
   */
  folder?: string;
  /** The device-info file ADD wrote (checked to be in the device-info folder on use). */
  deviceInfoFile?: string;
  /** An SR-IOV VF attachment's PCI address (its ADD had a deviceID); no folder or port then. */
  deviceID?: string;
}

export const recordDir = (socketDir: string): string => join(socketDir, '.index');

export const recordPath = (socketDir: string, containerId: string, ifname: string): string =>
  join(recordDir(socketDir), `${containerId}:${ifname}.json`);

function parseRecord(text: string, containerId?: string, ifname?: string): AttachmentRecord {
  const v = JSON.parse(text) as Record<string, unknown>;
  if (typeof v !== 'object' || v === null) throw new Error('not a JSON object');
  const { network, containerID, pod, deviceInfoFile } = v;
  if (
    typeof network !== 'string' ||
    typeof containerID !== 'string' ||
    typeof v.ifname !== 'string'
  )
    throw new Error('network, containerID or ifname is missing');
  if (containerIdProblem(containerID) || ifnameProblem(v.ifname))
    throw new Error('containerID or ifname is not valid');
  if (containerId !== undefined && (containerID !== containerId || v.ifname !== ifname))
    throw new Error(`names ${containerID}/${v.ifname}, not the file's ${containerId}/${ifname}`);
  const out: AttachmentRecord = { network, containerID, ifname: v.ifname };
  if (typeof v.folder === 'string') out.folder = v.folder;
  if (pod !== undefined) {
    const p = pod as Record<string, unknown> | null;
    if (
      !p ||
      typeof p.namespace !== 'string' ||
      typeof p.name !== 'string' ||
      !isPodIdentity(p.namespace, p.name)
    )
      throw new Error('pod is not a Kubernetes namespace and name');
    out.pod = { namespace: p.namespace, name: p.name };
  }
  if (typeof deviceInfoFile === 'string') out.deviceInfoFile = deviceInfoFile;
  if (v.deviceID !== undefined) {
    // It names the VF's claim file.
    if (typeof v.deviceID !== 'string' || !PCI_ADDRESS.test(v.deviceID))
      throw new Error('deviceID is not a PCI address');
    out.deviceID = v.deviceID;
  }
  return out;
}

export type RecordRead = UntrustedRead<{ record: AttachmentRecord }>;

function readRecordFile(path: string, containerId?: string, ifname?: string): Promise<RecordRead> {
  return readUntrusted(path, 65536, (text) => ({
    record: parseRecord(text, containerId, ifname),
  }));
}

export function readRecord(
  socketDir: string,
  containerId: string,
  ifname: string,
): Promise<RecordRead> {
  return readRecordFile(recordPath(socketDir, containerId, ifname), containerId, ifname);
}

/**
 * ADD's refusal (101) of an attachment the plugin already has a record of, readable or not:
 * checked before the IPAM ADD, whose rollback (a DEL of the same container and interface) would
 * release the existing attachment's lease.
 */
export async function refuseRecorded(
  socketDir: string,
  containerId: string,
  ifname: string,
): Promise<void> {
  const read = await readRecord(socketDir, containerId, ifname);
  if (read.state === 'missing') return;
  const what =
    read.state === 'ok' ? `of network ${read.record.network}` : `(unreadable: ${read.error})`;
  throw new CniError(
    CniCode.AttachmentExists,
    `attachment ${containerId}/${ifname} already exists: the plugin's record ${recordPath(socketDir, containerId, ifname)} ${what} is there; DEL it before adding it again`,
  );
}

export async function writeRecord(socketDir: string, record: AttachmentRecord): Promise<void> {
  await mkdir(recordDir(socketDir), { recursive: true, mode: 0o700 });
  await writeStateFile(
    recordPath(socketDir, record.containerID, record.ifname),
    JSON.stringify(record, null, 2) + '\n',
    { mode: 0o600, keepPrevious: false },
  );
}

export async function removeRecord(
  socketDir: string,
  containerId: string,
  ifname: string,
): Promise<void> {
  const path = recordPath(socketDir, containerId, ifname);
  const st = await lstat(path).catch(() => undefined);
  if (st && !st.isDirectory()) await removeStateFile(path);
}

/** Every record in the index (GC): the readable ones, and the files that are not. */
export async function listRecords(
  socketDir: string,
): Promise<{ records: AttachmentRecord[]; unreadable: { file: string; error: string }[] }> {
  const dir = recordDir(socketDir);
  const records: AttachmentRecord[] = [];
  const unreadable: { file: string; error: string }[] = [];
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (name.startsWith('.') || !name.endsWith('.json')) continue;
    const key = name.slice(0, -'.json'.length);
    const colon = key.lastIndexOf(':');
    const r = await readRecordFile(join(dir, name), key.slice(0, colon), key.slice(colon + 1));
    if (r.state === 'ok') records.push(r.record);
    else if (r.state === 'unreadable') unreadable.push({ file: join(dir, name), error: r.error });
  }
  return { records, unreadable };
}
