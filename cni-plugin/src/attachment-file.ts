import { constants, type Stats } from 'node:fs';
import { lstat, open, readdir, readlink, realpath, rmdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { previousPath, writeStateFile } from '@flowline/state-file';
import { containerIdProblem, ifnameProblem, isPodIdentity } from './env';
import type { Dns, IpConfig, Route } from './result';

// Everything in a pod's folder may have been written by the pod (contract 2 gives the NF its
// folder: docs/architecture.md#cni-to-switch-and-pod), so nothing read from there is trusted: the paths this plugin touches are derived from
// socketDir, the folder's name and the interface name; the folder must be a real directory whose
// real path is socketDir's real path plus that name; files are opened without following
// symlinks (and without blocking on a FIFO), and only sockets are unlinked as sockets.

/**
 * `<ifname>.json` beside the socket (contract 2, docs/architecture.md#cni-to-switch-and-pod):
 * what the NF runtime reads to open the port.
 */
export interface AttachmentFile {
  cniVersion: string;
  network: string;
  containerID: string;
  ifname: string;
  netns: string;
  pod?: { namespace: string; name: string };
  /** Written for the NF; never read back by the plugin (derived from socketDir, folder, ifname). */
  socketPath: string;
  mac: string;
  mtu: number;
  bridge: string;
  /** Written for the NF and the chain controller; the plugin derives it (ovsPortName). */
  ovsPort: string;
  /** The NPWG device-info file of this attachment (Device Information Spec 1.1.0). */
  deviceInfoFile?: string;
  ips: IpConfig[];
  routes: Route[];
  dns: Dns;
}

/** An attachment file is some hundred bytes; a bigger one is not ours. */
export const MAX_ATTACHMENT_FILE_BYTES = 1 << 20;

export type AttachmentRead =
  | { state: 'missing' }
  | { state: 'ok'; file: AttachmentFile }
  /** It exists but cannot be used: not a regular file, too big, not JSON, not an attachment. */
  | { state: 'unreadable'; error: string };

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Parses an attachment file's text; throws, saying what is wrong, for anything that is not an
 * attachment of interface `ifname` (the name the file was found under).
 */
export function parseAttachmentFile(text: string, ifname: string): AttachmentFile {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new Error(`not JSON: ${(err as Error).message.slice(0, 200)}`);
  }
  if (!isObject(v)) throw new Error('not a JSON object');
  for (const key of ['cniVersion', 'network', 'containerID', 'ifname', 'mac'] as const)
    if (typeof v[key] !== 'string') throw new Error(`${key} is not a string`);
  const problem = containerIdProblem(v.containerID as string);
  if (problem) throw new Error(`containerID ${problem}`);
  if (v.ifname !== ifname)
    throw new Error(`ifname ${JSON.stringify(v.ifname)} is not ${ifname}, the file's name`);
  if (v.pod !== undefined) {
    const pod = v.pod;
    if (
      !isObject(pod) ||
      typeof pod.namespace !== 'string' ||
      typeof pod.name !== 'string' ||
      !isPodIdentity(pod.namespace, pod.name)
    )
      throw new Error('pod is not a Kubernetes namespace and name');
  }
  if (!Array.isArray(v.ips) || !v.ips.every((ip) => isObject(ip) && typeof ip.address === 'string'))
    throw new Error('ips is not a list of addresses');
  return v as unknown as AttachmentFile;
}

export type UntrustedRead<T> =
  { state: 'missing' } | ({ state: 'ok' } & T) | { state: 'unreadable'; error: string };

/**
 * Reads a file the plugin does not trust the way it is: a symlink is not followed, a FIFO does
 * not block, anything but a regular file of at most `maxBytes` is 'unreadable' with the reason;
 * `parse` (which throws on content it cannot use) makes the 'ok' answer.
 */
export async function readUntrusted<T>(
  path: string,
  maxBytes: number,
  parse: (text: string) => T,
): Promise<UntrustedRead<T>> {
  let fh;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { state: 'missing' };
    if (code === 'ELOOP') return { state: 'unreadable', error: 'is a symbolic link' };
    return { state: 'unreadable', error: (err as Error).message };
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) return { state: 'unreadable', error: `is not a regular file (${kind(st)})` };
    if (st.size > maxBytes)
      return { state: 'unreadable', error: `is ${st.size} bytes (at most ${maxBytes})` };
    const buf = Buffer.alloc(st.size + 1);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    if (bytesRead > st.size) return { state: 'unreadable', error: 'grew while it was read' };
    return { state: 'ok', ...parse(buf.toString('utf8', 0, bytesRead)) };
  } catch (err) {
    return { state: 'unreadable', error: (err as Error).message };
  } finally {
    await fh.close();
  }
}

/**
 * Reads `<dir>/<ifname>.json` without trusting it (readUntrusted): anything but a small regular
 * file holding an attachment of `ifname` is 'unreadable' with the reason.
 */
export function readAttachmentFile(dir: string, ifname: string): Promise<AttachmentRead> {
  return readUntrusted(join(dir, `${ifname}.json`), MAX_ATTACHMENT_FILE_BYTES, (text) => ({
    file: parseAttachmentFile(text, ifname),
  }));
}

/** Written crash-safely (@flowline/state-file): after a crash the file is whole or absent. */
export async function writeAttachmentFile(path: string, content: AttachmentFile): Promise<void> {
  await writeStateFile(path, JSON.stringify(content, null, 2) + '\n', {
    mode: 0o644,
    // Written once per attachment; a previous copy would only keep what the pod put there.
    keepPrevious: false,
  });
}

export function kind(st: Stats): string {
  if (st.isSymbolicLink()) return 'a symbolic link';
  if (st.isDirectory()) return 'a directory';
  if (st.isFile()) return 'a regular file';
  if (st.isSocket()) return 'a socket';
  if (st.isFIFO()) return 'a FIFO';
  return 'a device';
}

async function lstatOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * Why `<dir>/<ifname>.sock` cannot be the attachment's socket, when something other than a socket
 * is there: OVS's dpdkvhostuserclient connects to whatever the path resolves to, so a symlink
 * the pod put there could point it at another pod's socket. Nothing there is fine (the pod's
 * application creates the socket).
 */
export async function socketPathProblem(dir: string, ifname: string): Promise<string | undefined> {
  const path = join(dir, `${ifname}.sock`);
  const st = await lstatOrUndefined(path);
  if (!st || st.isSocket()) return undefined;
  if (st.isSymbolicLink())
    return `is a symbolic link (to ${await readlink(path).catch(() => '?')}), not a socket`;
  return `is ${kind(st)}, not a socket`;
}

/** Whether `folder` can name a pod folder: one path component, not a dot name. */
export function folderProblem(folder: string): string | undefined {
  if (folder === '' || folder.startsWith('.') || folder.includes('/') || folder.includes('\0'))
    return `"${folder}" is not a pod folder name`;
  return undefined;
}

export type PodDir =
  | { state: 'missing' }
  | { state: 'ok'; dir: string }
  /** It exists but is not a real folder of socketDir (a symlink, a file): left alone. */
  | { state: 'refused'; path: string; reason: string };

/**
 * `<socketDir>/<folder>` if it is a real directory whose real path is socketDir's real path plus
 * `folder` (the path returned is that real path); a symlink, a non-directory, or anything that
 * resolves elsewhere is refused.
 */
export async function verifiedPodDir(socketDir: string, folder: string): Promise<PodDir> {
  const path = join(socketDir, folder);
  const bad = folderProblem(folder);
  if (bad) return { state: 'refused', path, reason: bad };
  let realSocketDir: string;
  try {
    realSocketDir = await realpath(socketDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { state: 'missing' };
    throw err;
  }
  const st = await lstatOrUndefined(path);
  if (!st) return { state: 'missing' };
  if (st.isSymbolicLink()) {
    const target = await readlink(path).catch(() => '?');
    return { state: 'refused', path, reason: `is a symbolic link (to ${target}), not a folder` };
  }
  if (!st.isDirectory()) return { state: 'refused', path, reason: `is ${kind(st)}, not a folder` };
  const expected = join(realSocketDir, folder);
  const real = await realpath(path);
  if (real !== expected)
    return { state: 'refused', path, reason: `resolves to ${real}, not ${expected}` };
  return { state: 'ok', dir: expected };
}

export interface Removal {
  /** What was removed. */
  removed: string[];
  /** What was left alone because it is not what the plugin would have made there. */
  refused: { path: string; reason: string }[];
  /** What could not be removed (I/O errors). */
  failed: { path: string; error: string }[];
}

/**
 * Removes the attachment `<socketDir>/<folder>/<ifname>.{json,sock}` (the json's previous copy
 * and temporary files included) and the folder when that leaves it empty. Only these derived
 * names are touched: the json is unlinked when it is a regular file or a symlink (unlink never
 * follows one), the socket only when it is a socket; a pod folder that is not a real folder of
 * socketDir is not entered.
 */
export async function removeAttachmentFiles(
  socketDir: string,
  folder: string,
  ifname: string,
): Promise<Removal> {
  const out: Removal = { removed: [], refused: [], failed: [] };
  const bad = ifnameProblem(ifname);
  if (bad) {
    out.refused.push({ path: join(socketDir, folder), reason: `interface name ${bad}` });
    return out;
  }
  let pod: PodDir;
  try {
    pod = await verifiedPodDir(socketDir, folder);
  } catch (err) {
    out.failed.push({ path: join(socketDir, folder), error: (err as Error).message });
    return out;
  }
  if (pod.state === 'missing') return out;
  if (pod.state === 'refused') {
    out.refused.push({ path: pod.path, reason: pod.reason });
    return out;
  }
  const { dir } = pod;
  const json = join(dir, `${ifname}.json`);
  const socket = join(dir, `${ifname}.sock`);
  const attempt = async (path: string, run: () => Promise<unknown>): Promise<void> => {
    try {
      await run();
      out.removed.push(path);
    } catch (err) {
      out.failed.push({ path, error: (err as Error).message });
    }
  };
  // Unlinked when a regular file or a symlink (unlink never follows one); anything else the pod
  // put at the name is left alone.
  const removeFile = async (path: string, refuse: boolean): Promise<void> => {
    const st = await lstatOrUndefined(path);
    if (st && (st.isFile() || st.isSymbolicLink())) await attempt(path, () => unlink(path));
    else if (st && refuse)
      out.refused.push({ path, reason: `is ${kind(st)}, not an attachment file` });
  };
  try {
    await removeFile(json, true);
    // Written without keepPrevious: a `.prev` is a leftover or the pod's, like the tmp files
    // (state-file's removeStateFile would rm it, and fail on a directory).
    await removeFile(previousPath(json), true);
    const tmpPrefix = `.${ifname}.json.tmp-`;
    for (const name of await readdir(dir))
      if (name.startsWith(tmpPrefix)) await removeFile(join(dir, name), false);
    const s = await lstatOrUndefined(socket);
    if (s?.isSocket()) await attempt(socket, () => unlink(socket));
    else if (s) out.refused.push({ path: socket, reason: `is ${kind(s)}, not a socket` });
  } catch (err) {
    out.failed.push({ path: dir, error: (err as Error).message });
  }
  try {
    if (await removeDirIfEmpty(dir)) out.removed.push(dir);
  } catch (err) {
    out.failed.push({ path: dir, error: (err as Error).message });
  }
  return out;
}

/** Removes `dir` if it is empty; whether it did. */
export async function removeDirIfEmpty(dir: string): Promise<boolean> {
  try {
    await rmdir(dir);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
    return false;
  }
}

export interface FoundAttachment {
  folder: string;
  /** From the file's name (a valid interface name), not from its content. */
  ifname: string;
  /** The file's content, or why it cannot be used. */
  read: AttachmentRead;
}

/**
 * Every `<ifname>.json` under socketDir's pod folders (real folders one level down; dot names
 * skipped), read without trusting them. Folders that are not real folders of socketDir (a
 * symlink) are listed in `refused` and not entered.
 */
export async function listAttachmentFiles(
  socketDir: string,
): Promise<{ found: FoundAttachment[]; refused: { path: string; reason: string }[] }> {
  const found: FoundAttachment[] = [];
  const refused: { path: string; reason: string }[] = [];
  const entries = await readdir(socketDir).catch(() => [] as string[]);
  for (const folder of entries) {
    if (folder.startsWith('.')) continue;
    const pod = await verifiedPodDir(socketDir, folder).catch((err: Error) => ({
      state: 'refused' as const,
      path: join(socketDir, folder),
      reason: err.message,
    }));
    if (pod.state === 'missing') continue;
    if (pod.state === 'refused') {
      refused.push({ path: pod.path, reason: pod.reason });
      continue;
    }
    const names = await readdir(pod.dir).catch(() => [] as string[]);
    for (const n of names) {
      if (!n.endsWith('.json')) continue;
      const ifname = n.slice(0, -'.json'.length);
      if (ifnameProblem(ifname)) continue;
      found.push({ folder, ifname, read: await readAttachmentFile(pod.dir, ifname) });
    }
  }
  return { found, refused };
}
