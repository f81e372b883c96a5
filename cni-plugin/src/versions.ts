import { CniCode, CniError } from './errors';

/** Versions this plugin speaks, oldest first (VERSION's supportedVersions). */
export const SUPPORTED_VERSIONS = ['0.4.0', '1.0.0', '1.1.0'] as const;
export type CniVersion = (typeof SUPPORTED_VERSIONS)[number];
export const LATEST: CniVersion = '1.1.0';

/** Compares "x.y.z" versions numerically. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

const SEMVER = /^\d+\.\d+\.\d+$/;

/**
 * The version to speak for a config: its cniVersion when given (the runtime already chose),
 * else the highest of its cniVersions list that this plugin supports.
 */
export function selectVersion(cniVersion: unknown, cniVersions: unknown): CniVersion {
  if (cniVersion !== undefined) {
    if (typeof cniVersion !== 'string' || !SEMVER.test(cniVersion))
      throw new CniError(
        CniCode.DecodeFailure,
        `cniVersion ${JSON.stringify(cniVersion)} is not a version like "1.1.0"`,
      );
    if (!(SUPPORTED_VERSIONS as readonly string[]).includes(cniVersion))
      throw new CniError(
        CniCode.IncompatibleVersion,
        `incompatible CNI version: cniVersion ${cniVersion} is not supported; use one of ${SUPPORTED_VERSIONS.join(', ')}`,
      );
    return cniVersion as CniVersion;
  }
  if (cniVersions !== undefined) {
    if (!Array.isArray(cniVersions) || !cniVersions.every((v) => typeof v === 'string'))
      throw new CniError(CniCode.InvalidConfig, 'cniVersions must be a list of version strings');
    const common = SUPPORTED_VERSIONS.filter((v) => cniVersions.includes(v));
    const best = common[common.length - 1];
    if (!best)
      throw new CniError(
        CniCode.IncompatibleVersion,
        `incompatible CNI version: none of cniVersions [${cniVersions.join(', ')}] is supported; use one of ${SUPPORTED_VERSIONS.join(', ')}`,
      );
    return best;
  }
  throw new CniError(
    CniCode.InvalidConfig,
    'cniVersion is missing from the network configuration; set it to "1.1.0"',
  );
}
