import { CniCode, CniError } from './errors';

export type CniCommand = 'ADD' | 'DEL' | 'CHECK' | 'VERSION' | 'STATUS' | 'GC';
const COMMANDS: readonly CniCommand[] = ['ADD', 'DEL', 'CHECK', 'VERSION', 'STATUS', 'GC'];

export interface CniEnv {
  command: CniCommand;
  containerId: string;
  netns: string;
  ifname: string;
  /** CNI_ARGS as key → value. */
  args: Record<string, string>;
  /** CNI_PATH split on ':' (empty entries dropped). */
  path: string[];
  /** Pod identity from CNI_ARGS (K8S_POD_NAMESPACE and K8S_POD_NAME), when both are given. */
  pod?: { namespace: string; name: string };
  /**
   * The whole environment the runtime gave this invocation: what a delegated plugin inherits
   * (in the daemon, the caller's environment, not the daemon's own).
   */
  process: Readonly<NodeJS.ProcessEnv>;
}

const CONTAINER_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const MAX_CONTAINER_ID = 128;
/** Kubernetes namespace: a DNS-1123 label. */
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
/** Kubernetes pod name: a DNS-1123 subdomain (dots between labels, so never "." or ".."). */
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const ARG_KEY = /^[A-Za-z0-9_]+$/;
/** CNI_ARGS keys this plugin reads; others are refused unless IgnoreUnknown=1 (CONVENTIONS.md). */
const KNOWN_ARGS = new Set([
  'IgnoreUnknown',
  'K8S_POD_NAMESPACE',
  'K8S_POD_NAME',
  'K8S_POD_INFRA_CONTAINER_ID',
  'K8S_POD_UID',
]);

const invalid = (variable: string, why: string): CniError =>
  new CniError(
    CniCode.InvalidEnvironment,
    `invalid environment variable ${variable}: ${why}`,
    undefined,
    { variable },
  );

/** Parses CNI_ARGS ("K=V;K2=V2"), validating keys and the pod identity values. */
export function parseCniArgs(raw: string | undefined): {
  args: Record<string, string>;
  pod?: CniEnv['pod'];
} {
  const args: Record<string, string> = {};
  if (raw !== undefined && raw !== '') {
    for (const pair of raw.split(';')) {
      if (pair === '') continue;
      const eq = pair.indexOf('=');
      if (eq <= 0) throw invalid('CNI_ARGS', `"${pair}" is not KEY=VALUE; use "K1=V1;K2=V2"`);
      const key = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      if (!ARG_KEY.test(key))
        throw invalid('CNI_ARGS', `key "${key}" must be alphanumeric (and _)`);
      if (key in args) throw invalid('CNI_ARGS', `key ${key} is given twice`);
      args[key] = value;
    }
  }
  const ignoreUnknown = ['1', 'true'].includes((args.IgnoreUnknown ?? '').toLowerCase());
  const unknown = Object.keys(args).filter((k) => !KNOWN_ARGS.has(k));
  if (unknown.length > 0 && !ignoreUnknown)
    throw invalid(
      'CNI_ARGS',
      `unknown keys ${unknown.join(', ')}; add IgnoreUnknown=1 to ignore them`,
    );
  const ns = args.K8S_POD_NAMESPACE;
  const name = args.K8S_POD_NAME;
  if ((ns === undefined) !== (name === undefined))
    throw invalid('CNI_ARGS', 'K8S_POD_NAMESPACE and K8S_POD_NAME must be given together');
  if (ns === undefined || name === undefined) return { args };
  if (ns.length > 63 || !DNS_LABEL.test(ns))
    throw invalid(
      'CNI_ARGS',
      `K8S_POD_NAMESPACE "${ns}" is not a DNS-1123 label (a-z, 0-9, "-", at most 63)`,
    );
  if (name.length > 253 || !DNS_SUBDOMAIN.test(name))
    throw invalid(
      'CNI_ARGS',
      `K8S_POD_NAME "${name}" is not a DNS-1123 subdomain (a-z, 0-9, "-", ".", at most 253)`,
    );
  return { args, pod: { namespace: ns, name } };
}

/** Why `ifname` is not an interface name Linux (IFNAMSIZ) and a file name accept; undefined if it is. */
export function ifnameProblem(ifname: string): string | undefined {
  if (ifname === '') return 'is empty';
  if (Buffer.byteLength(ifname) > 15) return `"${ifname}" is longer than 15 bytes`;
  if (ifname === '.' || ifname === '..' || /[/:\s%]/.test(ifname))
    return `"${ifname}" must not be "." or ".." or contain "/", ":", "%" or whitespace`;
  return undefined;
}

/** Validates an interface name as Linux does (IFNAMSIZ) and as a file name. */
export function validateIfname(ifname: string, variable = 'CNI_IFNAME'): void {
  const problem = ifnameProblem(ifname);
  if (problem) throw invalid(variable, problem);
}

/** Why `id` is not a container ID this plugin accepts; undefined if it is. */
export function containerIdProblem(id: string): string | undefined {
  if (id === '') return 'is empty';
  if (id.length > MAX_CONTAINER_ID) return `is longer than ${MAX_CONTAINER_ID} characters`;
  if (!CONTAINER_ID.test(id))
    return `"${id}" must start with a letter or digit, followed by letters, digits, "_", "." or "-"`;
  return undefined;
}

export function validateContainerId(id: string, variable = 'CNI_CONTAINERID'): void {
  const problem = containerIdProblem(id);
  if (problem) throw invalid(variable, problem);
}

/** Whether namespace and name are a Kubernetes pod identity (as CNI_ARGS must carry it). */
export function isPodIdentity(namespace: string, name: string): boolean {
  return (
    namespace.length <= 63 &&
    DNS_LABEL.test(namespace) &&
    name.length <= 253 &&
    DNS_SUBDOMAIN.test(name)
  );
}

/** Reads and validates the CNI_* variables that `command` requires (SPEC section 2). */
export function readEnv(env: NodeJS.ProcessEnv): CniEnv {
  const command = env.CNI_COMMAND;
  if (!command) throw invalid('CNI_COMMAND', `is not set; use one of ${COMMANDS.join(', ')}`);
  if (!(COMMANDS as readonly string[]).includes(command))
    throw invalid('CNI_COMMAND', `"${command}" is not one of ${COMMANDS.join(', ')}`);
  const cmd = command as CniCommand;
  const out: CniEnv = {
    command: cmd,
    containerId: env.CNI_CONTAINERID ?? '',
    netns: env.CNI_NETNS ?? '',
    ifname: env.CNI_IFNAME ?? '',
    args: {},
    path: (env.CNI_PATH ?? '').split(':').filter((p) => p !== ''),
    process: env,
  };
  if (cmd === 'VERSION') return out;
  if (cmd === 'ADD' || cmd === 'DEL' || cmd === 'CHECK') {
    if (env.CNI_CONTAINERID === undefined) throw invalid('CNI_CONTAINERID', 'is not set');
    validateContainerId(out.containerId);
    if (env.CNI_IFNAME === undefined) throw invalid('CNI_IFNAME', 'is not set');
    validateIfname(out.ifname);
    if (cmd !== 'DEL') {
      if (!out.netns) throw invalid('CNI_NETNS', 'is not set');
      if (!out.netns.startsWith('/'))
        throw invalid('CNI_NETNS', `"${out.netns}" is not an absolute path`);
    }
    const parsed = parseCniArgs(env.CNI_ARGS);
    out.args = parsed.args;
    if (parsed.pod) out.pod = parsed.pod;
  }
  if (cmd === 'GC' && out.path.length === 0)
    throw invalid('CNI_PATH', 'is not set (GC requires it)');
  return out;
}
