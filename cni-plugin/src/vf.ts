import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { removeStateFile, writeStateFile } from '@flowline/state-file';
import { readUntrusted, type UntrustedRead } from './attachment-file';
import { EMPTY_RESULT as EMPTY, ipamOf, lockDir, type Context } from './context';
import type { NetConf } from './config';
import { containerIdProblem, ifnameProblem } from './env';
import { CniCode, CniError } from './errors';
import { withLock } from './lock';
import { folderName } from './naming';
import { recordPath, readRecord, refuseRecorded, removeRecord, writeRecord } from './records';
import { formatResult, parseResult, type Interface, type Result } from './result';

// An attachment that is an SR-IOV VF (deviceID given): the pod drives the VF itself (vfio-pci,
// or its kernel netdev), so there is no OVS port and no socket folder; the plugin checks that
// the device is a VF, delegates IPAM, and reports the interface with its pciID (CNI 1.1). Its
// record (records.ts, with the deviceID) is what says the attachment exists, and the VF's claim
// (`<socketDir>/.vf/<PCI address>.json`) which attachment holds the VF: a VF is given to one
// attachment at a time, whatever deviceID another network's configuration names.

/**
 * The lock of a VF attachment: keyed by the container alone, which ADD and DEL both have however
 * CNI_ARGS differ (no pod folder to key it by).
 */
function vfLock<T>(ctx: Context, fn: () => Promise<T>): Promise<T> {
  const { env, conf } = ctx;
  const key = folderName(conf.socketDir, { containerId: env.containerId });
  return withLock(lockDir(conf), key, conf.lockTimeoutMs, fn);
}

const FIELD = 'runtimeConfig.deviceID';

/**
 * ADD and CHECK take the VF only from runtimeConfig.deviceID: a top-level deviceID is in the
 * NetworkAttachmentDefinition, which its namespace writes, so it could name any VF of the node.
 */
export function refuseTopLevelDeviceID(conf: NetConf): void {
  if (conf.topLevelDeviceID)
    throw new CniError(
      CniCode.InvalidConfig,
      `invalid network configuration: deviceID ${conf.topLevelDeviceID} is at the top level, where the network's author can write any VF; the plugin takes the VF only from runtimeConfig.deviceID: declare "capabilities": {"deviceID": true} so that Multus passes the device plugin's allocation there`,
      undefined,
      { field: 'deviceID' },
    );
}

/** The VF's sysfs folder; code 7 naming deviceID when it is not a VF of this node. */
function vfDir(conf: NetConf & { deviceID: string }): string {
  const dir = join(conf.sysfsRoot, 'bus', 'pci', 'devices', conf.deviceID);
  if (!existsSync(dir))
    throw new CniError(
      CniCode.InvalidConfig,
      `invalid network configuration: ${FIELD} ${conf.deviceID} is not a PCI device of this node (no ${dir}); pass the VF the device plugin allocated`,
      undefined,
      { field: FIELD },
    );
  if (!existsSync(join(dir, 'physfn')))
    throw new CniError(
      CniCode.InvalidConfig,
      `invalid network configuration: ${FIELD} ${conf.deviceID} is not an SR-IOV VF (no ${join(dir, 'physfn')}); pass a VF, not a PF`,
      undefined,
      { field: FIELD },
    );
  return dir;
}

/** The MAC of the VF's kernel netdev, when it has one (not when bound to vfio-pci). */
async function vfMac(dir: string): Promise<string | undefined> {
  const names = await readdir(join(dir, 'net')).catch(() => [] as string[]);
  const first = names[0];
  if (!first) return undefined;
  const mac = (await readFile(join(dir, 'net', first, 'address'), 'utf8').catch(() => '')).trim();
  return mac || undefined;
}

interface VfClaim {
  network: string;
  containerID: string;
  ifname: string;
}

const claimPath = (socketDir: string, pci: string): string => join(socketDir, '.vf', `${pci}.json`);

function readClaim(socketDir: string, pci: string): Promise<UntrustedRead<{ claim: VfClaim }>> {
  return readUntrusted(claimPath(socketDir, pci), 65536, (text) => {
    const v = JSON.parse(text) as Record<string, unknown> | null;
    if (
      !v ||
      typeof v.network !== 'string' ||
      typeof v.containerID !== 'string' ||
      typeof v.ifname !== 'string'
    )
      throw new Error('network, containerID or ifname is missing');
    // They name the holder's record file.
    if (containerIdProblem(v.containerID) || ifnameProblem(v.ifname))
      throw new Error('containerID or ifname is not valid');
    return { claim: { network: v.network, containerID: v.containerID, ifname: v.ifname } };
  });
}

/** Serialises the claims of one VF, whichever containers ask (taken inside vfLock). */
function pciLock<T>(conf: NetConf, pci: string, fn: () => Promise<T>): Promise<T> {
  return withLock(lockDir(conf), `vf-${pci}`, conf.lockTimeoutMs, fn);
}

/**
 * Under pciLock: refuses a VF that another attachment holds, its claim naming an attachment
 * whose record still has that VF (7, or 5 for a claim that cannot be read). The claim of an
 * attachment since DELeted or GC'd (its record gone) is taken over.
 */
async function refuseHeld(ctx: Context, pci: string): Promise<void> {
  const { env, conf, log } = ctx;
  const path = claimPath(conf.socketDir, pci);
  const read = await readClaim(conf.socketDir, pci);
  if (read.state === 'missing') return;
  if (read.state === 'unreadable')
    throw new CniError(
      CniCode.IoFailure,
      `the claim ${path} of VF ${pci} is unusable (${read.error}); remove it if no attachment uses VF ${pci}`,
    );
  const c = read.claim;
  if (c.containerID === env.containerId && c.ifname === env.ifname) return;
  const holder = await readRecord(conf.socketDir, c.containerID, c.ifname);
  if (holder.state === 'unreadable' || (holder.state === 'ok' && holder.record.deviceID === pci))
    throw new CniError(
      CniCode.InvalidConfig,
      `invalid network configuration: ${FIELD} ${pci} is held by attachment ${c.containerID}/${c.ifname} of network ${c.network}; pass the VF the device plugin allocated to this pod (or DEL that attachment if it is gone)`,
      undefined,
      { field: FIELD },
    );
  log.warn('VF claim of an attachment that is gone taken over', { file: path, was: c });
}

/** Removes the VF's claim if it names this attachment (DEL, GC, a failed ADD). */
export async function releaseVfClaim(
  conf: NetConf,
  pci: string,
  containerId: string,
  ifname: string,
): Promise<void> {
  await pciLock(conf, pci, async () => {
    const read = await readClaim(conf.socketDir, pci);
    if (
      read.state === 'ok' &&
      read.claim.containerID === containerId &&
      read.claim.ifname === ifname
    )
      await removeStateFile(claimPath(conf.socketDir, pci));
  });
}

export async function addVf(
  ctx: Context & { conf: NetConf & { deviceID: string } },
): Promise<Record<string, unknown>> {
  const { env, conf, log } = ctx;
  const dir = vfDir(conf);
  const prev = conf.prevResult ? parseResult(conf.prevResult) : EMPTY;
  return vfLock(ctx, async () => {
    // Before the IPAM ADD: its rollback (IPAM DEL of this container and interface) would
    // release the existing attachment's lease.
    await refuseRecorded(conf.socketDir, env.containerId, env.ifname);
    const ipam = ipamOf(ctx);
    const done = { recorded: false, ipamStarted: false };
    try {
      await pciLock(conf, conf.deviceID, async () => {
        await refuseHeld(ctx, conf.deviceID);
        // The record first: a crash from here on leaves what DEL and GC need to find.
        const record = recordPath(conf.socketDir, env.containerId, env.ifname);
        await writeRecord(conf.socketDir, {
          network: conf.name,
          containerID: env.containerId,
          ifname: env.ifname,
          ...(env.pod ? { pod: env.pod } : {}),
          deviceID: conf.deviceID,
        }).catch((err: Error) => {
          throw new CniError(CniCode.IoFailure, `cannot write ${record}: ${err.message}`);
        });
        done.recorded = true;
        const claim = claimPath(conf.socketDir, conf.deviceID);
        const holder = { network: conf.name, containerID: env.containerId, ifname: env.ifname };
        await mkdir(dirname(claim), { recursive: true, mode: 0o700 })
          .then(() =>
            writeStateFile(claim, JSON.stringify(holder, null, 2) + '\n', {
              mode: 0o600,
              keepPrevious: false,
            }),
          )
          .catch((err: Error) => {
            throw new CniError(CniCode.IoFailure, `cannot write ${claim}: ${err.message}`);
          });
      });
      // A failed IPAM ADD may have reserved an address, and its DEL is idempotent.
      done.ipamStarted = true;
      const ipamResult = ipam ? await ipam.add() : EMPTY;
      const iface: Interface = { name: env.ifname, sandbox: env.netns, pciID: conf.deviceID };
      const mac = await vfMac(dir);
      if (mac) iface.mac = mac;
      const index = prev.interfaces.length;
      const dns =
        [prev.dns, ipamResult.dns, conf.dns ?? {}].find((d) => Object.keys(d).length > 0) ?? {};
      const result: Result = {
        interfaces: [...prev.interfaces, iface],
        ips: [...prev.ips, ...ipamResult.ips.map((ip) => ({ ...ip, interface: index }))],
        routes: [...prev.routes, ...ipamResult.routes],
        dns,
      };
      log.info('added VF', {
        containerId: env.containerId,
        ifname: env.ifname,
        pciID: conf.deviceID,
      });
      return formatResult(result, conf.cniVersion);
    } catch (err) {
      if (done.ipamStarted)
        await ipam
          ?.del()
          .catch((undoErr: unknown) =>
            log.error('rollback of the IPAM lease failed', { err: undoErr }),
          );
      if (done.recorded) {
        await releaseVfClaim(conf, conf.deviceID, env.containerId, env.ifname).catch(
          (undoErr: unknown) =>
            log.error('rollback step failed', { step: 'VF claim', err: undoErr }),
        );
        await removeRecord(conf.socketDir, env.containerId, env.ifname).catch((undoErr: unknown) =>
          log.error('rollback step failed', { step: 'attachment record', err: undoErr }),
        );
      }
      throw err;
    }
  });
}

/**
 * DEL of a VF attachment: the lease, the VF's claim, then the record (last, so a failed DEL is
 * found again); idempotent like IPAM DEL. The VF is the recorded one (else the configuration's,
 * the top-level deviceID included: only a claim naming this attachment is removed). `ctx`
 * carries the CNI_ARGS to pass on (cmdDel's, without ones the plugin could not use).
 */
export async function delVf(ctx: Context): Promise<void> {
  const { env, conf } = ctx;
  await vfLock(ctx, async () => {
    const read = await readRecord(conf.socketDir, env.containerId, env.ifname);
    const pci =
      (read.state === 'ok' ? read.record.deviceID : undefined) ??
      conf.deviceID ??
      conf.topLevelDeviceID;
    await ipamOf(ctx)?.del();
    if (pci)
      await releaseVfClaim(conf, pci, env.containerId, env.ifname).catch((err: Error) => {
        throw new CniError(
          CniCode.IoFailure,
          `cannot remove ${claimPath(conf.socketDir, pci)}: ${err.message}`,
        );
      });
    await removeRecord(conf.socketDir, env.containerId, env.ifname).catch((err: Error) => {
      throw new CniError(
        CniCode.IoFailure,
        `cannot remove ${recordPath(conf.socketDir, env.containerId, env.ifname)}: ${err.message}`,
      );
    });
  });
}

export async function checkVf(
  ctx: Context & { conf: NetConf & { deviceID: string } },
  prev: Result,
): Promise<void> {
  const { env, conf } = ctx;
  const failed = (what: string): CniError =>
    new CniError(
      CniCode.CheckFailed,
      `CHECK failed for ${env.containerId}/${env.ifname}: ${what}; DEL and ADD the attachment again`,
    );
  const file = recordPath(conf.socketDir, env.containerId, env.ifname);
  const read = await readRecord(conf.socketDir, env.containerId, env.ifname);
  // A netns gone before DEL: 3 (nothing to clean up) only when the plugin has no record of it.
  if (!existsSync(env.netns)) {
    if (read.state === 'missing')
      throw new CniError(
        CniCode.UnknownContainer,
        `container unknown: CNI_NETNS ${env.netns} does not exist`,
      );
    throw failed(`CNI_NETNS ${env.netns} does not exist, though the plugin's record of it exists`);
  }
  vfDir(conf);
  const mine = prev.interfaces.find(
    (i) => i.name === env.ifname && (i.sandbox ?? '') === env.netns,
  );
  if (!mine) throw failed(`prevResult has no interface ${env.ifname} in ${env.netns}`);
  if (mine.pciID !== undefined && mine.pciID !== conf.deviceID)
    throw failed(`prevResult's pciID ${mine.pciID} differs from deviceID ${conf.deviceID}`);
  if (read.state === 'missing') throw failed(`the plugin's record ${file} is missing`);
  if (read.state === 'unreadable')
    throw failed(`the plugin's record ${file} is unusable: ${read.error}`);
  if (read.record.deviceID !== conf.deviceID)
    throw failed(
      `the plugin's record names ${read.record.deviceID ? `VF ${read.record.deviceID}` : 'no VF'}, not deviceID ${conf.deviceID}`,
    );
  const claim = await readClaim(conf.socketDir, conf.deviceID);
  const claimFile = claimPath(conf.socketDir, conf.deviceID);
  if (claim.state === 'missing')
    throw failed(`the claim ${claimFile} of VF ${conf.deviceID} is missing`);
  if (claim.state === 'unreadable')
    throw failed(`the claim ${claimFile} of VF ${conf.deviceID} is unusable: ${claim.error}`);
  if (claim.claim.containerID !== env.containerId || claim.claim.ifname !== env.ifname)
    throw failed(
      `VF ${conf.deviceID} is claimed by ${claim.claim.containerID}/${claim.claim.ifname}`,
    );
  await ipamOf(ctx)?.check(prev);
}
