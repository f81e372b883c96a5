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
  /** K8S_POD_NAME without a namespace (podman's container name): for logs only. */
  runtimeName?: string;
  /**
   * DEL only: why CNI_ARGS (or CNI_CONTAINERID / CNI_IFNAME) could not be used. DEL never
   * refuses for them: it cleans up what the plugin's own records and the container ID name.
   */
  ignored?: string;
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
/** Keys whose value names the pod folder: never ambiguous. */
const POD_KEYS = new Set(['K8S_POD_NAMESPACE', 'K8S_POD_NAME']);
/** A container name as podman allows it (kept for logs only). */
const RUNTIME_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,252}$/;

const invalid = (variable: string, why: string): CniError =>
  new CniError(
    CniCode.InvalidEnvironment,
    `invalid environment variable ${variable}: ${why}`,
    undefined,
    { variable },
  );

/** What parseCniArgs made of CNI_ARGS. */
export interface ParsedArgs {
  args: Record<string, string>;
  pod?: CniEnv['pod'];
  /**
   * K8S_POD_NAME given without K8S_POD_NAMESPACE (podman names the container so): kept for logs,
   * never part of a path.
   */
  runtimeName?: string;
}

/**
 * Parses CNI_ARGS ("K=V;K2=V2") as real runtimes send it (README "Runtimes"):
 * - containerd (go-cni) sends IgnoreUnknown=1 and the four K8S_POD_* keys in any order;
 * - CRI-O (ocicni) the same in a fixed order, sometimes with IP=;
 * - podman's CNI backend IgnoreUnknown=1;K8S_POD_NAME=<container name>, no namespace (plus
 *   IP= and MAC= for static addresses);
 * - Multus IgnoreUnknown=true and the four keys (empty when it has none), then the runtime's own
 *   CNI_ARGS again, so every key may come twice.
 * A pod identity needs both K8S_POD_NAMESPACE and K8S_POD_NAME non-empty, and then both must be
 * Kubernetes names: they name a folder. A key repeated with the same value is one key; the pod
 * keys repeated with different values are ambiguous and refused. Unknown keys need
 * IgnoreUnknown (CONVENTIONS.md), which Go's libcni reads as 1 or true in any case.
 */
export function parseCniArgs(raw: string | undefined): ParsedArgs {
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
      const before = args[key];
      if (before !== undefined && before !== value && before !== '' && value !== '') {
        if (POD_KEYS.has(key))
          throw invalid(
            'CNI_ARGS',
            `key ${key} is given twice with different values ("${before}", "${value}")`,
          );
      }
      // A later empty value does not erase an earlier one (Multus fills empty keys this way).
      if (before === undefined || value !== '') args[key] = value;
    }
  }
  const ignoreUnknown = ['1', 'true'].includes((args.IgnoreUnknown ?? '').toLowerCase());
  const unknown = Object.keys(args).filter((k) => !KNOWN_ARGS.has(k));
  if (unknown.length > 0 && !ignoreUnknown)
    throw invalid(
      'CNI_ARGS',
      `unknown keys ${unknown.join(', ')}; add IgnoreUnknown=1 to ignore them`,
    );
  const ns = args.K8S_POD_NAMESPACE || undefined;
  const name = args.K8S_POD_NAME || undefined;
  if (ns === undefined || name === undefined) {
    // Half an identity is no identity: the container ID names the folder.
    return name !== undefined && RUNTIME_NAME.test(name) ? { args, runtimeName: name } : { args };
  }
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
    if (env.CNI_IFNAME === undefined) throw invalid('CNI_IFNAME', 'is not set');
    if (cmd === 'DEL') {
      // DEL must always be able to clean up: a container ID or interface name that ADD would
      // have refused has nothing to clean up (ADD made nothing), and CNI_ARGS that ADD would
      // refuse only lose the pod identity (the plugin's records give it back).
      const problem =
        containerIdProblem(out.containerId) !== undefined
          ? `CNI_CONTAINERID ${containerIdProblem(out.containerId)}`
          : ifnameProblem(out.ifname) !== undefined
            ? `CNI_IFNAME ${ifnameProblem(out.ifname)}`
            : undefined;
      if (problem) {
        out.ignored = problem;
        return out;
      }
      try {
        Object.assign(out, parseCniArgs(env.CNI_ARGS));
      } catch (err) {
        out.ignored = (err as Error).message;
      }
      return out;
    }
    validateContainerId(out.containerId);
    validateIfname(out.ifname);
    if (!out.netns) throw invalid('CNI_NETNS', 'is not set');
    if (!out.netns.startsWith('/'))
      throw invalid('CNI_NETNS', `"${out.netns}" is not an absolute path`);
    Object.assign(out, parseCniArgs(env.CNI_ARGS));
  }
  if (cmd === 'GC' && out.path.length === 0)
    throw invalid('CNI_PATH', 'is not set (GC requires it)');
  return out;
}
