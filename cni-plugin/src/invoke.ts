import { createLogger } from '@flowline/telemetry';
import { cmdAdd, cmdCheck, cmdDel, cmdGc, cmdStatus, type Context } from './commands';
import { decodeConfig, parseNetConf } from './config';
import { readEnv } from './env';
import { CniCode, CniError } from './errors';
import { LATEST, SUPPORTED_VERSIONS, compareVersions } from './versions';

export interface Invocation {
  env: NodeJS.ProcessEnv;
  stdin: string;
}

export interface Outcome {
  exitCode: number;
  /** What goes to stdout: the result, the version info, the error JSON, or nothing. */
  stdout: string;
  /** The CNI error code, when it failed. */
  errorCode?: number;
}

/** Runs one CNI invocation (the whole plugin, minus process I/O, so it can be tested in-process). */
export async function invoke({ env, stdin }: Invocation): Promise<Outcome> {
  const log = createLogger('cni-plugin').child({
    command: env.CNI_COMMAND,
    containerId: env.CNI_CONTAINERID,
    ifname: env.CNI_IFNAME,
  });
  let cniVersion: string = LATEST;
  try {
    // The version for error output: the config's, when it has a usable one.
    try {
      const v = (JSON.parse(stdin) as { cniVersion?: unknown }).cniVersion;
      if (typeof v === 'string' && /^\d+\.\d+\.\d+$/.test(v)) cniVersion = v;
    } catch {
      /* decoded (and reported) below */
    }
    const cni = readEnv(env);
    if (cni.command === 'VERSION') {
      return {
        exitCode: 0,
        stdout: JSON.stringify({ cniVersion, supportedVersions: [...SUPPORTED_VERSIONS] }),
      };
    }
    const conf = parseNetConf(decodeConfig(stdin));
    cniVersion = conf.cniVersion;
    if (
      (cni.command === 'STATUS' || cni.command === 'GC') &&
      compareVersions(conf.cniVersion, '1.1.0') < 0
    )
      throw new CniError(
        CniCode.IncompatibleVersion,
        `incompatible CNI version: ${cni.command} needs cniVersion 1.1.0 or later, the configuration has ${conf.cniVersion}`,
      );
    const ctx: Context = { env: cni, conf, cniArgs: env.CNI_ARGS, log };
    switch (cni.command) {
      case 'ADD':
        return { exitCode: 0, stdout: JSON.stringify(await cmdAdd(ctx)) };
      case 'DEL':
        await cmdDel(ctx);
        break;
      case 'CHECK':
        await cmdCheck(ctx);
        break;
      case 'STATUS':
        await cmdStatus(ctx);
        break;
      case 'GC':
        await cmdGc(ctx);
        break;
    }
    return { exitCode: 0, stdout: '' };
  } catch (err) {
    const e =
      err instanceof CniError
        ? err
        : new CniError(
            CniCode.Internal,
            `internal error: ${(err as Error)?.message ?? String(err)}`,
            (err as Error)?.stack,
          );
    log.error('failed', { code: e.code, message: e.message, details: e.details });
    return { exitCode: 1, stdout: JSON.stringify(e.toJSON(cniVersion)), errorCode: e.code };
  }
}
