// Pods in Kubernetes Pod shape, read the way kubelet reads static pod manifests: only the fields
// the local node acts on are interpreted, and each one is validated with an error naming it.
import { parseAllDocuments } from 'yaml';
import { ManifestError } from './errors';

export const NETWORKS_ANNOTATION = 'k8s.v1.cni.cncf.io/networks';
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const IFNAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;
const QUANTITY = /^(\d+)(Ki|Mi|Gi)?$/;

/** One entry of the Multus network-selection annotation. */
export interface NetworkSelection {
  name: string;
  namespace: string;
  interface: string;
  mac?: string;
}

export interface PodSpec {
  name: string;
  namespace: string;
  /** The container's command and args (only the first container runs an NF). */
  command: string[];
  env: Record<string, string>;
  /** Extended resources (flowline.io/*) and how many of each. */
  devices: Record<string, number>;
  /** hugepages-2Mi in MiB; 0 when not requested. */
  hugepagesMb: number;
  networks: NetworkSelection[];
  restartPolicy: 'Always' | 'OnFailure' | 'Never';
  /** Where the manifest came from, for messages. */
  source: string;
}

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function str(v: unknown, field: string, source: string): string {
  if (typeof v !== 'string' || v === '')
    throw new ManifestError(source, field, 'must be a non-empty string');
  return v;
}

function quantityMi(raw: unknown, field: string, source: string): number {
  const text = typeof raw === 'number' ? String(raw) : raw;
  const m = typeof text === 'string' ? QUANTITY.exec(text) : null;
  if (!m)
    throw new ManifestError(
      source,
      field,
      `"${String(raw)}" is not a quantity such as 512Mi or 1Gi`,
    );
  const n = Number(m[1]);
  const unit = m[2];
  const mib =
    unit === 'Gi' ? n * 1024 : unit === 'Mi' ? n : unit === 'Ki' ? n / 1024 : n / (1024 * 1024);
  if (!Number.isInteger(mib / 2))
    throw new ManifestError(source, field, `"${String(raw)}" is not a whole number of 2 MiB pages`);
  return mib;
}

/**
 * Parses the Multus annotation in either of its forms: a comma list of `[ns/]name[@ifname]` or a
 * JSON list of {name, namespace, interface, mac}. Interfaces default to net1, net2, ... in order.
 */
export function parseNetworkSelection(
  raw: string,
  podNamespace: string,
  source: string,
): NetworkSelection[] {
  const field = `metadata.annotations["${NETWORKS_ANNOTATION}"]`;
  const trimmed = raw.trim();
  let entries: { name: string; namespace?: string; interface?: string; mac?: string }[];
  if (trimmed.startsWith('[')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(trimmed);
    } catch (err) {
      throw new ManifestError(source, field, `is not valid JSON: ${(err as Error).message}`);
    }
    if (!Array.isArray(parsed)) throw new ManifestError(source, field, 'must be a JSON list');
    entries = parsed.map((e, i) => {
      if (!isObj(e) || typeof e.name !== 'string' || e.name === '')
        throw new ManifestError(source, `${field}[${i}].name`, 'must be a non-empty string');
      for (const k of ['namespace', 'interface', 'mac'] as const)
        if (e[k] !== undefined && typeof e[k] !== 'string')
          throw new ManifestError(source, `${field}[${i}].${k}`, 'must be a string');
      return e as { name: string; namespace?: string; interface?: string; mac?: string };
    });
  } else {
    entries = trimmed
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)
      .map((item) => {
        const [ref, ifname] = item.split('@', 2) as [string, string | undefined];
        const [a, b] = ref.split('/', 2) as [string, string | undefined];
        return b === undefined
          ? { name: a, interface: ifname }
          : { namespace: a, name: b, interface: ifname };
      });
  }
  const used = new Set<string>();
  return entries.map((e, i) => {
    const ifname = e.interface ?? `net${i + 1}`;
    if (!IFNAME.test(ifname))
      throw new ManifestError(
        source,
        `${field}[${i}].interface`,
        `"${ifname}" is not an interface name (1-15 characters)`,
      );
    if (used.has(ifname))
      throw new ManifestError(source, `${field}[${i}].interface`, `"${ifname}" is used twice`);
    used.add(ifname);
    if (!DNS_LABEL.test(e.name))
      throw new ManifestError(
        source,
        `${field}[${i}].name`,
        `"${e.name}" is not a network attachment name`,
      );
    return {
      name: e.name,
      namespace: e.namespace ?? podNamespace,
      interface: ifname,
      ...(e.mac ? { mac: e.mac } : {}),
    };
  });
}

/** Validates one Pod object. */
export function podFromObject(doc: unknown, source: string): PodSpec {
  if (!isObj(doc)) throw new ManifestError(source, '(document)', 'must be a mapping');
  if (doc.apiVersion !== 'v1')
    throw new ManifestError(source, 'apiVersion', `must be v1 (got ${String(doc.apiVersion)})`);
  if (doc.kind !== 'Pod')
    throw new ManifestError(source, 'kind', `must be Pod (got ${String(doc.kind)})`);
  const meta = doc.metadata;
  if (!isObj(meta)) throw new ManifestError(source, 'metadata', 'must be a mapping');
  const name = str(meta.name, 'metadata.name', source);
  const namespace =
    meta.namespace === undefined ? 'default' : str(meta.namespace, 'metadata.namespace', source);
  for (const [field, value] of [
    ['metadata.name', name],
    ['metadata.namespace', namespace],
  ] as const) {
    if (!DNS_LABEL.test(value) || value.length > 63)
      throw new ManifestError(
        source,
        field,
        `"${value}" is not a DNS label (lower case, digits, '-', at most 63)`,
      );
  }
  const annotations = meta.annotations === undefined ? {} : meta.annotations;
  if (!isObj(annotations))
    throw new ManifestError(source, 'metadata.annotations', 'must be a mapping');
  const networksRaw = annotations[NETWORKS_ANNOTATION];
  if (networksRaw !== undefined && typeof networksRaw !== 'string')
    throw new ManifestError(
      source,
      `metadata.annotations["${NETWORKS_ANNOTATION}"]`,
      'must be a string',
    );
  const networks = networksRaw ? parseNetworkSelection(networksRaw, namespace, source) : [];

  const spec = doc.spec;
  if (!isObj(spec)) throw new ManifestError(source, 'spec', 'must be a mapping');
  const restartPolicy = spec.restartPolicy ?? 'Always';
  if (restartPolicy !== 'Always' && restartPolicy !== 'OnFailure' && restartPolicy !== 'Never')
    throw new ManifestError(source, 'spec.restartPolicy', 'must be Always, OnFailure or Never');
  if (!Array.isArray(spec.containers) || spec.containers.length !== 1)
    throw new ManifestError(
      source,
      'spec.containers',
      'must hold exactly one container (one NF process per pod)',
    );
  const c: unknown = spec.containers[0];
  if (!isObj(c)) throw new ManifestError(source, 'spec.containers[0]', 'must be a mapping');
  const listOfStrings = (v: unknown, field: string): string[] => {
    if (v === undefined) return [];
    if (!Array.isArray(v) || v.some((s) => typeof s !== 'string'))
      throw new ManifestError(source, field, 'must be a list of strings');
    return v as string[];
  };
  const command = [
    ...listOfStrings(c.command, 'spec.containers[0].command'),
    ...listOfStrings(c.args, 'spec.containers[0].args'),
  ];
  if (command.length === 0)
    throw new ManifestError(
      source,
      'spec.containers[0].command',
      'is required: the NF executable, e.g. flowline-firewall',
    );

  const env: Record<string, string> = {};
  if (c.env !== undefined) {
    if (!Array.isArray(c.env))
      throw new ManifestError(source, 'spec.containers[0].env', 'must be a list');
    c.env.forEach((e: unknown, i) => {
      if (!isObj(e) || typeof e.name !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(e.name))
        throw new ManifestError(
          source,
          `spec.containers[0].env[${i}].name`,
          'must be an environment variable name',
        );
      if (e.value !== undefined && typeof e.value !== 'string')
        throw new ManifestError(source, `spec.containers[0].env[${i}].value`, 'must be a string');
      env[e.name] = (e.value as string | undefined) ?? '';
    });
  }

  const devices: Record<string, number> = {};
  let hugepagesMb = 0;
  const resources = c.resources ?? {};
  if (!isObj(resources))
    throw new ManifestError(source, 'spec.containers[0].resources', 'must be a mapping');
  const limits = resources.limits ?? {};
  const requests = resources.requests ?? {};
  if (!isObj(limits) || !isObj(requests))
    throw new ManifestError(
      source,
      'spec.containers[0].resources',
      'limits and requests must be mappings',
    );
  for (const [key, value] of Object.entries(limits)) {
    const field = `spec.containers[0].resources.limits["${key}"]`;
    if (key === 'hugepages-2Mi') hugepagesMb = quantityMi(value, field, source);
    else if (key.includes('/') && !key.startsWith('kubernetes.io/')) {
      const n = typeof value === 'number' ? value : Number(value);
      if (!Number.isInteger(n) || n < 1)
        throw new ManifestError(source, field, `"${String(value)}" must be a positive integer`);
      // Kubernetes requires requests == limits for extended resources.
      if (requests[key] !== undefined && Number(requests[key]) !== n)
        throw new ManifestError(
          source,
          `spec.containers[0].resources.requests["${key}"]`,
          'must equal the limit (extended resources cannot be overcommitted)',
        );
      devices[key] = n;
    } else if (key === 'hugepages-1Gi') {
      throw new ManifestError(
        source,
        field,
        'the local node has 2 MiB hugepages only; use hugepages-2Mi',
      );
    }
  }

  return {
    name,
    namespace,
    command,
    env,
    devices,
    hugepagesMb,
    networks,
    restartPolicy,
    source,
  };
}

/** Every Pod in a YAML text (documents separated by ---); other kinds are refused. */
export function parsePods(text: string, source: string): PodSpec[] {
  const docs = parseAllDocuments(text);
  const pods: PodSpec[] = [];
  docs.forEach((d, i) => {
    if (d.errors.length > 0)
      throw new ManifestError(
        source,
        `(document ${i + 1})`,
        `is not valid YAML: ${d.errors[0]!.message}`,
      );
    const value: unknown = d.toJS();
    if (value === null || value === undefined) return;
    pods.push(podFromObject(value, docs.length > 1 ? `${source}#${i + 1}` : source));
  });
  const keys = new Set<string>();
  for (const p of pods) {
    const key = podKey(p);
    if (keys.has(key))
      throw new ManifestError(p.source, 'metadata.name', `pod ${key} appears twice`);
    keys.add(key);
  }
  return pods;
}

export const podKey = (p: { namespace: string; name: string }): string =>
  `${p.namespace}/${p.name}`;
