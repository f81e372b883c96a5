import { join } from 'node:path';
import type { Logger } from '@flowline/telemetry';
import type { NetConf } from './config';
import type { CniEnv } from './env';
import { Ipam } from './ipam';
import type { Result } from './result';

/** One invocation: its environment, its validated config, and where it logs. */
export interface Context {
  env: CniEnv;
  conf: NetConf;
  /** CNI_ARGS exactly as received (passed on to the IPAM plugin). */
  cniArgs: string | undefined;
  log: Logger;
}

/** Per-pod lock files live in socketDir, which every node-local invocation shares. */
export const lockDir = (conf: NetConf): string => join(conf.socketDir, '.locks');

/** The delegated IPAM plugin, when the config has an ipam section. */
export function ipamOf(ctx: Context): Ipam | undefined {
  const { conf } = ctx;
  return conf.ipam
    ? new Ipam(conf as NetConf & { ipam: { type: string } }, ctx.env, ctx.cniArgs, ctx.log)
    : undefined;
}

export const EMPTY_RESULT: Result = { interfaces: [], ips: [], routes: [], dns: {} };
