import type { NetConf } from './config';
import { join } from 'node:path';
import type { Logger } from '@flowline/telemetry';
import {
  cachedPluginVersions,
  execPlugin,
  findPlugin,
  negotiate,
  type DelegateEnv,
} from './delegate';
import type { CniEnv } from './env';
import { CniCode, CniError } from './errors';
import { formatResult, parseResult, type Result } from './result';
import { SUPPORTED_VERSIONS, type CniVersion } from './versions';

/**
 * The IPAM plugin named in ipam.type, run through the exec protocol with the complete network
 * config. Speaks the highest version both sides know (Debian's host-local speaks up to 1.0.0),
 * and passes STATUS and GC on only to a plugin that speaks 1.1.0, as the spec defines them there.
 */
export class Ipam {
  private binaryPath: string | undefined;
  private versions: string[] | undefined;

  constructor(
    readonly conf: NetConf & { ipam: { type: string } },
    readonly env: CniEnv,
    private readonly cniArgs: string | undefined,
    private readonly log?: Logger,
  ) {}

  get type(): string {
    return this.conf.ipam.type;
  }

  binary(): string {
    this.binaryPath ??= findPlugin(this.type, this.env.path);
    return this.binaryPath;
  }

  private async supported(): Promise<string[]> {
    this.versions ??= await cachedPluginVersions(
      this.binary(),
      this.env.path,
      this.conf.cniVersion,
      join(this.conf.socketDir, '.cache'),
      this.env.process,
      this.log,
    );
    return this.versions;
  }

  /** The version used with the IPAM plugin; code 1 when it speaks none of ours. */
  async version(): Promise<CniVersion> {
    const theirs = await this.supported();
    const v = negotiate(
      this.conf.cniVersion,
      theirs.filter((x) => (SUPPORTED_VERSIONS as readonly string[]).includes(x)),
      '0.4.0',
    );
    if (!v)
      throw new CniError(
        CniCode.IncompatibleVersion,
        `incompatible CNI version: IPAM plugin ${this.type} supports [${theirs.join(', ')}], none of ${SUPPORTED_VERSIONS.join(', ')} up to ${this.conf.cniVersion}`,
      );
    return v as CniVersion;
  }

  async speaks11(): Promise<boolean> {
    return (await this.supported()).includes('1.1.0');
  }

  private config(version: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
    const c: Record<string, unknown> = { ...this.conf.raw, cniVersion: version, ...extra };
    delete c.cniVersions;
    delete c.prevResult;
    return c;
  }

  private delegateEnv(
    command: DelegateEnv['command'],
    containerId = this.env.containerId,
    ifname = this.env.ifname,
  ): DelegateEnv {
    const d: DelegateEnv = {
      command,
      containerId,
      ifname,
      netns: this.env.netns,
      path: this.env.path,
      inherit: this.env.process,
    };
    if (this.cniArgs !== undefined) d.cniArgs = this.cniArgs;
    return d;
  }

  /** IPAM ADD; a failure (its own, or a result we cannot parse) may follow an allocation: DEL. */
  async add(): Promise<Result> {
    const v = await this.version();
    const out = await execPlugin(this.binary(), this.delegateEnv('ADD'), this.config(v));
    return parseResult(out, `IPAM ${this.type} result`);
  }

  /** Releases the lease of an attachment (this one by default). */
  async del(
    containerId = this.env.containerId,
    ifname = this.env.ifname,
    cniArgs = this.cniArgs,
  ): Promise<void> {
    const v = await this.version();
    const env = this.delegateEnv('DEL', containerId, ifname);
    if (cniArgs === undefined) delete env.cniArgs;
    else env.cniArgs = cniArgs;
    if (containerId !== this.env.containerId) env.netns = '';
    await execPlugin(this.binary(), env, this.config(v));
  }

  async check(prev: Result): Promise<void> {
    const v = await this.version();
    await execPlugin(
      this.binary(),
      this.delegateEnv('CHECK'),
      this.config(v, { prevResult: formatResult(prev, v) }),
    );
  }

  /** STATUS passthrough (1.1.0 IPAMs); for older ones, that the binary is there is all we know. */
  async status(): Promise<void> {
    this.binary();
    if (await this.speaks11())
      await execPlugin(
        this.binary(),
        { command: 'STATUS', path: this.env.path, inherit: this.env.process },
        this.config('1.1.0'),
      );
  }

  /** GC passthrough with the same valid attachments (1.1.0 IPAMs only). Returns whether it ran. */
  async gc(valid: readonly { containerID: string; ifname: string }[]): Promise<boolean> {
    if (!(await this.speaks11())) return false;
    await execPlugin(
      this.binary(),
      { command: 'GC', path: this.env.path, inherit: this.env.process },
      this.config('1.1.0', { 'cni.dev/valid-attachments': valid }),
    );
    return true;
  }
}
