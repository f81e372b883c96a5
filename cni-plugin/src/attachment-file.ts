import { readdir, readFile, rename, rm, rmdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Dns, IpConfig, Route } from './result';

/** `<ifname>.json` beside the socket (contract 2): what the NF runtime reads to open the port. */
export interface AttachmentFile {
  cniVersion: string;
  network: string;
  containerID: string;
  ifname: string;
  netns: string;
  pod?: { namespace: string; name: string };
  socketPath: string;
  mac: string;
  mtu: number;
  bridge: string;
  ovsPort: string;
  ips: IpConfig[];
  routes: Route[];
  dns: Dns;
}

export async function readAttachmentFile(path: string): Promise<AttachmentFile | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return JSON.parse(text) as AttachmentFile;
}

/** Written to a temporary name and renamed, so a reader never sees half a file. */
export async function writeAttachmentFile(path: string, content: AttachmentFile): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    await writeFile(tmp, JSON.stringify(content, null, 2) + '\n', { mode: 0o644 });
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/** Removes an attachment's json and socket, and its pod folder when that is left empty. */
export async function removeAttachmentFiles(jsonPath: string, socketPath: string): Promise<void> {
  await rm(jsonPath, { force: true });
  await rm(socketPath, { force: true });
  await removeDirIfEmpty(dirname(jsonPath));
}

export async function removeDirIfEmpty(dir: string): Promise<void> {
  try {
    await rmdir(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
  }
}

/** Every attachment file under socketDir (pod folders one level down; dot folders skipped). */
export async function listAttachmentFiles(
  socketDir: string,
): Promise<{ path: string; file: AttachmentFile | undefined }[]> {
  const out: { path: string; file: AttachmentFile | undefined }[] = [];
  const dirs = await readdir(socketDir, { withFileTypes: true }).catch(() => []);
  for (const d of dirs) {
    if (!d.isDirectory() || d.name.startsWith('.')) continue;
    const names = await readdir(join(socketDir, d.name)).catch(() => [] as string[]);
    for (const n of names) {
      if (!n.endsWith('.json')) continue;
      const path = join(socketDir, d.name, n);
      out.push({ path, file: await readAttachmentFile(path).catch(() => undefined) });
    }
  }
  return out;
}
