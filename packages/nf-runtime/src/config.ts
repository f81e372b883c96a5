import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import {
  TRANSPORT_FLAGS,
  TRANSPORT_SETTINGS,
  type TlsFiles,
  type TransportKey,
  type TransportOrigins,
  type TransportProblem,
  type TransportSecurity,
  TransportSettingsError,
  type TransportValues,
  readTransportValues,
  transportSettings,
} from '@flowline/grpc-auth';
import { z } from 'zod';
import { ConfigError, type ConfigSource } from './errors';
import { RX_MODES } from './rx-mode';

/**
 * DPDK's RTE_MAX_LCORE (rte_build_config.h of the DPDK 22.11 build @flowline/dpdk links):
 * lcore ids run 0..127, and the EAL refuses any other.
 */
export const RTE_MAX_LCORE = 128;

/** The highest TCP port. */
const TCP_PORT_MAX = 65535;

/**
 * What is wrong with an lcore list like "0,1" or "0-2,4" beyond its shape: a core at or past
 * RTE_MAX_LCORE, or a range that runs backwards (so expanding it stays within RTE_MAX_LCORE
 * cores a part). Undefined when it is fine; parts of the wrong shape are the pattern's to name.
 */
export function lcoreListProblem(list: string): string | undefined {
  for (const part of list.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) continue;
    const from = m[1] ?? '';
    const to = m[2] ?? from;
    const beyond = [from, to].find((digits) => Number(digits) >= RTE_MAX_LCORE);
    if (beyond !== undefined)
      return `core ${beyond} is past DPDK's limit: lcores are 0..${RTE_MAX_LCORE - 1} (RTE_MAX_LCORE ${RTE_MAX_LCORE})`;
    if (Number(to) < Number(from)) return `range "${part.trim()}" runs backwards`;
  }
  return undefined;
}

/** Whether the port of a host:port or [ipv6]:port is a TCP port (unix: addresses have none). */
function tcpPortInRange(address: string): boolean {
  if (address.startsWith('unix:')) return true;
  const m = /:(\d+)$/.exec(address);
  return !m || Number(m[1]) <= TCP_PORT_MAX;
}
const PORT_RANGE = `the port must be 0..${TCP_PORT_MAX}`;

/** An explicit port for a plain-process run (tests, the local node): a name and DPDK devargs. */
export const portSpecSchema = z.object({
  name: z.string().regex(/^[A-Za-z0-9_.-]{1,15}$/, 'must be 1-15 characters of [A-Za-z0-9_.-]'),
  devargs: z.string().min(1),
});

/** Settings every NF shares. The NF's own settings live under `nf`, validated by its schema. */
export const runtimeConfigSchema = z.object({
  name: z.string().regex(/^[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?$/, 'must be a DNS-1123 name'),
  grpcAddress: z
    .string()
    .regex(
      /^(unix:\/\/?\/.+|unix:[^/].*|[^\s:]+:\d{1,5}|\[[0-9a-fA-F:]+\]:\d{1,5})$/,
      'must be host:port, [ipv6]:port or unix:///path',
    )
    .refine(tcpPortInRange, PORT_RANGE),
  metricsPort: z.union([z.int().min(0).max(65535), z.literal(false)]),
  /**
   * Mutual TLS for the gRPC API (@flowline/grpc-auth): the CA and this instance's certificate,
   * whose SPIFFE ID is spiffe://<trustDomain>/ns/<namespace>/nf/<name>. Re-read from disk, so a
   * replaced Secret rotates without a restart. All three or none, and not with insecure:
   * @flowline/grpc-auth's transportSettings checks these four fields after this schema.
   */
  tls: z
    .object({ caFile: z.string().min(1), certFile: z.string().min(1), keyFile: z.string().min(1) })
    .partial()
    .optional(),
  /** Plaintext gRPC, only when set explicitly (and then logged as a warning). */
  insecure: z.boolean(),
  /** The SPIFFE trust domain (a DNS name). */
  trustDomain: z.string(),
  /** A plaintext listener serving only grpc.health.v1 (kubelet's gRPC probes carry no certificate). */
  healthAddress: z.string().refine(tcpPortInRange, PORT_RANGE).optional(),
  podDir: z.string().optional(),
  drainTimeoutMs: z.int().min(0).max(600_000),
  /** How workers wait for packets: poll, adaptive (default) or interrupt (see rx-mode.ts). */
  rxMode: z.enum(RX_MODES),
  /**
   * Descriptors of each virtio-user ring (queue_size): room for the traffic that arrives while
   * the worker is off its core. A power of two, 256..4096; default 1024.
   */
  virtioQueueSize: z
    .int()
    .min(256)
    .max(4096)
    .refine((n) => (n & (n - 1)) === 0, 'must be a power of two'),
  eal: z.object({
    /** lcores for the EAL: the first is main (control), the rest run pipeline workers. */
    lcores: z
      .string()
      .regex(/^\d+(-\d+)?(,\d+(-\d+)?)*$/, 'must be a list like "0,1" or "0-2"')
      .superRefine((list, ctx) => {
        const problem = lcoreListProblem(list);
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
      }),
    hugeDir: z.string().optional(),
    memoryMb: z.int().min(16).max(65536),
    noHuge: z.boolean(),
    filePrefix: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1-64 characters of [A-Za-z0-9_-]'),
    inMemory: z.boolean(),
    extraArgs: z.array(z.string()),
  }),
  /** Ports named explicitly (plain-process runs); pods get theirs from the pod dir and env. */
  ports: z.array(portSpecSchema),
});

/** The runtime's settings once checked: the TLS files, when given, are all three. */
export type RuntimeConfig = Omit<z.infer<typeof runtimeConfigSchema>, 'tls'> & { tls?: TlsFiles };
export type PortSpec = z.infer<typeof portSpecSchema>;

export interface LoadedConfig<Nf> {
  runtime: RuntimeConfig;
  nf: Nf;
  /** Which source set each runtime field (dotted leaf paths), for the startup log. */
  sources: Record<string, ConfigSource>;
  configFile?: string;
}

export interface LoadConfigInput<Nf> {
  /** NF kind, e.g. "firewall": the default name prefix and the log component. */
  kind: string;
  /** Schema of the NF's own section (`nf:` in the file). */
  nfSchema: z.ZodType<Nf>;
  argv?: string[];
  env?: NodeJS.ProcessEnv;
  /** Reads the config file; a seam for tests. */
  readFile?: (path: string) => string;
}

const FLAG_OPTIONS = {
  config: { type: 'string' },
  name: { type: 'string' },
  'grpc-address': { type: 'string' },
  'metrics-port': { type: 'string' },
  'pod-dir': { type: 'string' },
  'drain-timeout-ms': { type: 'string' },
  'rx-mode': { type: 'string' },
  'virtio-queue-size': { type: 'string' },
  lcores: { type: 'string' },
  'huge-dir': { type: 'string' },
  'memory-mb': { type: 'string' },
  'no-huge': { type: 'boolean' },
  'in-memory': { type: 'boolean' },
  'file-prefix': { type: 'string' },
  ...TRANSPORT_FLAGS,
  port: { type: 'string', multiple: true },
  help: { type: 'boolean' },
} as const;

export const CONFIG_HELP = `Runtime options (flag / environment variable / config file key):
  --config <file>          FLOWLINE_CONFIG             JSON or YAML file; NF settings under "nf"
  --name <name>            FLOWLINE_NF_NAME, POD_NAME  instance name (default <kind>-<host>)
  --grpc-address <addr>    FLOWLINE_GRPC_ADDRESS       grpcAddress (default 0.0.0.0:50051)
  --metrics-port <port>    FLOWLINE_METRICS_PORT       metricsPort (default 9464; "off" disables)
  --pod-dir <dir>          FLOWLINE_POD_DIR            podDir: <ifname>.json files from the CNI plugin
  --drain-timeout-ms <ms>  FLOWLINE_DRAIN_TIMEOUT_MS   drainTimeoutMs (default 5000)
  --rx-mode <mode>         FLOWLINE_RX_MODE            rxMode: poll, adaptive (default), interrupt
  --virtio-queue-size <n>  FLOWLINE_VIRTIO_QUEUE_SIZE  virtioQueueSize: ring descriptors (1024)
  --lcores <list>          FLOWLINE_LCORES             eal.lcores (default "0,1")
  --huge-dir <dir>         FLOWLINE_HUGEPAGES_DIR      eal.hugeDir
  --memory-mb <mb>         FLOWLINE_HUGEPAGES_MB       eal.memoryMb (default 256)
  --no-huge                FLOWLINE_NO_HUGE=1          eal.noHuge (tests only)
  --in-memory              FLOWLINE_IN_MEMORY=0/1      eal.inMemory: no hugepage files (default on)
  --file-prefix <p>        FLOWLINE_FILE_PREFIX        eal.filePrefix (default the name)
  --tls-ca <file>          FLOWLINE_TLS_CA             tls.caFile: the CA that signs peers' certificates
  --tls-cert <file>        FLOWLINE_TLS_CERT           tls.certFile: this NF's certificate (SPIFFE ID)
  --tls-key <file>         FLOWLINE_TLS_KEY            tls.keyFile: its private key
  --insecure               FLOWLINE_INSECURE=1         insecure: plaintext gRPC (warned at start)
  --trust-domain <d>       FLOWLINE_TRUST_DOMAIN       trustDomain (default flowline)
  --health-address <addr>  FLOWLINE_HEALTH_ADDRESS     healthAddress: plaintext grpc.health.v1 only
  --port name=<n>,devargs=<d>                          ports: an explicit port (repeatable)`;

function parseInteger(raw: string, field: string, source: ConfigSource, origin: string): number {
  if (!/^-?\d+$/.test(raw.trim()))
    throw new ConfigError(field, source, `"${raw}" is not an integer`, origin);
  return Number(raw);
}

function parseBool(raw: string, field: string, origin: string): boolean {
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off|)$/i.test(raw)) return false;
  throw new ConfigError(field, 'env', `"${raw}" is not a boolean (1/0, true/false)`, origin);
}

/** "name=net1,devargs=net_ring_r0,extra=x" — devargs takes the rest of the string after its key. */
function parsePortFlag(raw: string): PortSpec {
  const match = /^name=([^,]+),devargs=(.+)$/.exec(raw);
  if (!match)
    throw new ConfigError(
      'ports',
      'flag',
      `"${raw}" must look like name=<ifname>,devargs=<devargs>`,
      '--port',
    );
  return { name: match[1]!, devargs: match[2]! };
}

type Layer = Record<string, unknown>;

/**
 * A runtime setting reachable from the environment and a flag; `kind` says how to parse it. The
 * transport settings (TLS files, insecure, trust domain, health address) are @flowline/grpc-auth's
 * table and reader, not these.
 */
interface Setting {
  path: string;
  env: string[];
  flag: Exclude<
    keyof typeof FLAG_OPTIONS,
    'config' | 'port' | 'help' | keyof typeof TRANSPORT_FLAGS
  >;
  kind: 'string' | 'int' | 'bool' | 'port';
}

/** Where each transport setting lives in the runtime config. */
const TRANSPORT_PATHS: Record<TransportKey, string> = {
  caFile: 'tls.caFile',
  certFile: 'tls.certFile',
  keyFile: 'tls.keyFile',
  insecure: 'insecure',
  trustDomain: 'trustDomain',
  healthAddress: 'healthAddress',
};

/** The runtime's wording for three transport rules (after the field and its origin). */
const TRANSPORT_REASONS: Partial<Record<TransportProblem, string>> = {
  'trust-domain': 'must be a DNS name (the SPIFFE trust domain)',
  'health-address': 'must be host:port or [ipv6]:port',
  conflict: 'tls and insecure exclude each other: give the certificate files or insecure, not both',
};

const SETTINGS: Setting[] = [
  { path: 'name', env: ['FLOWLINE_NF_NAME', 'POD_NAME'], flag: 'name', kind: 'string' },
  { path: 'grpcAddress', env: ['FLOWLINE_GRPC_ADDRESS'], flag: 'grpc-address', kind: 'string' },
  { path: 'metricsPort', env: ['FLOWLINE_METRICS_PORT'], flag: 'metrics-port', kind: 'port' },
  { path: 'podDir', env: ['FLOWLINE_POD_DIR'], flag: 'pod-dir', kind: 'string' },
  {
    path: 'drainTimeoutMs',
    env: ['FLOWLINE_DRAIN_TIMEOUT_MS'],
    flag: 'drain-timeout-ms',
    kind: 'int',
  },
  { path: 'rxMode', env: ['FLOWLINE_RX_MODE'], flag: 'rx-mode', kind: 'string' },
  {
    path: 'virtioQueueSize',
    env: ['FLOWLINE_VIRTIO_QUEUE_SIZE'],
    flag: 'virtio-queue-size',
    kind: 'int',
  },
  { path: 'eal.lcores', env: ['FLOWLINE_LCORES'], flag: 'lcores', kind: 'string' },
  { path: 'eal.hugeDir', env: ['FLOWLINE_HUGEPAGES_DIR'], flag: 'huge-dir', kind: 'string' },
  { path: 'eal.memoryMb', env: ['FLOWLINE_HUGEPAGES_MB'], flag: 'memory-mb', kind: 'int' },
  { path: 'eal.noHuge', env: ['FLOWLINE_NO_HUGE'], flag: 'no-huge', kind: 'bool' },
  { path: 'eal.inMemory', env: ['FLOWLINE_IN_MEMORY'], flag: 'in-memory', kind: 'bool' },
  { path: 'eal.filePrefix', env: ['FLOWLINE_FILE_PREFIX'], flag: 'file-prefix', kind: 'string' },
];

function convert(setting: Setting, raw: string, source: ConfigSource, origin: string): unknown {
  switch (setting.kind) {
    case 'string':
      return raw;
    case 'int':
      return parseInteger(raw, setting.path, source, origin);
    case 'bool':
      return parseBool(raw, setting.path, origin);
    case 'port':
      return raw === 'off' ? false : parseInteger(raw, setting.path, source, origin);
  }
}

function setPath(target: Layer, path: string, value: unknown): void {
  const keys = path.split('.');
  let node = target;
  for (const key of keys.slice(0, -1)) {
    node = (node[key] ??= {}) as Layer;
  }
  node[keys[keys.length - 1]!] = value;
}

function merge(base: Layer, over: Layer): Layer {
  const out: Layer = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) continue;
    const prev = out[k];
    out[k] =
      v &&
      typeof v === 'object' &&
      !Array.isArray(v) &&
      prev &&
      typeof prev === 'object' &&
      !Array.isArray(prev)
        ? merge(prev as Layer, v as Layer)
        : v;
  }
  return out;
}

/** zod's first issue as a ConfigError naming the dotted field and the source that set it. */
function toConfigError(
  issue: z.core.$ZodIssue,
  prefix: string,
  originOf: (field: string) => string | undefined,
): ConfigError {
  const field = [prefix, ...issue.path.map(String)].filter(Boolean).join('.');
  const origin = originOf(field);
  return new ConfigError(field || '(root)', origin ? 'file' : 'default', issue.message, origin);
}

/**
 * Loads an NF's configuration: defaults, then the config file, then FLOWLINE_* environment
 * variables, then command-line flags, each overriding the one before. Every value is validated;
 * the first bad one throws a ConfigError naming the field and where it came from.
 */
export function loadConfig<Nf>(input: LoadConfigInput<Nf>): LoadedConfig<Nf> {
  const env = input.env ?? process.env;
  const readFile = input.readFile ?? ((p: string) => readFileSync(p, 'utf8'));
  let flags: ReturnType<
    typeof parseArgs<{ options: typeof FLAG_OPTIONS; strict: true; allowPositionals: false }>
  >['values'];
  try {
    flags = parseArgs({
      args: input.argv ?? [],
      options: FLAG_OPTIONS,
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (err) {
    throw new ConfigError('argv', 'flag', `${(err as Error).message}\n${CONFIG_HELP}`);
  }

  const origins = new Map<string, string>();
  const track = (layer: Layer, path: string, value: unknown, origin: string): void => {
    if (value === undefined) return;
    setPath(layer, path, value);
    origins.set(path, origin);
  };

  const fallbackName = `${input.kind}-${hostname()}`
    .toLowerCase()
    .replace(/[^a-z0-9.-]/g, '-')
    .slice(0, 63);
  const defaults: Layer = {
    name: fallbackName,
    grpcAddress: '0.0.0.0:50051',
    metricsPort: 9464,
    insecure: false,
    trustDomain: 'flowline',
    drainTimeoutMs: 5000,
    rxMode: 'adaptive',
    virtioQueueSize: 1024,
    eal: { lcores: '0,1', memoryMb: 256, noHuge: false, inMemory: true, extraArgs: [] },
    ports: [],
  };

  // The file.
  const configFile = flags.config ?? (env.FLOWLINE_CONFIG || undefined);
  let fileLayer: Layer = {};
  let nfRaw: unknown = {};
  if (configFile) {
    let text: string;
    try {
      text = readFile(configFile);
    } catch (err) {
      throw new ConfigError(
        'config',
        flags.config ? 'flag' : 'env',
        `cannot read ${configFile}: ${(err as Error).message}`,
      );
    }
    let parsed: unknown;
    try {
      parsed = configFile.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
    } catch (err) {
      throw new ConfigError(
        'config',
        'file',
        `${configFile} is not valid ${configFile.endsWith('.json') ? 'JSON' : 'YAML'}: ${(err as Error).message}`,
      );
    }
    if (parsed === null || parsed === undefined) parsed = {};
    if (typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw new ConfigError('config', 'file', `${configFile} must hold a mapping at its top level`);
    }
    const { nf, ...runtime } = parsed as Layer;
    fileLayer = runtime;
    nfRaw = nf ?? {};
    const walk = (obj: Layer, prefix: string): void => {
      for (const [k, v] of Object.entries(obj)) {
        const path = prefix ? `${prefix}.${k}` : k;
        origins.set(path, configFile);
        if (v && typeof v === 'object' && !Array.isArray(v)) walk(v as Layer, path);
      }
    };
    walk(fileLayer, '');
  }

  // The environment, then the flags: one table says which variable and flag set which field.
  const envLayer: Layer = {};
  const flagLayer: Layer = {};
  for (const setting of SETTINGS) {
    const envName = setting.env.find((n) => env[n] !== undefined && env[n] !== '');
    if (envName !== undefined) {
      track(envLayer, setting.path, convert(setting, env[envName]!, 'env', envName), envName);
    }
    const flagValue = flags[setting.flag];
    if (flagValue !== undefined) {
      const flagName = `--${setting.flag}`;
      track(
        flagLayer,
        setting.path,
        typeof flagValue === 'boolean' ? flagValue : convert(setting, flagValue, 'flag', flagName),
        flagName,
      );
    }
  }
  if (flags.port) track(flagLayer, 'ports', flags.port.map(parsePortFlag), '--port');
  // The transport settings: @flowline/grpc-auth reads them (a flag over its variable), and
  // checks them with the rest below; its errors become ConfigErrors naming the runtime's field.
  const transportError = (err: unknown): unknown =>
    err instanceof TransportSettingsError
      ? new ConfigError(
          TRANSPORT_PATHS[err.setting.key],
          sourceOf(err.origin),
          TRANSPORT_REASONS[err.problem] ?? err.reason,
          err.origin,
        )
      : err;
  let transport: ReturnType<typeof readTransportValues>;
  try {
    transport = readTransportValues(flags, env);
  } catch (err) {
    throw transportError(err);
  }
  for (const { key } of TRANSPORT_SETTINGS) {
    const origin = transport.origins[key];
    if (origin === undefined) continue;
    const layer = origin.startsWith('--') ? flagLayer : envLayer;
    track(layer, TRANSPORT_PATHS[key], transport.values[key], origin);
  }

  const merged = merge(merge(merge(defaults, fileLayer), envLayer), flagLayer);
  // The file prefix follows the instance name unless set: two NFs on one host must not share one.
  const eal = merged.eal as Layer;
  if (eal.filePrefix === undefined)
    eal.filePrefix = String(merged.name)
      .replace(/[^A-Za-z0-9_-]/g, '_')
      .slice(0, 64);

  const originOf = (field: string): string | undefined => {
    for (let f = field; f; f = f.includes('.') ? f.slice(0, f.lastIndexOf('.')) : '') {
      const o = origins.get(f);
      if (o) return o;
    }
    return undefined;
  };
  const parsed = runtimeConfigSchema.safeParse(merged);
  if (!parsed.success) throw toConfigError(parsed.error.issues[0]!, '', originOf);
  const { tls, ...rest } = parsed.data;
  const values: TransportValues = {
    ...tls,
    insecure: rest.insecure,
    trustDomain: rest.trustDomain,
    healthAddress: rest.healthAddress,
  };
  const transportOrigins: TransportOrigins = {};
  for (const { key } of TRANSPORT_SETTINGS) transportOrigins[key] = originOf(TRANSPORT_PATHS[key]);
  let security: TransportSecurity | undefined;
  try {
    ({ security } = transportSettings(values, transportOrigins));
  } catch (err) {
    throw transportError(err);
  }
  const runtime: RuntimeConfig = {
    ...rest,
    ...(security && !security.insecure
      ? { tls: { caFile: security.caFile, certFile: security.certFile, keyFile: security.keyFile } }
      : {}),
  };
  const nf = input.nfSchema.safeParse(nfRaw);
  if (!nf.success) {
    const issue = nf.error.issues[0]!;
    const field = ['nf', ...issue.path.map(String)].join('.');
    throw new ConfigError(field, 'file', issue.message, configFile);
  }

  // Per leaf field (eal.memoryMb, ...): where its value came from, for the startup log.
  const sources: Record<string, ConfigSource> = {};
  function sourceOf(origin: string | undefined): ConfigSource {
    return !origin
      ? 'default'
      : origin.startsWith('--')
        ? 'flag'
        : origin === configFile
          ? 'file'
          : 'env';
  }
  const leaves = (obj: Layer, prefix: string): void => {
    for (const [k, v] of Object.entries(obj)) {
      const path = prefix ? `${prefix}.${k}` : k;
      if (v && typeof v === 'object' && !Array.isArray(v)) {
        leaves(v as Layer, path);
        continue;
      }
      sources[path] = sourceOf(origins.get(path));
    }
  };
  leaves(runtime as Layer, '');
  return { runtime, nf: nf.data, sources, ...(configFile ? { configFile } : {}) };
}

/**
 * How the NF's gRPC API is secured: mutual TLS from `tls`, or plaintext when `insecure` is set.
 * With neither, the NF refuses to start, naming the settings.
 */
export function transportSecurityOf(runtime: RuntimeConfig): TransportSecurity {
  if (runtime.tls) return { ...runtime.tls };
  if (runtime.insecure) return { insecure: true };
  throw new ConfigError(
    'tls',
    'default',
    'the gRPC API is mutual TLS: give tls.caFile, tls.certFile and tls.keyFile (--tls-ca, --tls-cert, --tls-key or FLOWLINE_TLS_CA/CERT/KEY), or insecure: true (--insecure, FLOWLINE_INSECURE=1) to serve it in plaintext',
  );
}
