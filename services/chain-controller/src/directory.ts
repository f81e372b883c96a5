import { ATTACHMENT_EXTERNAL_IDS, podFolderName } from '@flowline/ovs';
import type { Logger } from '@flowline/telemetry';
import { constants } from 'node:fs';
import { lstat, open, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { nfWorkloadOf, type NfWorkload } from './nf-identity';

/** What the controller knows of an NF instance: its gRPC address and its interfaces' OVS ports. */
export interface NfRecord {
  name: string;
  /** host:port or unix:///path of its gRPC server (grpc.health.v1 is watched there). */
  grpcAddress?: string;
  /** interface name → OVS port name */
  interfaces: Record<string, string>;
  /**
   * The workload whose identity the NF's gRPC server must prove (src/nf-identity.ts): derived
   * from the pod's namespace and name (or its StatefulSet), never from the NF's own files.
   */
  workload?: NfWorkload;
}

/** Finds NF instances. Locally: the CNI plugin's attachment files; in a cluster: pods. */
export interface NfDirectory {
  lookup(nf: string): Promise<NfRecord | undefined>;
}

/** A port on the bridge as OVSDB has it: its name and external_ids. */
export interface SwitchPortRecord {
  name: string;
  externalIds: Record<string, string>;
}

/** A namespace or pod name (DNS-1123 subdomain): no "/", no ".." and no leading dot. */
const NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
const IFNAME = /^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,14}$/;
/** An attachment file is a few hundred bytes; a bigger one is not the plugin's. */
const MAX_ATTACHMENT_BYTES = 64 * 1024;
/** How long one read of the bridge's ports serves lookups (a chain's endpoints resolve together). */
const PORTS_TTL_MS = 250;

/**
 * The OVS port an attachment file claims, read without trusting the file: it may be a symlink,
 * a FIFO or anything else the pod put there (O_NOFOLLOW, O_NONBLOCK, regular files of a sane
 * size only). Throws with the reason when it is not a usable attachment file.
 */
async function claimedPort(file: string): Promise<string> {
  const handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new Error('not a regular file');
    if (stat.size > MAX_ATTACHMENT_BYTES)
      throw new Error(`${stat.size} bytes, more than an attachment file has`);
    const content = JSON.parse(await handle.readFile('utf8')) as { ovsPort?: unknown };
    if (typeof content.ovsPort !== 'string') throw new Error('has no ovsPort');
    return content.ovsPort;
  } finally {
    await handle.close();
  }
}

/**
 * Reads the attachment files the CNI plugin writes (contract 2,
 * docs/architecture.md#cni-to-switch-and-pod),
 * `<socketDir>/<namespace>_<pod>/<ifname>.json`, without trusting them: the folder is the
 * pod's, so the pod can write there. A file says which interfaces the pod has; the OVS port
 * of each is the one the switch itself records for it, by the external_ids the CNI plugin
 * set on the port (`k8s-pod-namespace`, `k8s-pod-name`, `cni-ifname`), which the pod cannot
 * change. A file whose `ovsPort` is not that port (another pod's, the uplink, or a port of the
 * pod's other interface) is refused with a warning, and so is the interface. An NF named
 * "<namespace>/<pod>" maps to that folder; a bare name to "default_<name>". gRPC addresses come
 * from a map the local node (or a config file) provides.
 */
export class AttachmentDirectory implements NfDirectory {
  private ports?: { at: number; read: Promise<SwitchPortRecord[]> };
  /** Problems already warned about (one line per problem, not per lookup). */
  private readonly warned = new Set<string>();

  constructor(
    private readonly socketDir: string,
    private readonly switchPorts: () => Promise<SwitchPortRecord[]>,
    private readonly grpcAddresses: () => Record<string, string> = () => ({}),
    private readonly logger?: Logger,
  ) {}

  async lookup(nf: string): Promise<NfRecord | undefined> {
    const [namespace, pod] = nf.includes('/') ? nf.split('/', 2) : ['default', nf];
    if (!namespace || !pod || !NAME.test(namespace) || !NAME.test(pod)) return undefined;
    // The CNI plugin's folder for this pod, hashed when its readable name would not fit.
    const folder = join(
      this.socketDir,
      podFolderName(this.socketDir, { containerId: '', pod: { namespace, name: pod } }),
    );
    let names: string[];
    try {
      if (!(await lstat(folder)).isDirectory()) return undefined;
      names = await readdir(folder);
    } catch {
      return undefined;
    }
    const ids = ATTACHMENT_EXTERNAL_IDS;
    const onSwitch = new Map<string, string>();
    for (const p of await this.bridgePorts())
      if (p.externalIds[ids.podNamespace] === namespace && p.externalIds[ids.podName] === pod) {
        const ifname = p.externalIds[ids.ifname];
        if (ifname) onSwitch.set(ifname, p.name);
      }
    const interfaces: Record<string, string> = {};
    for (const file of names) {
      const ifname = file.endsWith('.json') ? file.slice(0, -5) : '';
      if (!IFNAME.test(ifname)) continue;
      const path = join(folder, file);
      const port = onSwitch.get(ifname);
      let claimed: string;
      try {
        claimed = await claimedPort(path);
      } catch (err) {
        // A file being written (renamed into place atomically) or not the plugin's.
        if (port) this.warn('attachment file unreadable; interface left out', path, err);
        continue;
      }
      if (claimed !== port) {
        this.warn(
          'attachment file refused: its OVS port is not the one the switch records for this interface',
          path,
          undefined,
          { claimed, ...(port ? { onSwitch: port } : { onSwitch: null }) },
        );
        continue;
      }
      interfaces[ifname] = port;
    }
    const addresses = this.grpcAddresses();
    const grpcAddress = addresses[nf] ?? addresses[`${namespace}/${pod}`];
    // A local pod is standalone: its identity is its own namespace and name (nfWorkloadOf).
    const workload = nfWorkloadOf({ metadata: { namespace, name: pod } })!;
    return { name: nf, interfaces, workload, ...(grpcAddress ? { grpcAddress } : {}) };
  }

  private bridgePorts(): Promise<SwitchPortRecord[]> {
    const now = Date.now();
    if (!this.ports || now - this.ports.at > PORTS_TTL_MS) {
      const read = this.switchPorts();
      this.ports = { at: now, read };
      // A failed read is not kept: the next lookup asks again.
      read.catch(() => {
        if (this.ports?.read === read) this.ports = undefined;
      });
    }
    return this.ports.read;
  }

  private warn(msg: string, file: string, err?: unknown, fields: Record<string, unknown> = {}) {
    const error = err === undefined ? undefined : (err as Error).message;
    const key = JSON.stringify([msg, file, error, fields]);
    if (this.warned.has(key)) return;
    if (this.warned.size > 1000) this.warned.clear();
    this.warned.add(key);
    this.logger?.warn(msg, { file, ...fields, ...(error ? { error } : {}) });
  }
}
