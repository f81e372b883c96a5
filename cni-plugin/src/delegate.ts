import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { readStateFile, writeStateFile } from '@flowline/state-file';
import type { Logger } from '@flowline/telemetry';
import { CniCode, CniError } from './errors';
import { compareVersions } from './versions';

export interface DelegateEnv {
  command: 'ADD' | 'DEL' | 'CHECK' | 'VERSION' | 'STATUS' | 'GC';
  containerId?: string;
  netns?: string;
  ifname?: string;
  cniArgs?: string;
  path: string[];
  /** The environment the delegate inherits (the runtime's, as given to this plugin). */
  inherit: Readonly<NodeJS.ProcessEnv>;
}

/** Finds an executable plugin in CNI_PATH; code 7 naming the config field when it is not there. */
export function findPlugin(type: string, path: readonly string[], field = 'ipam.type'): string {
  for (const dir of path) {
    const candidate = join(dir, type);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      /* next */
    }
  }
  throw new CniError(
    CniCode.InvalidConfig,
    `invalid network configuration: ${field} "${type}" is not an executable in CNI_PATH (${path.join(':') || 'empty'}); install it there or fix ${field}`,
    undefined,
    { field },
  );
}

/**
 * Runs a delegated plugin by the spec's exec protocol (SPEC section 4): the same environment
 * with CNI_* set for this call, the config on stdin, its stderr passed through to ours, its
 * result (or error JSON) on stdout. A plugin error keeps the plugin's own code.
 */
export function execPlugin(
  binary: string,
  env: DelegateEnv,
  stdin: unknown,
  timeoutMs = 30_000,
): Promise<unknown> {
  const childEnv: NodeJS.ProcessEnv = {
    ...env.inherit,
    CNI_COMMAND: env.command,
    CNI_PATH: env.path.join(':'),
  };
  for (const [k, v] of [
    ['CNI_CONTAINERID', env.containerId],
    ['CNI_NETNS', env.netns],
    ['CNI_IFNAME', env.ifname],
    ['CNI_ARGS', env.cniArgs],
  ] as const) {
    if (v === undefined) delete childEnv[k];
    else childEnv[k] = v;
  }
  return new Promise((resolve, reject) => {
    const child = spawn(binary, [], {
      env: childEnv,
      stdio: ['pipe', 'pipe', 'inherit'],
      timeout: timeoutMs,
    });
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => (out += d));
    child.on('error', (err) =>
      reject(
        new CniError(CniCode.IoFailure, `cannot run ${binary}: ${err.message}`, undefined, {
          binary,
        }),
      ),
    );
    child.on('close', (code, signal) => {
      const text = out.trim();
      let parsed: unknown;
      try {
        parsed = text === '' ? undefined : JSON.parse(text);
      } catch {
        parsed = undefined;
      }
      if (code === 0) {
        if (text !== '' && parsed === undefined)
          return reject(
            new CniError(
              CniCode.DecodeFailure,
              `${binary} ${env.command} printed invalid JSON`,
              text.slice(0, 500),
            ),
          );
        return resolve(parsed);
      }
      const e = parsed as { code?: unknown; msg?: unknown; details?: unknown } | undefined;
      if (e && typeof e.code === 'number')
        return reject(
          new CniError(
            e.code,
            `${binary} ${env.command}: ${String(e.msg ?? '')}`,
            typeof e.details === 'string' ? e.details : undefined,
          ),
        );
      reject(
        new CniError(
          signal ? CniCode.TryAgainLater : CniCode.Internal,
          `${binary} ${env.command} failed (${signal ? `killed by ${signal}, timeout ${timeoutMs} ms` : `exit ${code}`})`,
          text.slice(0, 500) || undefined,
        ),
      );
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(JSON.stringify(stdin));
  });
}

/** Asks a plugin which versions it speaks (CNI_COMMAND=VERSION). */
export async function pluginVersions(
  binary: string,
  path: readonly string[],
  cniVersion: string,
  inherit: Readonly<NodeJS.ProcessEnv>,
): Promise<string[]> {
  const r = (await execPlugin(
    binary,
    { command: 'VERSION', path: [...path], inherit },
    { cniVersion },
  )) as {
    supportedVersions?: unknown;
  };
  return Array.isArray(r?.supportedVersions)
    ? r.supportedVersions.filter((v): v is string => typeof v === 'string')
    : [];
}

/** The version cache's content: binary key → versions; throws on anything else. */
function parseVersionCache(text: string): Record<string, string[]> {
  const v: unknown = JSON.parse(text);
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not a JSON object');
  for (const [k, list] of Object.entries(v))
    if (!Array.isArray(list) || !list.every((x) => typeof x === 'string'))
      throw new Error(`entry ${k} is not a list of versions`);
  return v as Record<string, string[]>;
}

/**
 * pluginVersions, remembered in `<cacheDir>/plugin-versions.json` per binary path, size and
 * mtime: every ADD and DEL needs the IPAM plugin's versions, and asking costs a fork and exec
 * on the pod's critical path. A replaced binary has a new mtime, so it is asked again. The file
 * is written through @flowline/state-file (a unique tmp name per write: concurrent requests in
 * the daemon never share one). The cache is only an optimisation: a garbled file is moved aside
 * (its previous copy used) and logged, and any failure reading or writing it falls back to asking.
 */
export async function cachedPluginVersions(
  binary: string,
  path: readonly string[],
  cniVersion: string,
  cacheDir: string,
  inherit: Readonly<NodeJS.ProcessEnv>,
  log?: Logger,
): Promise<string[]> {
  const file = join(cacheDir, 'plugin-versions.json');
  let key: string;
  try {
    const s = await stat(binary);
    key = `${binary}:${s.size}:${s.mtimeMs}`;
  } catch {
    return pluginVersions(binary, path, cniVersion, inherit);
  }
  let cache: Record<string, string[]> = {};
  try {
    const read = await readStateFile(file, parseVersionCache);
    for (const p of read.problems)
      log?.warn('plugin version cache unreadable', { ...p, using: read.source });
    cache = read.value ?? {};
  } catch (err) {
    log?.warn('plugin version cache unreadable', { file, error: (err as Error).message });
  }
  const hit = cache[key];
  if (hit) return hit;
  const versions = await pluginVersions(binary, path, cniVersion, inherit);
  if (versions.length > 0) {
    // Entries of replaced binaries are dropped.
    const next = Object.fromEntries(
      Object.entries(cache).filter(([k]) => !k.startsWith(`${binary}:`)),
    );
    next[key] = versions;
    await mkdir(cacheDir, { recursive: true })
      .then(() => writeStateFile(file, JSON.stringify(next), { mode: 0o644 }))
      .catch((err: Error) =>
        log?.warn('plugin version cache not written', { file, error: err.message }),
      );
  }
  return versions;
}

/**
 * The version to speak with a delegated plugin: ours when it supports it, else the highest it
 * supports below ours (an older IPAM, like Debian's host-local 1.1, speaks up to 1.0.0).
 */
export function negotiate(
  ours: string,
  theirs: readonly string[],
  minimum = '0.3.0',
): string | undefined {
  if (theirs.includes(ours)) return ours;
  return [...theirs]
    .filter((v) => compareVersions(v, ours) < 0 && compareVersions(v, minimum) >= 0)
    .sort(compareVersions)
    .pop();
}
