import { createHash } from 'node:crypto';
import type { chainV1 } from '@flowline/proto';
import { InvalidChainError } from '../errors';
import { validateChainSpec } from '../spec';

/** The ServiceChain CRD (charts/flowline/templates/servicechain-crd.yaml). */
export const SERVICECHAIN = {
  group: 'flowline.io',
  version: 'v1alpha1',
  plural: 'servicechains',
  kind: 'ServiceChain',
} as const;

/** Held on every ServiceChain whose chain may be on the switch; removed after the chain is. */
export const FINALIZER = 'flowline.io/chain-cleanup';

export interface CrEndpoint {
  nf?: string;
  interface?: string;
  ovsPort?: string;
}

export interface CrPortRange {
  from?: number;
  to?: number;
}

export interface ServiceChainSpec {
  classifier?: {
    ingress?: CrEndpoint;
    match?: {
      ipVersion?: number;
      protocol?: string;
      srcCIDR?: string;
      dstCIDR?: string;
      srcPorts?: CrPortRange;
      dstPorts?: CrPortRange;
    };
  };
  hops?: { nf?: string; ingress?: string; egress?: string }[];
  egress?: CrEndpoint;
  bidirectional?: boolean;
  priority?: number;
  failurePolicy?: string;
}

export interface ServiceChainCondition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  observedGeneration?: number;
  lastTransitionTime: string;
  reason: string;
  message: string;
}

export interface ServiceChainHopStatus {
  nf: string;
  node?: string;
  healthy?: boolean;
  bypassed?: boolean;
  ingressPort?: string;
  egressPort?: string;
  message?: string;
}

export type ServiceChainPhase = 'Pending' | 'Active' | 'Degraded' | 'Failed';

export interface ServiceChainStatus {
  observedGeneration?: number;
  phase?: ServiceChainPhase;
  hopCount?: number;
  hops?: ServiceChainHopStatus[];
  conditions?: ServiceChainCondition[];
}

export interface ObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  deletionTimestamp?: string;
  finalizers?: string[];
  annotations?: Record<string, string>;
  labels?: Record<string, string>;
}

export interface ServiceChain {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec?: ServiceChainSpec;
  status?: ServiceChainStatus;
}

/**
 * The controller's chain name for a new ServiceChain's chain: a DNS-1123 label (what
 * ChainService accepts) unique per namespace/name. The hash keeps "a-b"/"c" and "a"/"b-c" apart
 * and bounds the length; it is 64 bits, so that no tenant can find a name of its own that
 * claims another resource's chain name first (with the 32 of chains made before, a search of
 * minutes did). A chain already made for a resource keeps its name: the reconciler finds it by
 * its owner.
 */
export function chainNameFor(namespace: string, name: string): string {
  const hash = createHash('sha256').update(`${namespace}/${name}`).digest('hex').slice(0, 16);
  const base = `${namespace}-${name}`
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, '-')
    .slice(0, 63 - 1 - hash.length)
    .replace(/-+$/, '');
  return `${base}-${hash}`;
}

/** chain.v1 field paths (as validateChainSpec and the controller name them) → the CR's. */
const FIELD_MAP: [RegExp, string][] = [
  [/^spec\.classifier\.ingress_port/, 'spec.classifier.ingress'],
  [/^spec\.classifier\.ip_version/, 'spec.classifier.match.ipVersion'],
  [/^spec\.classifier\.protocol/, 'spec.classifier.match.protocol'],
  [/^spec\.classifier\.src_prefix/, 'spec.classifier.match.srcCIDR'],
  [/^spec\.classifier\.dst_prefix/, 'spec.classifier.match.dstCIDR'],
  [/^spec\.classifier\.src_ports/, 'spec.classifier.match.srcPorts'],
  [/^spec\.classifier\.dst_ports/, 'spec.classifier.match.dstPorts'],
  [/^(spec\.hops\[\d+\])\.ingress_interface/, '$1.ingress'],
  [/^(spec\.hops\[\d+\])\.egress_interface/, '$1.egress'],
  [/^spec\.egress_port/, 'spec.egress'],
  [/^spec\.failure_policy/, 'spec.failurePolicy'],
];

/** Names a chain.v1 field (from a validation or resolution error) as the ServiceChain spells it. */
export function crField(chainField: string): string {
  for (const [pattern, replacement] of FIELD_MAP)
    if (pattern.test(chainField)) return chainField.replace(pattern, replacement);
  return chainField;
}

const POD_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;

function podName(v: unknown, field: string): string {
  const nf = required(v, field);
  if (nf.includes('/'))
    throw new InvalidChainError(
      field,
      `"${nf}" names another namespace: a ServiceChain names only pods in its own namespace (cross-namespace chains are for the operator, through the ChainService)`,
    );
  if (!POD_NAME.test(nf))
    throw new InvalidChainError(field, `"${nf}" is not a pod name in the chain's namespace`);
  return nf;
}

function ifname(v: unknown, field: string): string {
  const name = required(v, field);
  if (!IFNAME.test(name))
    throw new InvalidChainError(
      field,
      `"${name}" is not an interface name (1-15 of [A-Za-z0-9_.-])`,
    );
  return name;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function str(v: unknown, field: string, required: boolean): string | undefined {
  if (v === undefined || v === null || v === '') {
    if (required) throw new InvalidChainError(field, 'is required');
    return undefined;
  }
  if (typeof v !== 'string') throw new InvalidChainError(field, `must be a string`);
  return v;
}

function required(v: unknown, field: string): string {
  const s = str(v, field, true);
  if (s === undefined) throw new InvalidChainError(field, 'is required');
  return s;
}

function int(v: unknown, field: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v))
    throw new InvalidChainError(field, `must be an integer (got ${JSON.stringify(v)})`);
  return v;
}

/**
 * An endpoint {nf, interface} → chain.v1's "<ns>/<pod>/<if>". A raw OVS port (`ovsPort`: the
 * uplink, another tenant's port) is refused: a ServiceChain is a namespace's, and may steer only
 * its own pods' traffic. Raw ports are for the operator, through the ChainService.
 */
function endpoint(v: unknown, field: string, namespace: string): string {
  if (!isObject(v)) throw new InvalidChainError(field, 'is required: {nf, interface}');
  if (v.ovsPort !== undefined && v.ovsPort !== null)
    throw new InvalidChainError(
      `${field}.ovsPort`,
      'a raw OVS port is not allowed in a ServiceChain: name a pod of this namespace and its interface ({nf, interface}); raw ports are for the operator, through the ChainService',
    );
  const nf = str(v.nf, `${field}.nf`, false);
  const iface = str(v.interface, `${field}.interface`, false);
  if (nf === undefined) throw new InvalidChainError(`${field}.nf`, 'is required');
  return `${namespace}/${podName(nf, `${field}.nf`)}/${ifname(iface, `${field}.interface`)}`;
}

function range(v: unknown, field: string): chainV1.Classifier['srcPorts'] {
  if (v === undefined || v === null) return undefined;
  if (!isObject(v)) throw new InvalidChainError(field, 'must be {from, to}');
  const from = int(v.from, `${field}.from`);
  if (from === undefined) throw new InvalidChainError(`${field}.from`, 'is required');
  const to = int(v.to, `${field}.to`) ?? from;
  if (from < 0 || from > 65535) throw new InvalidChainError(`${field}.from`, 'must be 0-65535');
  if (to < from || to > 65535)
    throw new InvalidChainError(`${field}.to`, `must be ${from}-65535 (at least from)`);
  return { first: from, last: to };
}

/**
 * Maps a ServiceChain's spec to flowline.chain.v1 ChainSpec: NF names become
 * "<namespace>/<pod>", endpoints "<namespace>/<pod>/<interface>". Tenancy: only pods of the
 * ServiceChain's own namespace; a raw OVS port (`ovsPort`) or a name with a namespace is
 * refused naming the field (the reconciler reports InvalidSpec). The result is
 * validated as ChainService validates a request; every error names the CR's field
 * (spec.hops[1].ingress, spec.classifier.match.srcCIDR, ...). Pure: no I/O.
 */
export function toChainSpec(namespace: string, spec: unknown): chainV1.ChainSpec {
  if (!isObject(spec)) throw new InvalidChainError('spec', 'is required');
  const classifier = spec.classifier;
  if (!isObject(classifier)) throw new InvalidChainError('spec.classifier', 'is required');
  const match = classifier.match ?? {};
  if (!isObject(match)) throw new InvalidChainError('spec.classifier.match', 'must be an object');
  const ipVersion = int(match.ipVersion, 'spec.classifier.match.ipVersion');
  if (ipVersion !== undefined && ipVersion !== 4 && ipVersion !== 6)
    throw new InvalidChainError(
      'spec.classifier.match.ipVersion',
      `must be 4 or 6 (got ${ipVersion})`,
    );
  const m = 'spec.classifier.match';
  const srcPorts = range(match.srcPorts, `${m}.srcPorts`);
  const dstPorts = range(match.dstPorts, `${m}.dstPorts`);
  const srcPrefix = str(match.srcCIDR, `${m}.srcCIDR`, false);
  const dstPrefix = str(match.dstCIDR, `${m}.dstCIDR`, false);
  const protocol = str(match.protocol, `${m}.protocol`, false);
  const out: chainV1.ChainSpec = {
    classifier: {
      ingressPort: endpoint(classifier.ingress, 'spec.classifier.ingress', namespace),
      ...(ipVersion !== undefined ? { ipVersion } : {}),
      ...(srcPrefix !== undefined ? { srcPrefix } : {}),
      ...(dstPrefix !== undefined ? { dstPrefix } : {}),
      ...(protocol !== undefined ? { protocol } : {}),
      ...(srcPorts ? { srcPorts } : {}),
      ...(dstPorts ? { dstPorts } : {}),
    },
    hops: [],
    egressPort: '',
  };
  if (!Array.isArray(spec.hops) || spec.hops.length === 0)
    throw new InvalidChainError('spec.hops', 'is required: at least one hop');
  out.hops = spec.hops.map((h: unknown, i): chainV1.Hop => {
    const at = `spec.hops[${i}]`;
    if (!isObject(h)) throw new InvalidChainError(at, 'must be {nf, ingress, egress}');
    return {
      nf: `${namespace}/${podName(h.nf, `${at}.nf`)}`,
      ingressInterface: ifname(h.ingress, `${at}.ingress`),
      egressInterface: ifname(h.egress, `${at}.egress`),
    };
  });
  out.egressPort = endpoint(spec.egress, 'spec.egress', namespace);
  const policy = str(spec.failurePolicy, 'spec.failurePolicy', false) ?? 'fail-closed';
  if (policy !== 'fail-closed' && policy !== 'bypass')
    throw new InvalidChainError('spec.failurePolicy', `"${policy}" must be fail-closed or bypass`);
  out.failurePolicy = policy === 'bypass' ? 'BYPASS' : 'FAIL_CLOSED';
  if (spec.bidirectional !== undefined && typeof spec.bidirectional !== 'boolean')
    throw new InvalidChainError('spec.bidirectional', 'must be true or false');
  out.bidirectional = spec.bidirectional === true;
  const priority = int(spec.priority, 'spec.priority') ?? 100;
  if (priority < 1 || priority > 1000)
    throw new InvalidChainError('spec.priority', `must be 1-1000 (got ${priority})`);
  out.priority = priority;
  try {
    validateChainSpec(out);
  } catch (err) {
    if (err instanceof InvalidChainError)
      throw new InvalidChainError(crField(err.field), err.reason);
    throw err;
  }
  return out;
}
