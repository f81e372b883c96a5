import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';

/** What the controller knows of an NF instance: its gRPC address and its interfaces' OVS ports. */
export interface NfRecord {
  name: string;
  /** host:port or unix:///path of its gRPC server (grpc.health.v1 is watched there). */
  grpcAddress?: string;
  /** interface name → OVS port name */
  interfaces: Record<string, string>;
}

/** Finds NF instances. Locally: the CNI plugin's attachment files; in a cluster: pods. */
export interface NfDirectory {
  lookup(nf: string): Promise<NfRecord | undefined>;
}

/**
 * Reads the attachment files the CNI plugin writes (contract 2):
 * `<socketDir>/<namespace>_<pod>/<ifname>.json` holds the interface's `ovsPort`. An NF named
 * "<namespace>/<pod>" maps to that folder; a bare name to "default_<name>". gRPC addresses come
 * from a map the local node (or a config file) provides.
 */
export class AttachmentDirectory implements NfDirectory {
  constructor(
    private readonly socketDir: string,
    private readonly grpcAddresses: () => Record<string, string> = () => ({}),
  ) {}

  async lookup(nf: string): Promise<NfRecord | undefined> {
    const [namespace, pod] = nf.includes('/') ? nf.split('/', 2) : ['default', nf];
    const folder = join(this.socketDir, `${namespace}_${pod}`);
    let names: string[];
    try {
      names = await readdir(folder);
    } catch {
      return undefined;
    }
    const interfaces: Record<string, string> = {};
    for (const file of names.filter((n) => n.endsWith('.json'))) {
      try {
        const content = JSON.parse(await readFile(join(folder, file), 'utf8')) as {
          ovsPort?: unknown;
        };
        if (typeof content.ovsPort === 'string') interfaces[file.slice(0, -5)] = content.ovsPort;
      } catch {
        // a file being written (renamed into place atomically) or not ours: skip it
      }
    }
    const addresses = this.grpcAddresses();
    const grpcAddress = addresses[nf] ?? addresses[`${namespace}/${pod}`];
    return { name: nf, interfaces, ...(grpcAddress ? { grpcAddress } : {}) };
  }
}
