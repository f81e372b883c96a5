import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OvsError } from './errors';
import { OpenFlowEcho } from './openflow-echo';
import { formatOvsRemote, OvsRemoteError, parseOvsRemote, type OvsTls } from './remote';
import { run } from './run';
import { formatTlvMapping, parseTlvMap, type TlvMapping } from './tunnel-key';
import { withVerifiedRelay } from './tls-relay';

export interface OpenFlowTarget {
  bridge: string;
  /** OVS run dir holding `<bridge>.mgmt`; default: ovs-ofctl's own default (OVS_RUNDIR). */
  runDir?: string;
  /**
   * Where the bridge listens for OpenFlow instead (OVS syntax): tcp:HOST:PORT for a bridge with
   * a passive listener (ovs-vsctl set-controller BRIDGE ptcp:PORT:IP), e.g. another node's, or
   * unix:PATH. Overrides runDir.
   */
  remote?: string;
  /** Key, certificate and CA (PEM files) for an ssl: remote. */
  tls?: OvsTls;
  /** Path of ovs-ofctl; default from PATH. */
  ofctl?: string;
  timeoutMs?: number;
}

export interface FlowStats {
  cookie: string;
  table: number;
  priority: number;
  durationSec: number;
  nPackets: number;
  nBytes: number;
  /** The match as ovs-ofctl prints it, e.g. "in_port=1" (without priority). */
  match: string;
  actions: string;
}

export interface PortStats {
  /** OpenFlow port number, or 'LOCAL'. */
  port: number | 'LOCAL';
  rxPackets: number;
  rxBytes: number;
  rxDropped: number;
  txPackets: number;
  txBytes: number;
  txDropped: number;
}

/** One OpenFlow meter's counters (`ovs-ofctl meter-stats`). */
export interface MeterStats {
  meterId: number;
  /** Packets and bytes that ran the meter (before any band). */
  packets: number;
  bytes: number;
}

/**
 * The rate of a counting meter's one band, in packets per second: the largest a meter band
 * takes (32 bits), so the band never drops and the meter only counts.
 */
export const COUNTING_METER_RATE = 0xffffffff;

/** Parses `ovs-ofctl meter-stats` output (OpenFlow 1.3 and later). */
export function parseMeterStats(text: string): MeterStats[] {
  const out: MeterStats[] = [];
  for (const m of text.matchAll(/meter:(\d+)\s.*?packet_in_count:(\d+) byte_in_count:(\d+)/g))
    out.push({ meterId: Number(m[1]), packets: Number(m[2]), bytes: Number(m[3]) });
  return out;
}

const STAT_KEYS = new Set([
  'cookie',
  'duration',
  'table',
  'n_packets',
  'n_bytes',
  'idle_timeout',
  'hard_timeout',
  'idle_age',
  'hard_age',
  'importance',
  'reset_counts',
  'send_flow_rem',
  'check_overlap',
  'no_packet_counts',
  'no_byte_counts',
]);

/** Parses `ovs-ofctl dump-flows` output (any OpenFlow version) into one record per flow. */
export function parseDumpFlows(text: string): FlowStats[] {
  const flows: FlowStats[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line.startsWith('cookie=') && !line.includes(' actions=')) continue;
    const at = line.lastIndexOf(' actions=');
    if (at < 0) continue;
    const actions = line.slice(at + ' actions='.length);
    const fields: Record<string, string> = {};
    const matchParts: string[] = [];
    for (const part of line.slice(0, at).split(/,\s*/)) {
      if (part === '') continue;
      const eq = part.indexOf('=');
      const key = eq < 0 ? part : part.slice(0, eq);
      if (STAT_KEYS.has(key) || key === 'priority') fields[key] = eq < 0 ? '' : part.slice(eq + 1);
      else matchParts.push(part);
    }
    flows.push({
      cookie: fields.cookie ?? '0x0',
      table: Number(fields.table ?? 0),
      priority: Number(fields.priority ?? 32768),
      durationSec: parseFloat(fields.duration ?? '0'),
      nPackets: Number(fields.n_packets ?? 0),
      nBytes: Number(fields.n_bytes ?? 0),
      match: matchParts.join(','),
      actions,
    });
  }
  return flows;
}

/** Parses `ovs-ofctl dump-ports` output. */
export function parseDumpPorts(text: string): PortStats[] {
  const out: PortStats[] = [];
  const re =
    /port\s+"?(\w+)"?:\s*rx pkts=(\d+|\?), bytes=(\d+|\?), drop=(\d+|\?)[^\n]*\n\s*tx pkts=(\d+|\?), bytes=(\d+|\?), drop=(\d+|\?)/g;
  const num = (s: string | undefined): number => (s === undefined || s === '?' ? 0 : Number(s));
  for (const m of text.matchAll(re)) {
    out.push({
      port: m[1] === 'LOCAL' ? 'LOCAL' : Number(m[1]),
      rxPackets: num(m[2]),
      rxBytes: num(m[3]),
      rxDropped: num(m[4]),
      txPackets: num(m[5]),
      txBytes: num(m[6]),
      txDropped: num(m[7]),
    });
  }
  return out;
}

/** OpenFlow meter ids are 1 to 0xffff0000 (the rest name virtual meters). */
function checkMeterId(meterId: number): void {
  if (!Number.isInteger(meterId) || meterId < 1 || meterId > 0xffff0000)
    throw new OvsError(`meter id ${meterId} is not 1-4294901760`, { meterId });
}

/**
 * OpenFlow rules on one bridge through ovs-ofctl: a set of flows is applied atomically as one
 * OpenFlow 1.4 bundle (all or none), and flow and port counters are read back.
 */
export class OpenFlow {
  /** What ovs-ofctl is pointed at: a remote, the bridge's .mgmt socket, or the bridge name. */
  readonly remote: string;
  private echoChannel: OpenFlowEcho | undefined;

  constructor(readonly target: OpenFlowTarget) {
    this.remote =
      target.remote !== undefined
        ? formatOvsRemote(parseOvsRemote(target.remote))
        : target.runDir
          ? `unix:${join(target.runDir, `${target.bridge}.mgmt`)}`
          : target.bridge;
    if (this.remote.startsWith('ssl:') && !target.tls)
      throw new OvsRemoteError(
        `OpenFlow remote ${this.remote} needs tls (private key, certificate and CA certificate)`,
        { remote: this.remote },
      );
  }

  /**
   * Runs ovs-ofctl with the arguments `build` makes for the remote it is to use. For ssl: with
   * a `tls.peerName`, that remote is a relay's unix socket whose connections are TLS verified by
   * name (src/tls-relay.ts): ovs-ofctl checks only the CA. Otherwise ovs-ofctl's own SSL.
   */
  private ofctl(build: (remote: string) => string[], what: string): Promise<string> {
    const tls = this.target.tls;
    const exec = (args: string[]): Promise<string> =>
      run(this.target.ofctl ?? 'ovs-ofctl', args, {
        timeoutMs: this.target.timeoutMs ?? 15_000,
        what,
      });
    if (tls && this.remote.startsWith('ssl:')) {
      const peerName = tls.peerName;
      if (peerName) {
        const r = parseOvsRemote(this.remote) as { host: string; port: number };
        return withVerifiedRelay({ host: r.host, port: r.port, tls: { ...tls, peerName } }, (via) =>
          exec(build(via)),
        );
      }
      return exec([
        `--private-key=${tls.privateKey}`,
        `--certificate=${tls.certificate}`,
        `--ca-cert=${tls.caCert}`,
        ...build(this.remote),
      ]);
    }
    return exec(build(this.remote));
  }

  /**
   * One OpenFlow echo round trip to the bridge's ovs-vswitchd within `timeoutMs`, on a
   * connection kept for it (src/openflow-echo.ts): whether the switch itself answers (OVSDB's
   * echo is ovsdb-server's). Only with a remote or a run dir (not the bare bridge name).
   */
  echo(timeoutMs: number): Promise<void> {
    if (!/^(unix|tcp|ssl):/.test(this.remote))
      return Promise.reject(
        new OvsRemoteError(`OpenFlow echo needs a remote or a run dir, not "${this.remote}"`, {
          remote: this.remote,
        }),
      );
    this.echoChannel ??= new OpenFlowEcho(parseOvsRemote(this.remote), this.target.tls);
    return this.echoChannel.echo(timeoutMs);
  }

  /** Closes the connection echo() keeps (ovs-ofctl calls keep none). */
  close(): void {
    this.echoChannel?.close();
    this.echoChannel = undefined;
  }

  /**
   * Applies flows atomically in one bundle. 'replace' makes the bridge's flow table exactly
   * `flows` (ovs-ofctl replace-flows); 'add' adds them to what is there.
   */
  async applyFlows(flows: readonly string[], mode: 'replace' | 'add' = 'replace'): Promise<void> {
    const dir = await mkdtemp(join(tmpdir(), 'flowline-flows-'));
    try {
      const file = join(dir, 'flows.txt');
      await writeFile(file, flows.join('\n') + '\n');
      await this.ofctl(
        (remote) => [
          '-O',
          'OpenFlow14',
          '--bundle',
          mode === 'replace' ? 'replace-flows' : 'add-flows',
          remote,
          file,
        ],
        `applying ${flows.length} flows to ${this.target.bridge} as one bundle`,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** Deletes the flows that match (all when no match is given). */
  async deleteFlows(match?: string): Promise<void> {
    await this.ofctl(
      (remote) => ['-O', 'OpenFlow14', 'del-flows', remote, ...(match ? [match] : [])],
      `deleting flows on ${this.target.bridge}`,
    );
  }

  async dumpFlows(match?: string): Promise<FlowStats[]> {
    // --names: ports by name, as flows are written (ovs-ofctl prints numbers when not on a tty).
    return parseDumpFlows(
      await this.ofctl(
        (remote) => [
          '-O',
          'OpenFlow14',
          '--names',
          'dump-flows',
          remote,
          ...(match ? [match] : []),
        ],
        `reading flows of ${this.target.bridge}`,
      ),
    );
  }

  /** The bridge's Geneve option → tun_metadata mappings (`ovs-ofctl dump-tlv-map`). */
  async dumpTlvMap(): Promise<TlvMapping[]> {
    return parseTlvMap(
      await this.ofctl(
        (remote) => ['-O', 'OpenFlow14', 'dump-tlv-map', remote],
        `reading the TLV map of ${this.target.bridge}`,
      ),
    );
  }

  /**
   * Adds the mappings the bridge lacks (flows naming tun_metadata need them; they are lost when
   * ovs-vswitchd restarts). A field mapped to another option is an OvsCommandError from OVS.
   */
  async ensureTlvMap(mappings: readonly TlvMapping[]): Promise<void> {
    const have = new Set((await this.dumpTlvMap()).map(formatTlvMapping));
    const missing = mappings.map(formatTlvMapping).filter((m) => !have.has(m));
    if (missing.length === 0) return;
    await this.ofctl(
      (remote) => ['-O', 'OpenFlow14', 'add-tlv-map', remote, missing.join(',')],
      `adding the TLV map ${missing.join(',')} to ${this.target.bridge}`,
    );
  }

  /**
   * Sends one frame out of `port` as the controller (ovs-ofctl packet-out). Out of a tunnel
   * port it makes OVS resolve the tunnel's next hop on the underlay (ARP) now, rather than drop
   * the first packet that needs it.
   */
  async packetOut(port: string, frame: Uint8Array): Promise<void> {
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(port))
      throw new OvsError(`packet-out: "${port}" is not a port name`, { port });
    const hex = Buffer.from(frame).toString('hex');
    await this.ofctl(
      (remote) => [
        '-O',
        'OpenFlow14',
        'packet-out',
        remote,
        `in_port=controller packet=${hex} actions=output:${port}`,
      ],
      `sending a frame out of ${port} on ${this.target.bridge}`,
    );
  }

  /**
   * Adds a counting meter (a band at COUNTING_METER_RATE packets per second, which never
   * drops): a flow's `meter:<id>` instruction then counts exactly the packets that run it, also
   * in a branch of check_pkt_larger, where OVS credits the flows of both branches with every
   * packet. `reset`: the meter exists; setting it again (mod-meter) sets its counters to 0.
   */
  async addCountingMeter(meterId: number, reset = false): Promise<void> {
    checkMeterId(meterId);
    await this.ofctl(
      (remote) => [
        '-O',
        'OpenFlow14',
        reset ? 'mod-meter' : 'add-meter',
        remote,
        `meter=${meterId},pktps,stats,bands=type=drop,rate=${COUNTING_METER_RATE}`,
      ],
      `${reset ? 'resetting' : 'adding'} meter ${meterId} on ${this.target.bridge}`,
    );
  }

  /** Deletes a meter (OpenFlow deletes the flows that use it too). */
  async deleteMeter(meterId: number): Promise<void> {
    checkMeterId(meterId);
    await this.ofctl(
      (remote) => ['-O', 'OpenFlow14', 'del-meters', remote, `meter=${meterId}`],
      `deleting meter ${meterId} on ${this.target.bridge}`,
    );
  }

  /** Every meter on the bridge with its counters. */
  async meterStats(): Promise<MeterStats[]> {
    return parseMeterStats(
      await this.ofctl(
        (remote) => ['-O', 'OpenFlow14', 'meter-stats', remote],
        `reading meter stats of ${this.target.bridge}`,
      ),
    );
  }

  async dumpPorts(): Promise<PortStats[]> {
    return parseDumpPorts(
      await this.ofctl(
        (remote) => ['dump-ports', remote],
        `reading port stats of ${this.target.bridge}`,
      ),
    );
  }
}
