import { type Match, MatchError, validateMatch } from '@flowline/packet';
import type { chainV1 } from '@flowline/proto';
import { InvalidChainError } from './errors';
import { MAX_HOPS } from './limits';

/** An endpoint on the switch: an NF instance's interface, or a plain OVS port. */
export type Endpoint = { kind: 'nf'; nf: string; iface: string } | { kind: 'port'; port: string };

/**
 * A validated classifier: its match is @flowline/packet's, except that `families` is empty
 * when no field restricts it to IP (then it takes every frame on the port, ARP included).
 */
export interface ValidClassifier extends Match {
  ingress: Endpoint;
}

export interface ValidHop {
  nf: string;
  ingress: string;
  egress: string;
}

export type FailurePolicy = 'fail-closed' | 'bypass';

export interface ValidChainSpec {
  classifier: ValidClassifier;
  hops: ValidHop[];
  egress: Endpoint;
  failurePolicy: FailurePolicy;
  bidirectional: boolean;
  priority: number;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const NF_NAME = /^[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?(\/[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?)?$/;
const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;

export function validateChainName(name: string | undefined, field = 'name'): string {
  if (!name || !DNS_LABEL.test(name)) {
    throw new InvalidChainError(
      field,
      `"${name ?? ''}" must be a DNS-1123 label: 1-63 of [a-z0-9-], starting and ending alphanumeric`,
    );
  }
  return name;
}

/** "<namespace>/<pod>/<interface>" or "<nf>/<interface>" is an NF's interface; a bare name is an OVS port. */
export function parseEndpoint(text: string | undefined, field: string): Endpoint {
  if (!text)
    throw new InvalidChainError(field, 'is required: "<nf>/<interface>" or an OVS port name');
  const slash = text.lastIndexOf('/');
  if (slash < 0) {
    if (!IFNAME.test(text))
      throw new InvalidChainError(
        field,
        `"${text}" is not an OVS port name (1-15 of [A-Za-z0-9_.-])`,
      );
    return { kind: 'port', port: text };
  }
  const nf = text.slice(0, slash);
  const iface = text.slice(slash + 1);
  if (!NF_NAME.test(nf))
    throw new InvalidChainError(
      field,
      `"${nf}" is not an NF instance ("<namespace>/<pod>" or a name)`,
    );
  if (!IFNAME.test(iface))
    throw new InvalidChainError(field, `"${iface}" is not an interface name`);
  return { kind: 'nf', nf, iface };
}

export function endpointText(e: Endpoint): string {
  return e.kind === 'port' ? e.port : `${e.nf}/${e.iface}`;
}

export function validateClassifier(
  c: chainV1.Classifier | null | undefined,
  at: string,
): ValidClassifier {
  if (!c) throw new InvalidChainError(at, 'is required');
  const ingress = parseEndpoint(c.ingressPort, `${at}.ingress_port`);
  let match: Match;
  try {
    match = validateMatch(c, at);
  } catch (err) {
    throw err instanceof MatchError ? new InvalidChainError(err.field, err.reason) : err;
  }
  // Both families and no protocol: nothing asks for IP, so one flow takes every frame.
  const everyFrame = match.families.length === 2 && match.protocol === undefined;
  return { ingress, ...match, families: everyFrame ? [] : match.families };
}

export function validateChainSpec(
  spec: chainV1.ChainSpec | null | undefined,
  at = 'spec',
): ValidChainSpec {
  if (!spec) throw new InvalidChainError(at, 'is required');
  const classifier = validateClassifier(spec.classifier, `${at}.classifier`);
  // Before looking at each hop: the work done for a request is bounded by the limit.
  const count = spec.hops?.length ?? 0;
  if (count > MAX_HOPS)
    throw new InvalidChainError(`${at}.hops`, `has ${count} hops; at most ${MAX_HOPS}`);
  const hops = (spec.hops ?? []).map((h, i) => {
    const field = `${at}.hops[${i}]`;
    // Each field on its own: joined first, a "/" in the interface would move into the NF's name
    // ("default" + "fw-0/net1" read as NF default/fw-0).
    if (!h.nf)
      throw new InvalidChainError(
        `${field}.nf`,
        'is required: the NF instance, e.g. "default/firewall-0"',
      );
    if (!NF_NAME.test(h.nf))
      throw new InvalidChainError(
        `${field}.nf`,
        `"${h.nf}" is not an NF instance ("<namespace>/<pod>" or a name)`,
      );
    const ingress = h.ingressInterface ?? '';
    if (!IFNAME.test(ingress))
      throw new InvalidChainError(
        `${field}.ingress_interface`,
        `"${ingress}" is not an interface name`,
      );
    const nf = { nf: h.nf, iface: ingress };
    const egress = h.egressInterface ?? '';
    if (!IFNAME.test(egress))
      throw new InvalidChainError(
        `${field}.egress_interface`,
        `"${egress}" is not an interface name`,
      );
    return { nf: nf.nf, ingress: nf.iface, egress };
  });
  const egress = parseEndpoint(spec.egressPort, `${at}.egress_port`);
  const seen = new Map<string, number>();
  hops.forEach((h, i) => {
    const before = seen.get(h.nf);
    if (before !== undefined)
      throw new InvalidChainError(
        `${at}.hops[${i}].nf`,
        `"${h.nf}" is also hops[${before}]; a chain visits an NF once`,
      );
    seen.set(h.nf, i);
  });
  const policy = spec.failurePolicy ?? 'FAILURE_POLICY_UNSPECIFIED';
  const failurePolicy: FailurePolicy = policy === 'BYPASS' ? 'bypass' : 'fail-closed';
  const priority = Number(spec.priority ?? 0) || 100;
  if (priority < 1 || priority > 1000)
    throw new InvalidChainError(`${at}.priority`, `must be 1-1000 (got ${priority})`);
  return {
    classifier,
    hops,
    egress,
    failurePolicy,
    bidirectional: Boolean(spec.bidirectional),
    priority,
  };
}

/**
 * Covers an inclusive port range with value/mask pairs, as OpenFlow matches ports only by
 * mask: 1000-1999 becomes 1000/0xfff8, 1008/0xfff0, ... (at most 30 pairs for 16 bits).
 */
export function portRangeMasks(first: number, last: number): { value: number; mask: number }[] {
  const out: { value: number; mask: number }[] = [];
  let start = first;
  while (start <= last) {
    let size = 1;
    while ((start & (size * 2 - 1)) === 0 && start + size * 2 - 1 <= last && size < 0x10000)
      size *= 2;
    out.push({ value: start, mask: 0xffff & ~(size - 1) });
    start += size;
  }
  return out;
}
