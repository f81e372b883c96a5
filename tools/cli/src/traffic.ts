// `flowline traffic start|stop|results`: drives a traffic-gen pod through its own API
// (flowline.trafficgen.v1) over mutual TLS as the operator. Flows come from a file holding the
// generator's StartRequest (the .proto's field names, or their camelCase JSON names) and/or from
// flags; flags apply to every flow of a file. The generator validates the request and names any
// bad field (INVALID_ARGUMENT flows[2].rate_pps: ...). Results per flow: sent, received, what did
// not arrive, latency p50/p99.
import { parseAllDocuments } from 'yaml';
import { type PodStatus } from '@flowline/node';
import { trafficGenV1 } from '@flowline/proto';
import { type OperatorCredentials, nfInfo, unary } from './clients';
import { renderTable } from './table';

export class TrafficSpecError extends Error {
  override readonly name = 'TrafficSpecError';
}

/** What flags may set; each one applies to every flow. */
export interface TrafficFlags {
  rate?: string;
  count?: string;
  size?: string;
  name?: string;
  protocol?: string;
  srcIp?: string;
  dstIp?: string;
  srcPort?: string;
  dstPort?: string;
  dstMac?: string;
  txPort?: string;
  rxPort?: string[];
}

type Flow = trafficGenV1.Flow;
type StartRequest = trafficGenV1.StartRequest;

const FLOW_FIELDS: readonly (keyof Flow)[] = [
  'name',
  'txPort',
  'protocol',
  'srcIp',
  'dstIp',
  'srcPort',
  'dstPort',
  'srcMac',
  'dstMac',
  'frameSize',
  'imix',
  'ratePps',
  'count',
  'ttl',
  'tcpFlags',
];
const REQUEST_FIELDS: readonly (keyof StartRequest)[] = [
  'flows',
  'totalRatePps',
  'rxPorts',
  'countAnyRun',
];

const camel = (key: string): string => key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Keys as the proto names them (snake_case) or camelCase; an unknown key is an error naming it. */
function fields<K extends string>(
  value: Record<string, unknown>,
  known: readonly K[],
  where: string,
): Partial<Record<K, unknown>> {
  const out: Partial<Record<K, unknown>> = {};
  for (const [k, v] of Object.entries(value)) {
    const key = camel(k) as K;
    if (!known.includes(key))
      throw new TrafficSpecError(`${where}.${k}: not a field (fields: ${known.join(', ')})`);
    out[key] = v;
  }
  return out;
}

/** Reads a flows file: one StartRequest as YAML or JSON. */
export function parseFlowsFile(text: string, source: string): StartRequest {
  const docs = parseAllDocuments(text);
  if (docs.length !== 1)
    throw new TrafficSpecError(`${source}: must hold one document (a StartRequest)`);
  const doc = docs[0]!;
  if (doc.errors.length)
    throw new TrafficSpecError(`${source}: not valid YAML: ${doc.errors[0]!.message}`);
  const value: unknown = doc.toJS();
  if (!isObj(value))
    throw new TrafficSpecError(`${source}: must be a mapping with flows (and totalRatePps, ...)`);
  const req = fields(value, REQUEST_FIELDS, source);
  if (!Array.isArray(req.flows) || req.flows.length === 0)
    throw new TrafficSpecError(`${source}: flows must be a list of at least one flow`);
  const flows = req.flows.map((f: unknown, i) => {
    if (!isObj(f)) throw new TrafficSpecError(`${source}: flows[${i}] must be a mapping`);
    return fields(f, FLOW_FIELDS, `${source}: flows[${i}]`) as Flow;
  });
  if (req.rxPorts !== undefined && !Array.isArray(req.rxPorts))
    throw new TrafficSpecError(`${source}: rxPorts must be a list of port names`);
  return { ...(req as StartRequest), flows };
}

function number(flag: string, raw: string, ok: (n: number) => boolean, what: string): number {
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n) || !ok(n))
    throw new TrafficSpecError(`--${flag}: "${raw}" is not ${what}`);
  return n;
}

/**
 * The StartRequest from a file and flags. Without a file the flags make one flow (--src-ip and
 * --dst-ip required); with one, --rate, --count and --size apply to every flow of it.
 */
export function buildStartRequest(
  file: { text: string; source: string } | undefined,
  flags: TrafficFlags,
): StartRequest {
  let req: StartRequest;
  if (file) {
    req = parseFlowsFile(file.text, file.source);
    for (const f of ['name', 'protocol', 'srcIp', 'dstIp', 'srcPort', 'dstPort', 'dstMac'] as const)
      if (flags[f] !== undefined)
        throw new TrafficSpecError(
          `--${f.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} describes a flow of its own; with -f the file describes the flows (--rate, --count, --size, --tx-port and --rx-port apply to them)`,
        );
  } else {
    if (!flags.srcIp || !flags.dstIp)
      throw new TrafficSpecError(
        'give the flows with -f flows.yaml, or one flow with --src-ip and --dst-ip (and --dst-port, --protocol, ...)',
      );
    const port = (flag: string, v: string | undefined): number | undefined =>
      v === undefined
        ? undefined
        : number(flag, v, (n) => Number.isInteger(n) && n >= 0 && n <= 65535, 'a port (0..65535)');
    const protocol = flags.protocol?.toUpperCase();
    if (protocol !== undefined && protocol !== 'UDP' && protocol !== 'TCP')
      throw new TrafficSpecError(`--protocol: "${flags.protocol}" is not udp or tcp`);
    const srcPort = port('src-port', flags.srcPort);
    const dstPort = port('dst-port', flags.dstPort);
    req = {
      flows: [
        {
          name: flags.name ?? 'flow-0',
          srcIp: flags.srcIp,
          dstIp: flags.dstIp,
          ...(protocol ? { protocol } : {}),
          ...(srcPort !== undefined ? { srcPort } : {}),
          ...(dstPort !== undefined ? { dstPort } : {}),
          ...(flags.dstMac ? { dstMac: flags.dstMac } : {}),
        },
      ],
    };
  }
  const flows = req.flows ?? [];
  if (flags.rate !== undefined) {
    req.totalRatePps = number('rate', flags.rate, (n) => n > 0, 'a rate in packets per second');
    for (const f of flows) delete f.ratePps;
  }
  if (flags.count !== undefined) {
    const count = number(
      'count',
      flags.count,
      (n) => Number.isSafeInteger(n) && n >= 0,
      'a packet count (0: until stopped)',
    );
    for (const f of flows) f.count = count;
  }
  if (flags.size !== undefined) {
    const imix = flags.size.toLowerCase() === 'imix';
    const size = imix
      ? 0
      : number(
          'size',
          flags.size,
          (n) => Number.isInteger(n) && n >= 64 && n <= 1518,
          'a frame size (64..1518) or imix',
        );
    for (const f of flows) {
      f.imix = imix;
      f.frameSize = size;
    }
  }
  if (flags.txPort !== undefined) for (const f of flows) f.txPort = flags.txPort;
  if (flags.rxPort?.length) req.rxPorts = flags.rxPort;
  return req;
}

export type TrafficGenClient = InstanceType<
  ReturnType<typeof trafficGenV1.loadTrafficGenV1>['TrafficGenerator']
>;

/**
 * The generator pod: the one named, or the only running pod whose NF is a traffic-gen. Pods
 * that do not answer GetInfo are not candidates.
 */
export async function findGenerator(
  pods: PodStatus[],
  creds: OperatorCredentials,
  named?: string,
): Promise<PodStatus> {
  const list = pods.map((p) => p.key).join(', ') || 'none';
  if (named) {
    const key = named.includes('/') ? named : `default/${named}`;
    const pod = pods.find((p) => p.key === key);
    if (!pod) throw new Error(`no pod ${key} on this node (pods: ${list})`);
    return pod;
  }
  const kinds = await Promise.all(
    pods.map((p) =>
      nfInfo(p.grpcAddress, p.key, creds).then(
        (i) => i.kind,
        () => undefined,
      ),
    ),
  );
  const gens = pods.filter((_, i) => kinds[i] === 'traffic-gen');
  if (gens.length === 1) return gens[0]!;
  if (gens.length === 0)
    throw new Error(
      `no traffic generator pod runs (pods: ${list}); run one, e.g. flowline apply -f examples/gen.yaml`,
    );
  throw new Error(
    `several traffic generator pods run (${gens.map((g) => g.key).join(', ')}); choose one with --pod`,
  );
}

export function trafficClient(pod: PodStatus, creds: OperatorCredentials): TrafficGenClient {
  const { TrafficGenerator } = trafficGenV1.loadTrafficGenV1();
  return new TrafficGenerator(pod.grpcAddress, creds.toNf(pod.key));
}

type Fn<Req, Res> = Parameters<typeof unary<Req, Res>>[0];

export const startTraffic = (
  c: TrafficGenClient,
  req: StartRequest,
): Promise<trafficGenV1.StartResponse> =>
  unary(c.Start.bind(c) as Fn<StartRequest, trafficGenV1.StartResponse>, req);
export const trafficResults = (c: TrafficGenClient): Promise<trafficGenV1.Results__Output> =>
  unary(c.GetResults.bind(c) as Fn<object, trafficGenV1.Results__Output>, {});
export const stopTraffic = (c: TrafficGenClient): Promise<trafficGenV1.Results__Output> =>
  unary(c.Stop.bind(c) as Fn<object, trafficGenV1.Results__Output>, {});

/** How long a count-limited request takes to send, in ms; undefined when a flow never ends. */
export function sendingTimeMs(req: StartRequest): number | undefined {
  const flows = req.flows ?? [];
  const total = Number(req.totalRatePps ?? 0);
  let longest = 0;
  for (const f of flows) {
    const count = Number(f.count ?? 0);
    if (!count) return undefined;
    const rate = total > 0 ? total / flows.length : Number(f.ratePps ?? 0);
    if (rate > 0) longest = Math.max(longest, (count / rate) * 1000);
  }
  return longest;
}

export interface FlowRow {
  name: string;
  sent: number;
  received: number;
  /** Sent and not received (denied on the way, dropped, or still in flight while running). */
  notReceived: number;
  /** notReceived / sent, in percent. */
  lossPercent: number;
  /** Gaps in the sequence of what arrived (the generator's own `lost`). */
  sequenceGaps: number;
  p50Us?: number;
  p99Us?: number;
}

const num = (v: unknown): number => Number(v ?? 0);

export function flowRows(r: trafficGenV1.Results__Output): FlowRow[] {
  return r.flows.map((f) => {
    const sent = num(f.txPackets);
    const received = num(f.rxPackets) - num(f.duplicates);
    const notReceived = Math.max(0, sent - received);
    return {
      name: f.name,
      sent,
      received,
      notReceived,
      lossPercent: sent ? (notReceived / sent) * 100 : 0,
      sequenceGaps: num(f.lost),
      ...(f.latency
        ? { p50Us: num(f.latency.p50Ns) / 1000, p99Us: num(f.latency.p99Ns) / 1000 }
        : {}),
    };
  });
}

export function renderResults(pod: string, r: trafficGenV1.Results__Output): string {
  const rows = flowRows(r);
  const t = r.totals;
  const head = `${pod}: run ${r.runId} ${r.state}${r.txDone ? ' (all sent)' : ''}, ${(num(r.elapsedMs) / 1000).toFixed(1)} s; sent ${num(t?.txPackets)}, received ${num(t?.rxPackets)}`;
  const table = renderTable(
    ['flow', 'sent', 'received', 'not received', 'loss %', 'p50 µs', 'p99 µs'],
    rows.map((f) => [
      f.name,
      f.sent,
      f.received,
      f.notReceived,
      f.lossPercent.toFixed(2),
      f.p50Us?.toFixed(1) ?? '-',
      f.p99Us?.toFixed(1) ?? '-',
    ]),
  );
  return `${head}\n${table}`;
}
