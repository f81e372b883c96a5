import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ATTACHMENT_EXTERNAL_IDS, OvsdbClient, OvsError, VSwitch } from '@flowline/ovs';
import {
  listAttachmentFiles,
  readAttachmentFile,
  removeAttachmentFiles,
  removeDirIfEmpty,
  socketPathProblem,
  verifiedPodDir,
  writeAttachmentFile,
  type AttachmentFile,
  type PodDir,
  type Removal,
} from './attachment-file';
import type { Attachment, NetConf } from './config';
import { containerIdProblem, ifnameProblem, isPodIdentity, type CniEnv } from './env';
import type { FolderIdentity } from './naming';
import { CniCode, CniError } from './errors';
import { withLock } from './lock';
import {
  attachmentPaths,
  folderName,
  macAddress,
  ovsPortName,
  type AttachmentPaths,
} from './naming';
import { formatResult, parseResult, type Interface, type Result } from './result';
import {
  defaultDeviceInfoFile,
  deviceInfoFileProblem,
  readDeviceInfoFile,
  removeDeviceInfoFile,
  vhostUserDeviceInfo,
  writeDeviceInfoFile,
} from './device-info';
import {
  listRecords,
  readRecord,
  recordPath,
  refuseRecorded,
  removeRecord,
  writeRecord,
} from './records';
import { addVf, checkVf, delVf, refuseTopLevelDeviceID, releaseVfClaim } from './vf';
import { EMPTY_RESULT, ipamOf, lockDir, type Context } from './context';

export type { Context };

/** external_ids keys on the OVS port and interface, read back by CHECK and GC (and the chain controller). */
export const EXT = ATTACHMENT_EXTERNAL_IDS;

interface Ovs {
  client: OvsdbClient;
  vswitch: VSwitch;
}

/** Connects to ovsdb-server; unreachable is code `code` (11 for ADD/DEL, 50 for STATUS). */
async function connectOvs(conf: NetConf, code: number = CniCode.TryAgainLater): Promise<Ovs> {
  try {
    const client = await OvsdbClient.connect({
      socketPath: conf.ovsdbSocket,
      reconnect: false,
      connectTimeoutMs: 1000,
      requestTimeoutMs: 5000,
      backoff: { initialMs: 50, maxMs: 250 },
    });
    return { client, vswitch: new VSwitch(client) };
  } catch (err) {
    throw new CniError(
      code,
      `OVS is not reachable: cannot connect to ovsdb-server at ovsdbSocket ${conf.ovsdbSocket}; start ovsdb-server and ovs-vswitchd (or fix ovsdbSocket in the network configuration)`,
      (err as Error).message,
    );
  }
}

/** OVS errors inside an operation (timeouts, dropped connection) are transient: code 11. */
function ovsFailure(err: unknown, what: string): never {
  if (err instanceof CniError) throw err;
  if (err instanceof OvsError)
    throw new CniError(
      CniCode.TryAgainLater,
      `OVS failed while ${what}: ${err.message}; try again later`,
    );
  throw err;
}

async function withOvs<T>(
  conf: NetConf,
  what: string,
  fn: (ovs: Ovs) => Promise<T>,
  code?: number,
): Promise<T> {
  const ovs = await connectOvs(conf, code);
  try {
    return await fn(ovs);
  } catch (err) {
    return ovsFailure(err, what);
  } finally {
    ovs.client.close();
  }
}

/** verifiedPodDir, with an I/O failure as code 5. */
async function podDirOf(conf: NetConf, folder: string): Promise<PodDir> {
  return verifiedPodDir(conf.socketDir, folder).catch((err: Error) => {
    throw new CniError(
      CniCode.IoFailure,
      `cannot inspect the pod folder ${join(conf.socketDir, folder)}: ${err.message}`,
    );
  });
}

/** A pod folder that is not a real folder of socketDir is code 5 naming it (ADD, CHECK). */
function usablePodDir(pod: PodDir): Exclude<PodDir, { state: 'refused' }> {
  if (pod.state === 'refused')
    throw new CniError(
      CniCode.IoFailure,
      `the pod folder ${pod.path} ${pod.reason}; the plugin does not use it: remove it`,
      undefined,
      { path: pod.path },
    );
  return pod;
}

/** Creates the pod folder (not following a symlink there) and returns its real path. */
async function makePodDir(conf: NetConf, paths: AttachmentPaths): Promise<string> {
  try {
    await mkdir(conf.socketDir, { recursive: true, mode: 0o755 });
    await mkdir(paths.podDir, { mode: 0o755 }).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    });
  } catch (err) {
    throw new CniError(
      CniCode.IoFailure,
      `cannot create ${paths.podDir} under socketDir: ${(err as Error).message}`,
    );
  }
  const pod = usablePodDir(await podDirOf(conf, paths.folderName));
  if (pod.state !== 'ok')
    throw new CniError(CniCode.IoFailure, `${paths.podDir} vanished as it was created`);
  return pod.dir;
}

const EMPTY = EMPTY_RESULT;

/** The IPAM plugin's ADD, settled: its result, or why it failed. */
type Lease = Promise<{ ok: true; result: Result } | { ok: false; err: unknown }>;

export async function cmdAdd(ctx: Context): Promise<Record<string, unknown>> {
  const { env, conf, log } = ctx;
  const paths = attachmentPaths(conf, env);
  if (!existsSync(env.netns))
    throw new CniError(
      CniCode.UnknownContainer,
      `container unknown: CNI_NETNS ${env.netns} does not exist`,
    );
  const prev = conf.prevResult ? parseResult(conf.prevResult) : EMPTY;
  if (prev.interfaces.some((i) => i.name === env.ifname && (i.sandbox ?? '') === env.netns))
    throw new CniError(
      CniCode.AttachmentExists,
      `interface ${env.ifname} already exists in ${env.netns} (prevResult); use another CNI_IFNAME`,
    );
  refuseTopLevelDeviceID(conf);
  if (conf.deviceID) return addVf({ ...ctx, conf: { ...conf, deviceID: conf.deviceID } });
  if (conf.deviceInfoFileProblem)
    throw new CniError(
      CniCode.InvalidConfig,
      `invalid network configuration: runtimeConfig.CNIDeviceInfoFile ${conf.deviceInfoFileProblem}; the Device Information Spec puts it in ${conf.deviceInfoDir} (set deviceInfoDir if yours differs)`,
      undefined,
      { field: 'runtimeConfig.CNIDeviceInfoFile' },
    );
  const deviceInfoFile =
    conf.deviceInfoFile ??
    defaultDeviceInfoFile(conf.deviceInfoDir, conf.name, env.containerId, env.ifname);
  const portName = ovsPortName(env.containerId, env.ifname);
  const mac = macAddress(env.containerId, env.ifname);

  return withLock(lockDir(conf), paths.folderName, conf.lockTimeoutMs, async () => {
    const pod = usablePodDir(await podDirOf(conf, paths.folderName));
    if (pod.state === 'ok') {
      const existing = await readAttachmentFile(pod.dir, env.ifname);
      if (existing.state === 'ok')
        throw new CniError(
          CniCode.AttachmentExists,
          `interface ${env.ifname} already exists in ${paths.podDir} (container ${existing.file.containerID}); DEL that attachment first`,
        );
      if (existing.state === 'unreadable')
        log.warn('attachment file unreadable; ADD replaces it', {
          file: paths.jsonPath,
          error: existing.error,
        });
      const socket = await socketPathProblem(pod.dir, env.ifname).catch((err: Error) => {
        throw new CniError(CniCode.IoFailure, `cannot inspect ${paths.socketPath}: ${err.message}`);
      });
      if (socket)
        throw new CniError(
          CniCode.IoFailure,
          `the socket path ${paths.socketPath} ${socket}; OVS would connect to what it names: remove it`,
          undefined,
          { path: paths.socketPath },
        );
    }
    // An existing attachment is refused before the IPAM ADD: the rollback of a lease started
    // for the same container and interface (IPAM DEL) would release the existing one's.
    await refuseRecorded(conf.socketDir, env.containerId, env.ifname);
    const ipam = ipamOf(ctx);
    const started: { lease?: Lease } = {};
    try {
      return await withOvs(conf, `adding port ${portName}`, async (ovs) => {
        if (await ovs.vswitch.getInterface(portName))
          throw new CniError(
            CniCode.AttachmentExists,
            `attachment ${env.containerId}/${env.ifname} already exists (OVS port ${portName}); DEL it before adding it again`,
          );
        // The IPAM plugin's exec runs while the port is added: both sit on the pod's start-up
        // path. Its lease is released below if anything fails, its own ADD included.
        started.lease = ipam
          ? ipam.add().then(
              (result) => ({ ok: true, result }),
              (err: unknown) => ({ ok: false, err }),
            )
          : Promise.resolve({ ok: true, result: EMPTY });
        return addPort(ovs, started.lease);
      });
    } catch (err) {
      // The spec: a delegated plugin whose ADD was started gets DEL before ADD fails, even when
      // its ADD failed (it may have reserved an address first, or printed a result we refuse).
      if (started.lease) {
        await started.lease;
        if (ipam)
          await ipam
            .del()
            .catch((undoErr: unknown) =>
              log.error('rollback step failed', { step: `IPAM ${ipam.type} lease`, err: undoErr }),
            );
      }
      throw err;
    }
  });

  async function addPort(ovs: Ovs, lease: Lease): Promise<Record<string, unknown>> {
    if (!(await ovs.vswitch.getBridge(conf.bridge)))
      throw new CniError(
        CniCode.InvalidConfig,
        `invalid network configuration: bridge ${conf.bridge} does not exist in OVS at ${conf.ovsdbSocket}; create it (ovs-vsctl add-br ${conf.bridge} -- set bridge ${conf.bridge} datapath_type=netdev) or fix bridge`,
        undefined,
        { field: 'bridge' },
      );
    const undo: { what: string; run: () => Promise<unknown> }[] = [];
    try {
      const podDir = await makePodDir(conf, paths);
      undo.push({ what: 'pod folder', run: () => removeDirIfEmpty(podDir) });
      // The plugin's record first: a crash from here on leaves what DEL and GC need to find.
      const record = {
        network: conf.name,
        containerID: env.containerId,
        ifname: env.ifname,
        ...(env.pod ? { pod: env.pod } : {}),
        folder: paths.folderName,
        deviceInfoFile,
      };
      await writeRecord(conf.socketDir, record).catch((err: Error) => {
        throw new CniError(
          CniCode.IoFailure,
          `cannot write ${recordPath(conf.socketDir, env.containerId, env.ifname)}: ${err.message}`,
        );
      });
      undo.push({
        what: 'attachment record',
        run: () => removeRecord(conf.socketDir, env.containerId, env.ifname),
      });
      const externalIds: Record<string, string> = {
        [EXT.network]: conf.name,
        [EXT.containerId]: env.containerId,
        [EXT.ifname]: env.ifname,
        [EXT.netns]: env.netns,
        [EXT.socket]: paths.socketPath,
      };
      if (env.pod) {
        externalIds[EXT.podNamespace] = env.pod.namespace;
        externalIds[EXT.podName] = env.pod.name;
      }
      const added = await ovs.vswitch.addPort(conf.bridge, portName, {
        type: 'dpdkvhostuserclient',
        options: { 'vhost-server-path': paths.socketPath },
        mtuRequest: conf.mtu,
        externalIds,
      });
      if (!added)
        throw new CniError(
          CniCode.AttachmentExists,
          `OVS port ${portName} appeared concurrently; DEL ${env.containerId}/${env.ifname} first`,
        );
      undo.push({ what: `OVS port ${portName}`, run: () => ovs.vswitch.delPort(portName) });
      const l = await lease;
      if (!l.ok) throw l.err;
      const ipamResult = l.result;

      const iface: Interface = {
        name: env.ifname,
        mac,
        mtu: conf.mtu,
        sandbox: env.netns,
        socketPath: paths.socketPath,
      };
      const index = prev.interfaces.length;
      const ownIps = ipamResult.ips.map((ip) => ({ ...ip, interface: index }));
      const dns =
        [prev.dns, ipamResult.dns, conf.dns ?? {}].find((d) => Object.keys(d).length > 0) ?? {};
      const result: Result = {
        interfaces: [...prev.interfaces, iface],
        ips: [...prev.ips, ...ownIps],
        routes: [...prev.routes, ...ipamResult.routes],
        dns,
      };
      const file: AttachmentFile = {
        cniVersion: conf.cniVersion,
        network: conf.name,
        containerID: env.containerId,
        ifname: env.ifname,
        netns: env.netns,
        socketPath: paths.socketPath,
        mac,
        mtu: conf.mtu,
        bridge: conf.bridge,
        ovsPort: portName,
        deviceInfoFile,
        ips: ipamResult.ips,
        routes: ipamResult.routes,
        dns,
      };
      if (env.pod) file.pod = env.pod;
      undo.push({
        what: paths.jsonPath,
        run: () => removeAttachmentFiles(conf.socketDir, paths.folderName, env.ifname),
      });
      await writeAttachmentFile(join(podDir, `${env.ifname}.json`), file).catch((err: Error) => {
        throw new CniError(CniCode.IoFailure, `cannot write ${paths.jsonPath}: ${err.message}`);
      });
      undo.push({ what: deviceInfoFile, run: () => removeDeviceInfoFile(deviceInfoFile) });
      await writeDeviceInfoFile(deviceInfoFile, vhostUserDeviceInfo(paths.socketPath)).catch(
        (err: Error) => {
          throw new CniError(
            CniCode.IoFailure,
            `cannot write the device-info file ${deviceInfoFile}: ${err.message}`,
          );
        },
      );
      log.info('added', {
        containerId: env.containerId,
        ifname: env.ifname,
        port: portName,
        socket: paths.socketPath,
        folder: paths.folderName,
        deviceInfoFile,
        ...(env.runtimeName ? { runtimeName: env.runtimeName } : {}),
      });
      return formatResult(result, conf.cniVersion);
    } catch (err) {
      for (const step of undo.reverse()) {
        try {
          await step.run();
        } catch (undoErr) {
          log.error('rollback step failed', { step: step.what, err: undoErr });
        }
      }
      log.warn('ADD failed and was rolled back', {
        containerId: env.containerId,
        ifname: env.ifname,
        err,
      });
      throw err;
    }
  }
}

/** Paths for DEL/GC, where a config that ADD would refuse must not stop the cleanup. */
function pathsLenient(
  conf: NetConf,
  env: Pick<CniEnv, 'containerId' | 'pod' | 'ifname'>,
): AttachmentPaths | undefined {
  try {
    return attachmentPaths(conf, env);
  } catch {
    return undefined;
  }
}

/** What a removal did, for the log. */
function removalFields(r: Removal): Record<string, unknown> {
  return { removed: r.removed, refused: r.refused, failed: r.failed };
}

/** The attachment an OVS port's external_ids name, and its pod folder when that can be derived. */
function attachmentOfPort(
  socketDir: string,
  ids: Record<string, string>,
): { containerId: string; ifname: string; folder?: string } | undefined {
  const containerId = ids[EXT.containerId];
  const ifname = ids[EXT.ifname];
  if (!containerId || !ifname) return undefined;
  if (containerIdProblem(containerId) || ifnameProblem(ifname)) return { containerId, ifname };
  const ns = ids[EXT.podNamespace];
  const name = ids[EXT.podName];
  if (ns === undefined && name === undefined)
    return { containerId, ifname, folder: folderName(socketDir, { containerId }) };
  if (ns === undefined || name === undefined || !isPodIdentity(ns, name))
    return { containerId, ifname };
  return {
    containerId,
    ifname,
    folder: folderName(socketDir, { containerId, pod: { namespace: ns, name } }),
  };
}

/**
 * Whose folder an attachment has, for DEL and CHECK: the plugin's record of the ADD (the runtime's
 * CNI_ARGS may differ at DEL, or be unusable), else the identity in CNI_ARGS, else the container.
 * Also the device-info file the record names, when it is one the plugin may touch.
 */
async function identityOf(ctx: Context): Promise<{
  id: FolderIdentity;
  recorded: boolean;
  /** A record is there but cannot be used (it still says the attachment exists). */
  recordUnreadable?: boolean;
  deviceInfoFile?: string;
}> {
  const { env, conf, log } = ctx;
  const read = await readRecord(conf.socketDir, env.containerId, env.ifname).catch(
    (err: Error) => ({ state: 'unreadable' as const, error: err.message }),
  );
  if (read.state === 'ok') {
    const r = read.record;
    const out: { id: FolderIdentity; recorded: boolean; deviceInfoFile?: string } = {
      id: { containerId: env.containerId, ...(r.pod ? { pod: r.pod } : {}) },
      recorded: true,
    };
    if (r.deviceInfoFile && !deviceInfoFileProblem(r.deviceInfoFile, conf.deviceInfoDir))
      out.deviceInfoFile = r.deviceInfoFile;
    if (env.pod && (env.pod.namespace !== r.pod?.namespace || env.pod.name !== r.pod?.name))
      log.warn("CNI_ARGS name another pod than ADD's; the plugin's record is used", {
        args: env.pod,
        recorded: r.pod ?? null,
      });
    return out;
  }
  if (read.state === 'unreadable')
    log.warn('attachment record unreadable; CNI_ARGS and the container ID are used', {
      file: recordPath(conf.socketDir, env.containerId, env.ifname),
      error: read.error,
    });
  return {
    id: { containerId: env.containerId, ...(env.pod ? { pod: env.pod } : {}) },
    recorded: false,
    ...(read.state === 'unreadable' ? { recordUnreadable: true } : {}),
  };
}

export async function cmdDel(ctx: Context): Promise<void> {
  const { env, conf, log } = ctx;
  if (containerIdProblem(env.containerId) || ifnameProblem(env.ifname)) {
    // ADD refuses these before it makes anything: there is nothing to clean up.
    log.warn('DEL of an attachment ADD would have refused: nothing to remove', {
      reason: env.ignored,
    });
    return;
  }
  if (env.ignored)
    log.warn('DEL ignores CNI_ARGS it cannot use; the pod identity comes from the record', {
      reason: env.ignored,
    });
  // CNI_ARGS the plugin could not use are not handed on either (host-local would refuse them).
  const cleaned: Context = env.ignored ? { ...ctx, cniArgs: 'IgnoreUnknown=1' } : ctx;
  // A top-level deviceID too: DEL releases only what this attachment holds.
  if (conf.deviceID || conf.topLevelDeviceID) return delVf(cleaned);
  const who = await identityOf(ctx);
  const paths = pathsLenient(conf, { ...who.id, ifname: env.ifname });
  const portName = ovsPortName(env.containerId, env.ifname);
  const deviceInfoFiles = [
    ...new Set([
      who.deviceInfoFile,
      conf.deviceInfoFile,
      defaultDeviceInfoFile(conf.deviceInfoDir, conf.name, env.containerId, env.ifname),
    ]),
  ].filter((f): f is string => f !== undefined);
  if (conf.deviceInfoFileProblem)
    log.warn('DEL ignores runtimeConfig.CNIDeviceInfoFile', {
      reason: conf.deviceInfoFileProblem,
    });
  const run = async (): Promise<void> => {
    // The file is read only to know whose files these are and to report a bad one; nothing in
    // it decides what is removed.
    const pod = paths ? await podDirOf(conf, paths.folderName) : undefined;
    const read = pod?.state === 'ok' ? await readAttachmentFile(pod.dir, env.ifname) : undefined;
    if (read?.state === 'unreadable')
      log.warn('attachment file unreadable; DEL removes what it derives', {
        file: paths?.jsonPath,
        error: read.error,
      });
    let otherOwner: string | undefined =
      read?.state === 'ok' && read.file.containerID !== env.containerId
        ? read.file.containerID
        : undefined;
    const removed = await withOvs(conf, `deleting port ${portName}`, async (ovs) => {
      const gone = await ovs.vswitch.delPort(portName);
      // An unreadable file: another container's port naming this folder and ifname owns it.
      if (paths && read?.state === 'unreadable')
        otherOwner = (await ovs.vswitch.listPorts(conf.bridge).catch(() => []))
          .map((p) => attachmentOfPort(conf.socketDir, p.externalIds))
          .find(
            (a) =>
              a?.folder === paths.folderName &&
              a.ifname === env.ifname &&
              a.containerId !== env.containerId,
          )?.containerId;
      return gone;
    });
    // A removal that fails does not stop the others (the lease's above all): DEL reports it at
    // the end and keeps the record, so a retried DEL (or GC) still finds the attachment.
    const problems: string[] = [];
    let files: Removal | undefined;
    if (paths && otherOwner === undefined) {
      files = await removeAttachmentFiles(conf.socketDir, paths.folderName, env.ifname);
      problems.push(...files.failed.map((f) => `${f.path}: ${f.error}`));
      if (files.refused.length > 0)
        log.warn('DEL left files that are not what the plugin made', removalFields(files));
    } else if (paths)
      log.warn('DEL left the pod folder files: they belong to another container', {
        file: paths.jsonPath,
        owner: otherOwner,
      });
    const deviceInfoRemoved: string[] = [];
    for (const f of deviceInfoFiles)
      await removeDeviceInfoFile(f).then(
        (r) => deviceInfoRemoved.push(...r),
        (err: Error) => problems.push(`the device-info file ${f}: ${err.message}`),
      );
    const ipam = ipamOf(cleaned);
    if (ipam)
      await ipam.del().catch((err: unknown) => {
        if (problems.length > 0) log.error('DEL could not remove everything', { problems });
        throw err;
      });
    if (problems.length > 0)
      throw new CniError(
        CniCode.IoFailure,
        `cannot remove all of ${env.containerId}/${env.ifname}: ${problems.join('; ')}`,
      );
    // Last: until everything above is gone, a retried DEL (or GC) still finds the record.
    await removeRecord(conf.socketDir, env.containerId, env.ifname).catch((err: Error) => {
      throw new CniError(
        CniCode.IoFailure,
        `cannot remove ${recordPath(conf.socketDir, env.containerId, env.ifname)}: ${err.message}`,
      );
    });
    log.info('deleted', {
      containerId: env.containerId,
      ifname: env.ifname,
      port: portName,
      portRemoved: removed,
      folder: paths?.folderName,
      recorded: who.recorded,
      deviceInfoRemoved,
      ...(files ? removalFields(files) : {}),
    });
  };
  if (!paths) return run();
  return withLock(lockDir(conf), paths.folderName, conf.lockTimeoutMs, run);
}

export async function cmdCheck(ctx: Context): Promise<void> {
  const { env, conf } = ctx;
  if (!conf.prevResult)
    throw new CniError(
      CniCode.InvalidConfig,
      'invalid network configuration: prevResult is required for CHECK (the result of the ADD)',
      undefined,
      {
        field: 'prevResult',
      },
    );
  const prev = parseResult(conf.prevResult);
  refuseTopLevelDeviceID(conf);
  if (conf.deviceID) return checkVf({ ...ctx, conf: { ...conf, deviceID: conf.deviceID } }, prev);
  const who = await identityOf(ctx);
  const paths = attachmentPaths(conf, { ...who.id, ifname: env.ifname });
  const failed = (what: string): CniError =>
    new CniError(
      CniCode.CheckFailed,
      `CHECK failed for ${env.containerId}/${env.ifname}: ${what}; DEL and ADD the attachment again`,
    );
  const portName = ovsPortName(env.containerId, env.ifname);
  // The pod folder's files are the pod's to remove or rewrite, and its netns may be gone before
  // DEL: 3 (nothing to clean up) only when neither the plugin's record nor an OVS port says the
  // attachment exists.
  const absent = async (
    what: string,
    unknown = `container unknown: no attachment ${env.containerId}/${env.ifname} in ${paths.podDir}`,
  ): Promise<CniError> => {
    if (who.recorded || who.recordUnreadable)
      return failed(`${what}, though the plugin's record of it exists`);
    const port = await withOvs(conf, `checking port ${portName}`, (ovs) =>
      ovs.vswitch.getInterface(portName),
    );
    return port
      ? failed(`${what}, though OVS port ${portName} exists`)
      : new CniError(CniCode.UnknownContainer, unknown);
  };
  if (!existsSync(env.netns))
    throw await absent(
      `CNI_NETNS ${env.netns} does not exist`,
      `container unknown: CNI_NETNS ${env.netns} does not exist`,
    );
  const pod = await podDirOf(conf, paths.folderName);
  if (pod.state === 'refused') throw failed(`the pod folder ${pod.path} ${pod.reason}`);
  if (pod.state === 'missing') throw await absent(`the pod folder ${paths.podDir} is missing`);
  const read = await readAttachmentFile(pod.dir, env.ifname);
  if (read.state === 'missing')
    throw await absent(`the attachment file ${paths.jsonPath} is missing`);
  if (read.state === 'unreadable')
    throw failed(`the attachment file ${paths.jsonPath} is unusable: ${read.error}`);
  const file = read.file;
  if (file.containerID !== env.containerId)
    throw await absent(`${paths.jsonPath} names container ${file.containerID}`);
  // The file is the pod's to read, and may have been rewritten: compared with what ADD derives.
  const mac = macAddress(env.containerId, env.ifname);
  if (file.mac !== mac) throw failed(`${paths.jsonPath} says MAC ${file.mac}, not ${mac}`);
  const socket = await socketPathProblem(pod.dir, env.ifname).catch(
    (err: Error) => `cannot be inspected: ${err.message}`,
  );
  if (socket) throw failed(`the socket path ${paths.socketPath} ${socket}`);

  await withOvs(conf, `checking port ${portName}`, async (ovs) => {
    const iface = await ovs.vswitch.getInterface(portName);
    if (!iface) throw failed(`OVS port ${portName} is missing`);
    if (iface.type !== 'dpdkvhostuserclient')
      throw failed(`OVS interface ${portName} has type ${iface.type}`);
    if (iface.options['vhost-server-path'] !== paths.socketPath)
      throw failed(
        `OVS interface ${portName} uses socket ${iface.options['vhost-server-path']}, not ${paths.socketPath}`,
      );
    if (iface.error) throw failed(`OVS reports an error on ${portName}: ${iface.error}`);
    const ports = await ovs.vswitch.listPorts(conf.bridge).catch(() => []);
    if (!ports.some((p) => p.name === portName))
      throw failed(`OVS port ${portName} is not on bridge ${conf.bridge}`);
  });
  const mine = prev.interfaces.findIndex(
    (i) => i.name === env.ifname && (i.sandbox ?? '') === env.netns,
  );
  if (mine < 0) throw failed(`prevResult has no interface ${env.ifname} in ${env.netns}`);
  const iface = prev.interfaces[mine];
  if (iface?.mac && iface.mac !== mac)
    throw failed(`prevResult's MAC ${iface.mac} differs from ${mac}`);
  if (iface?.socketPath && iface.socketPath !== paths.socketPath)
    throw failed(`prevResult's socketPath ${iface.socketPath} differs from ${paths.socketPath}`);
  for (const ip of file.ips)
    if (!prev.ips.some((p) => p.address === ip.address))
      throw failed(`address ${ip.address} is not in prevResult`);
  const infoFile =
    who.deviceInfoFile ??
    conf.deviceInfoFile ??
    defaultDeviceInfoFile(conf.deviceInfoDir, conf.name, env.containerId, env.ifname);
  const info = await readDeviceInfoFile(infoFile);
  if (info.state !== 'ok')
    throw failed(
      `the device-info file ${infoFile} is ${info.state === 'missing' ? 'missing' : `unusable: ${info.error}`}`,
    );
  if (JSON.stringify(info.info) !== JSON.stringify(vhostUserDeviceInfo(paths.socketPath)))
    throw failed(`the device-info file ${infoFile} does not describe ${paths.socketPath}`);
  const ipam = ipamOf(ctx);
  if (ipam) await ipam.check(prev);
}

/** Whether any attachment of this network exists on this node (its pod has a socket folder). */
async function hasAttachments(conf: NetConf): Promise<boolean> {
  return (await listAttachmentFiles(conf.socketDir)).found.some(
    ({ read }) => read.state === 'ok' && read.file.network === conf.name,
  );
}

/**
 * STATUS: 50 when ADD cannot be served but running pods are unaffected (ovsdb-server down: the
 * datapath keeps forwarding), 51 when running pods may have lost connectivity too (the bridge
 * their ports were on is gone, or ovs-vswitchd does not apply configuration).
 */
export async function cmdStatus(ctx: Context): Promise<void> {
  const { conf } = ctx;
  const unavailable = (msg: string, details?: string): CniError =>
    new CniError(CniCode.PluginNotAvailable, msg, details);
  const limited = (msg: string): CniError =>
    new CniError(
      CniCode.PluginNotAvailableLimitedConnectivity,
      `${msg}; existing pods of ${conf.name} may have limited connectivity`,
    );
  await withOvs(
    conf,
    'checking status',
    async (ovs) => {
      if (!(await ovs.vswitch.getBridge(conf.bridge))) {
        const fix = `create it: ovs-vsctl add-br ${conf.bridge} -- set bridge ${conf.bridge} datapath_type=netdev`;
        const msg = `bridge ${conf.bridge} does not exist in OVS at ${conf.ovsdbSocket}; ${fix}`;
        throw (await hasAttachments(conf)) ? limited(msg) : unavailable(msg);
      }
      // ovsdb-server answering is not enough: ovs-vswitchd must apply config (as ovs-vsctl waits).
      const target = await ovs.vswitch.bumpConfig();
      const deadline = Date.now() + 3000;
      for (;;) {
        const root = await ovs.vswitch.getOpenVSwitch();
        if (root.curCfg >= target) break;
        if (Date.now() > deadline)
          throw limited(
            `ovs-vswitchd is not running or not applying configuration (cur_cfg ${root.curCfg} < next_cfg ${target}); start (or restart) ovs-vswitchd with the database at ${conf.ovsdbSocket}`,
          );
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    CniCode.PluginNotAvailable,
  ).catch((err: unknown) => {
    if (err instanceof CniError && err.code === CniCode.TryAgainLater)
      throw unavailable(err.message, err.details);
    throw err;
  });
  try {
    const s = await stat(conf.socketDir);
    if (!s.isDirectory()) throw new Error('not a directory');
  } catch {
    await mkdir(conf.socketDir, { recursive: true }).catch((err: Error) => {
      throw unavailable(
        `socketDir ${conf.socketDir} cannot be created: ${err.message}; create it or fix socketDir`,
      );
    });
  }
  const ipam = ipamOf(ctx);
  if (ipam)
    await ipam.status().catch((err: unknown) => {
      const e = err instanceof CniError ? err : new CniError(CniCode.Internal, String(err));
      // A 1.1.0 IPAM's own 50/51 is kept: it knows whether existing leases are affected.
      const code =
        e.code === CniCode.PluginNotAvailableLimitedConnectivity
          ? e.code
          : CniCode.PluginNotAvailable;
      throw new CniError(
        code,
        `IPAM plugin ${ipam.type} is not available: ${e.message}`,
        e.details,
      );
    });
}

interface Stale {
  containerId: string;
  ifname: string;
  ovsPort?: string;
  /** Pod folders (names in socketDir) holding its files. */
  folders: Set<string>;
  lease?: boolean;
  /** Device-info files to remove (the record's, and the name the plugin derives). */
  deviceInfoFiles: Set<string>;
  /** Whether the plugin's record of it exists (removed last). */
  record?: boolean;
  /** The VF a VF attachment's record names: its claim is released. */
  deviceID?: string;
}

/** host-local's store: one file per leased IP holding "containerID\r\nifname". */
async function hostLocalLeases(conf: NetConf): Promise<Attachment[]> {
  if (conf.ipam?.type !== 'host-local') return [];
  const dataDir =
    typeof conf.ipam.dataDir === 'string' ? conf.ipam.dataDir : '/var/lib/cni/networks';
  const dir = join(dataDir, conf.name);
  const names = await readdir(dir).catch(() => [] as string[]);
  const out: Attachment[] = [];
  for (const n of names) {
    if (n === 'lock' || n.startsWith('last_reserved_ip')) continue;
    const [containerID, ifname] = (await readFile(join(dir, n), 'utf8').catch(() => '')).split(
      /\r?\n/,
    );
    if (containerID && ifname) out.push({ containerID: containerID.trim(), ifname: ifname.trim() });
  }
  return out;
}

export async function cmdGc(ctx: Context): Promise<void> {
  const { conf, log } = ctx;
  const valid = conf.validAttachments;
  if (!valid)
    throw new CniError(
      CniCode.InvalidConfig,
      'invalid network configuration: GC needs cni.dev/valid-attachments (or cni.dev/attachments), the list of attachments to keep',
      undefined,
      { field: 'cni.dev/valid-attachments' },
    );
  const key = (c: string, i: string): string => `${c}\u0000${i}`;
  const keep = new Set(valid.map((a) => key(a.containerID, a.ifname)));
  const stale = new Map<string, Stale>();
  // Pod folder files that a kept attachment owns: never removed for a stale one sharing the
  // names (a pod's earlier sandbox, under the same pod folder and interface).
  const keptFiles = new Set<string>();
  const note = (
    containerId: string,
    ifname: string,
    add: {
      ovsPort?: string;
      folder?: string;
      lease?: boolean;
      deviceInfoFile?: string;
      record?: boolean;
      deviceID?: string;
    },
  ): void => {
    const k = key(containerId, ifname);
    if (keep.has(k)) {
      if (add.folder) keptFiles.add(`${add.folder}/${ifname}`);
      return;
    }
    const s = stale.get(k) ?? {
      containerId,
      ifname,
      folders: new Set<string>(),
      deviceInfoFiles: new Set([
        defaultDeviceInfoFile(conf.deviceInfoDir, conf.name, containerId, ifname),
      ]),
    };
    if (add.ovsPort) s.ovsPort = add.ovsPort;
    if (add.deviceInfoFile) s.deviceInfoFiles.add(add.deviceInfoFile);
    if (add.record) s.record = true;
    if (add.deviceID) s.deviceID = add.deviceID;
    if (add.lease) s.lease = true;
    if (add.folder) s.folders.add(add.folder);
    stale.set(k, s);
  };
  const errors: string[] = [];

  // OVS (root's own database) says which attachment each port is; the pod folders say nothing
  // that is trusted: a file's identity counts only when it matches the folder it is in.
  let ovs: Ovs | undefined;
  const byFolder = new Map<string, { containerId: string; ifname: string }>();
  try {
    ovs = await connectOvs(conf);
    for (const p of await ovs.vswitch.listPorts(conf.bridge)) {
      if (p.externalIds[EXT.network] !== conf.name) continue;
      const a = attachmentOfPort(conf.socketDir, p.externalIds);
      if (!a) continue;
      if (a.folder) byFolder.set(`${a.folder}/${a.ifname}`, a);
      note(a.containerId, a.ifname, { ovsPort: p.name, ...(a.folder ? { folder: a.folder } : {}) });
    }
  } catch (err) {
    errors.push(`listing OVS ports of ${conf.bridge}: ${(err as Error).message}`);
  }
  const listed = await listAttachmentFiles(conf.socketDir);
  for (const r of listed.refused) log.warn('GC skipped a pod folder it does not trust', r);
  // Unreadable files and records that nothing says are this network's: left alone (logged), as
  // they may be another network's (socketDir, its pod folders and records are shared).
  let unclaimed = 0;
  for (const { folder, ifname, read } of listed.found) {
    const file = join(conf.socketDir, folder, `${ifname}.json`);
    if (read.state === 'ok') {
      const f = read.file;
      if (f.network !== conf.name) continue;
      const expected = folderName(conf.socketDir, {
        containerId: f.containerID,
        ...(f.pod ? { pod: f.pod } : {}),
      });
      if (expected === folder) {
        note(f.containerID, ifname, { folder });
        continue;
      }
      log.warn('attachment file names another pod folder; its identity is not used', {
        file,
        names: expected,
      });
    }
    const owner = byFolder.get(`${folder}/${ifname}`);
    if (read.state === 'unreadable') {
      log.warn('attachment file unreadable', {
        file,
        error: read.error,
        ...(owner ? {} : { left: 'no OVS port of this network claims it' }),
      });
      if (!owner) unclaimed++;
    }
    if (owner) note(owner.containerId, owner.ifname, { folder });
  }
  for (const lease of await hostLocalLeases(conf))
    note(lease.containerID, lease.ifname, { lease: true });
  // The plugin's own records: the identity ADD had (so the folder, derived again from it, even
  // when the OVS port and the pod's files are gone) and the device-info file it wrote.
  const records = await listRecords(conf.socketDir);
  for (const r of records.records) {
    if (r.network !== conf.name) continue;
    const infoOk = r.deviceInfoFile && !deviceInfoFileProblem(r.deviceInfoFile, conf.deviceInfoDir);
    note(r.containerID, r.ifname, {
      // A VF attachment has no pod folder files.
      ...(r.deviceID
        ? {}
        : {
            folder: folderName(conf.socketDir, {
              containerId: r.containerID,
              ...(r.pod ? { pod: r.pod } : {}),
            }),
          }),
      record: true,
      ...(r.deviceID ? { deviceID: r.deviceID } : {}),
      ...(infoOk ? { deviceInfoFile: r.deviceInfoFile } : {}),
    });
  }
  for (const u of records.unreadable) {
    // Its name says which attachment it was, not which network: it goes only with a stale
    // attachment of this network (its OVS port, lease or pod file), removed after the rest.
    const name = u.file.slice(u.file.lastIndexOf('/') + 1, -'.json'.length);
    const colon = name.lastIndexOf(':');
    const s = colon > 0 ? stale.get(key(name.slice(0, colon), name.slice(colon + 1))) : undefined;
    if (s) s.record = true;
    else unclaimed++;
    log.warn('attachment record unreadable', {
      ...u,
      ...(s ? {} : { left: 'no stale attachment of this network names it' }),
    });
  }

  const ipam = ipamOf(ctx);
  let removed = 0;
  try {
    for (const s of stale.values()) {
      const what = `${s.containerId}/${s.ifname}`;
      const failures: string[] = [];
      if (s.ovsPort && ovs)
        await ovs.vswitch
          .delPort(s.ovsPort)
          .catch((err: Error) => failures.push(`OVS port ${s.ovsPort}: ${err.message}`));
      for (const folder of s.folders) {
        if (keptFiles.has(`${folder}/${s.ifname}`)) {
          log.info('gc left files a kept attachment owns', { attachment: what, folder });
          continue;
        }
        const r = await removeAttachmentFiles(conf.socketDir, folder, s.ifname);
        for (const f of r.refused) failures.push(`${f.path} left alone: it ${f.reason}`);
        for (const f of r.failed) failures.push(`${f.path}: ${f.error}`);
        log.info('gc removed attachment files', { attachment: what, ...removalFields(r) });
      }
      for (const f of s.deviceInfoFiles)
        await removeDeviceInfoFile(f).catch((err: Error) =>
          failures.push(`device-info ${f}: ${err.message}`),
        );
      if (ipam)
        await ipam
          .del(s.containerId, s.ifname, 'IgnoreUnknown=1')
          .catch((err: Error) => failures.push(`IPAM lease: ${err.message}`));
      if (s.deviceID)
        await releaseVfClaim(conf, s.deviceID, s.containerId, s.ifname).catch((err: Error) =>
          failures.push(`VF ${s.deviceID} claim: ${err.message}`),
        );
      if (s.record && failures.length === 0)
        await removeRecord(conf.socketDir, s.containerId, s.ifname).catch((err: Error) =>
          failures.push(`record: ${err.message}`),
        );
      if (failures.length === 0) removed++;
      else errors.push(`${what}: ${failures.join('; ')}`);
    }
  } finally {
    ovs?.client.close();
  }
  if (ipam)
    await ipam.gc(valid).catch((err: Error) => errors.push(`IPAM ${ipam.type} GC: ${err.message}`));
  log.info('gc', {
    network: conf.name,
    valid: valid.length,
    stale: stale.size,
    unclaimed,
    removed,
    errors: errors.length,
  });
  if (errors.length > 0)
    throw new CniError(
      CniCode.GcIncomplete,
      `GC removed ${removed} of ${stale.size} stale attachments of ${conf.name}; ${errors.length} removals failed`,
      errors.join('\n'),
    );
}
