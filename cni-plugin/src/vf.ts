import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { EMPTY_RESULT as EMPTY, ipamOf, lockDir, type Context } from './context';
import type { NetConf } from './config';
import { CniCode, CniError } from './errors';
import { withLock } from './lock';
import { folderName } from './naming';
import { formatResult, parseResult, type Interface, type Result } from './result';

// An attachment that is an SR-IOV VF (deviceID given): the pod drives the VF itself (vfio-pci,
// or its kernel netdev), so there is no OVS port and no socket folder; the plugin checks that
// the device is a VF, delegates IPAM, and reports the interface with its pciID (CNI 1.1).

/**
 * The lock of a VF attachment: keyed by the container alone, which ADD and DEL both have however
 * CNI_ARGS differ (a VF attachment has no record to give DEL ADD's pod identity back).
 */
function vfLock<T>(ctx: Context, fn: () => Promise<T>): Promise<T> {
  const { env, conf } = ctx;
  const key = folderName(conf.socketDir, { containerId: env.containerId });
  return withLock(lockDir(conf), key, conf.lockTimeoutMs, fn);
}

/** The VF's sysfs folder; code 7 naming deviceID when it is not a VF of this node. */
function vfDir(conf: NetConf & { deviceID: string }): string {
  const field = conf.raw.runtimeConfig ? 'runtimeConfig.deviceID' : 'deviceID';
  const dir = join(conf.sysfsRoot, 'bus', 'pci', 'devices', conf.deviceID);
  if (!existsSync(dir))
    throw new CniError(
      CniCode.InvalidConfig,
      `invalid network configuration: ${field} ${conf.deviceID} is not a PCI device of this node (no ${dir}); pass the VF the device plugin allocated`,
      undefined,
      { field },
    );
  if (!existsSync(join(dir, 'physfn')))
    throw new CniError(
      CniCode.InvalidConfig,
      `invalid network configuration: ${field} ${conf.deviceID} is not an SR-IOV VF (no ${join(dir, 'physfn')}); pass a VF, not a PF`,
      undefined,
      { field },
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

export async function addVf(
  ctx: Context & { conf: NetConf & { deviceID: string } },
): Promise<Record<string, unknown>> {
  const { env, conf, log } = ctx;
  const dir = vfDir(conf);
  const prev = conf.prevResult ? parseResult(conf.prevResult) : EMPTY;
  return vfLock(ctx, async () => {
    const ipam = ipamOf(ctx);
    try {
      // Inside the try: a failed IPAM ADD may have reserved an address, and its DEL is idempotent.
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
      await ipam
        ?.del()
        .catch((undoErr: unknown) =>
          log.error('rollback of the IPAM lease failed', { err: undoErr }),
        );
      throw err;
    }
  });
}

/**
 * DEL of a VF attachment: only the lease is ours to release; idempotent like IPAM DEL. `ctx`
 * carries the CNI_ARGS to pass on (cmdDel's, without ones the plugin could not use).
 */
export async function delVf(ctx: Context): Promise<void> {
  await vfLock(ctx, async () => {
    await ipamOf(ctx)?.del();
  });
}

export async function checkVf(
  ctx: Context & { conf: NetConf & { deviceID: string } },
  prev: Result,
): Promise<void> {
  const { env, conf } = ctx;
  vfDir(conf);
  const mine = prev.interfaces.find(
    (i) => i.name === env.ifname && (i.sandbox ?? '') === env.netns,
  );
  const failed = (what: string): CniError =>
    new CniError(
      CniCode.CheckFailed,
      `CHECK failed for ${env.containerId}/${env.ifname}: ${what}; DEL and ADD the attachment again`,
    );
  if (!mine) throw failed(`prevResult has no interface ${env.ifname} in ${env.netns}`);
  if (mine.pciID !== undefined && mine.pciID !== conf.deviceID)
    throw failed(`prevResult's pciID ${mine.pciID} differs from deviceID ${conf.deviceID}`);
  await ipamOf(ctx)?.check(prev);
}
