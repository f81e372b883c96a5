/** The gateway's own settings: the `nf:` section of the NF config file. */
import { isAbsolute, dirname, resolve } from 'node:path';
import { z } from 'zod';

export const gatewayConfigSchema = z
  .object({
    /**
     * The protected (inner, clear-text) port by its interface name: what arrives here meets the
     * outbound policies. Default: the pod's first port.
     */
    protectedPort: z.string().min(1).optional(),
    /**
     * The unprotected (outer, tunnel) port: ESP arriving here is decrypted, clear packets meet
     * the inbound policies. Default: the pod's second port.
     */
    unprotectedPort: z.string().min(1).optional(),
    /**
     * The key directory (a mounted Secret: one hex key per file) that SAs name keys from by
     * `key_ref`; relative to the config file's folder. None: keys only inline.
     */
    keyDir: z.string().min(1).optional(),
    /** How often SA lifetimes in seconds are checked, ms. */
    lifetimeCheckMs: z.int().min(100).max(60_000).default(1000),
    /** Packets per rx burst. */
    burst: z.int().min(1).max(256).default(32),
    /** Mbufs in the port pool. */
    poolSize: z.int().min(1024).max(1_048_576).default(8191),
  })
  .strict();

export type GatewayConfig = z.infer<typeof gatewayConfigSchema>;

/** The key directory as a path, a relative one taken from the config file's folder. */
export function keyDirOf(
  config: GatewayConfig,
  configFile: string | undefined,
): string | undefined {
  const dir = config.keyDir;
  if (dir === undefined || isAbsolute(dir)) return dir;
  return resolve(configFile ? dirname(configFile) : process.cwd(), dir);
}
