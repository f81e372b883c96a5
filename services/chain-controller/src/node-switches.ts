import {
  ATTACHMENT_EXTERNAL_IDS,
  CHAIN_OPTION,
  TUNNEL_PEER_ID,
  type TlvMapping,
  OpenFlow,
  OvsdbClient,
  VSwitch,
  ensureTunnelPort,
  parseOvsRemote,
  readUnderlayAddress,
  removeTunnelPeer,
  switchName,
  type FlowStats,
  type MeterStats,
  type OvsTls,
} from '@flowline/ovs';
import { parseAddress } from '@flowline/packet';
import type { Logger } from '@flowline/telemetry';
import type { ChainSwitch, OversizeCount, SwitchFlowStats } from './chain-switch';
import { applyAcrossNodes } from './cross-node-apply';
import type { NfDirectory, NfRecord } from './directory';
import { type CompileOptions, type ResolvedChain, compileFlows, originOf } from './flows';
import {
  type ChainCrossing,
  TUNNEL_OVERSIZE_BIT,
  chainCrossings,
  compileNodeFlows,
  geneveOverhead,
  requireTunnelPort,
} from './node-flows';
import { computePath, placePorts, type NodesOf } from './path';

/** A bridge port as NodeSwitch.ports lists it. */
export interface SwitchPort {
  name: string;
  externalIds: Record<string, string>;
  interfaces?: { ofport: number | undefined; error: string | undefined }[];
}

/**
 * Whether OVS opened a port: its interface has an OpenFlow port number and no error (true when
 * the switch does not say).
 */
function portOpened(p: SwitchPort): boolean {
  const iface = p.interfaces?.[0];
  return iface === undefined || ((iface.ofport ?? 0) > 0 && !iface.error);
}

/** One node's bridge as the fleet drives it. */
export interface NodeSwitch {
  apply(flows: string[]): Promise<void>;
  flowStats(): Promise<FlowStats[]>;
  /**
   * The bridge's ports with their external_ids (the CNI plugin's pod identity) and, where the
   * switch reports them, their interfaces' OpenFlow port number and error.
   */
  ports(): Promise<SwitchPort[]>;
  /** Adds OVS TLV mappings the bridge lacks (needed by flows that carry a chain across nodes). */
  ensureTlvMap?(mappings: readonly TlvMapping[]): Promise<void>;
  /**
   * The node's underlay address, as its OVS records it (Open_vSwitch
   * external_ids:flowline-underlay-address, without the prefix length); undefined when none is
   * recorded (then the node's own address is its underlay address).
   */
  underlayAddress?(): Promise<string | undefined>;
  /**
   * Makes sure the bridge has the Geneve tunnel port to a peer's underlay address
   * (@flowline/ovs ensureTunnelPort): its name, and whether this call added it.
   */
  ensureTunnel?(peerUnderlayAddress: string): Promise<{ port: string; created: boolean }>;
  /** Removes the tunnel port to a peer's underlay address (undoing one a failed change added). */
  removeTunnel?(peerUnderlayAddress: string): Promise<void>;
  /**
   * Sends a frame the peer drops out of a new tunnel port, so that OVS resolves the peer's MAC
   * on the underlay (ARP) before the chain's first packet would meet an unresolved neighbour
   * (OVS drops the packet that asks).
   */
  primeTunnel?(port: string): Promise<void>;
  /** The bridge's meters with their counters (OpenFlow.meterStats). */
  meterStats?(): Promise<MeterStats[]>;
  /** Adds a counting meter, or with `reset` sets an existing one again (its counters to 0). */
  addCountingMeter?(meterId: number, reset?: boolean): Promise<void>;
  /** Deletes a meter. */
  deleteMeter?(meterId: number): Promise<void>;
  /**
   * One round trip to the node's switch within `timeoutMs` (an OVSDB echo, and an OpenFlow
   * echo that ovs-vswitchd answers itself): how NodeSwitches tells a node that answers from
   * one that went silent or whose switch died. Absent: the node is never probed.
   */
  probe?(timeoutMs: number): Promise<void>;
  close(): void;
}

/**
 * What primeTunnel sends: a minimum-size frame of the IEEE local experimental ethertype, which
 * crosses with tunnel key 0 and meets only the receiving bridge's default (drop) flow.
 */
const TUNNEL_PRIMING_FRAME = Uint8Array.from([
  ...[0x02, 0, 0, 0, 0, 0x01], // dst
  ...[0x02, 0, 0, 0, 0, 0x02], // src
  0x88,
  0xb5,
  ...new Array<number>(46).fill(0),
]);

/**
 * A node's chain bridge as a NodeSwitch: ports, the underlay address and tunnel ports over its
 * OVSDB connection, flows and the TLV map over OpenFlow (an OvsDpdk is such a switch).
 */
export function ovsNodeSwitch(
  sw: {
    vswitch: VSwitch;
    bridge: string;
    openflow: Pick<OpenFlow, 'applyFlows' | 'dumpFlows' | 'ensureTlvMap' | 'packetOut'> &
      Partial<Pick<OpenFlow, 'echo' | 'meterStats' | 'addCountingMeter' | 'deleteMeter'>>;
  },
  close: () => void = () => undefined,
): NodeSwitch {
  return {
    apply: (flows) => sw.openflow.applyFlows(flows, 'replace'),
    flowStats: () => sw.openflow.dumpFlows(),
    ports: () => sw.vswitch.listPorts(sw.bridge),
    ensureTlvMap: (m) => sw.openflow.ensureTlvMap(m),
    underlayAddress: () => readUnderlayAddress(sw.vswitch),
    ensureTunnel: (peer) => ensureTunnelPort(sw, peer),
    removeTunnel: async (peer) => {
      await removeTunnelPeer(sw, peer);
    },
    primeTunnel: (port) => sw.openflow.packetOut(port, TUNNEL_PRIMING_FRAME),
    ...(sw.openflow.meterStats && sw.openflow.addCountingMeter && sw.openflow.deleteMeter
      ? {
          meterStats: sw.openflow.meterStats.bind(sw.openflow),
          addCountingMeter: sw.openflow.addCountingMeter.bind(sw.openflow),
          deleteMeter: sw.openflow.deleteMeter.bind(sw.openflow),
        }
      : {}),
    // ovsdb-server and ovs-vswitchd each: the switch that carries the packets can die alone.
    probe: async (timeoutMs) => {
      await Promise.all([
        sw.vswitch.client.request('echo', ['flowline-probe'], timeoutMs),
        sw.openflow.echo?.(timeoutMs),
      ]);
    },
    close,
  };
}

/** Connects to the switch of the node at `address` (its IP, as pods report it in hostIP). */
export type NodeSwitchConnector = (address: string) => Promise<NodeSwitch>;

/** A flow whose ports are on different nodes: no one switch can carry it. */
export class CrossNodeFlowError extends Error {
  override readonly name = 'CrossNodeFlowError';
  constructor(
    readonly flow: string,
    readonly ports: Record<string, string[]>,
  ) {
    super(
      `flow "${flow}" joins ports on different nodes (${Object.entries(ports)
        .map(([p, n]) => `${p} on ${n.join('/') || 'no node'}`)
        .join(', ')}); a chain is steered within one node's switch`,
    );
  }
}

/**
 * A tunnel port a chain across nodes needs could not be made: node `from`'s bridge has none to
 * node `to` (underlay address `peer`, '' when unknown) and adding it failed. Nothing of the
 * change was applied.
 */
export class TunnelCreateError extends Error {
  override readonly name = 'TunnelCreateError';
  constructor(
    readonly from: string,
    readonly to: string,
    readonly peer: string,
    override readonly cause: unknown,
  ) {
    super(
      `creating the tunnel from node ${from} to node ${to}${peer ? ` (underlay address ${peer})` : ''} failed: ${(cause as Error)?.message ?? String(cause)}; nothing of this change was applied`,
    );
  }
}

/**
 * The node's switch stopped answering (its probes went unanswered, or its connection closed):
 * what an operation on it gets, at once or as soon as the node is found lost while it waits.
 */
export class NodeLostError extends Error {
  override readonly name = 'NodeLostError';
  constructor(
    readonly node: string,
    readonly reason: string,
  ) {
    super(`node ${node} is unreachable: ${reason}`);
  }
}

/** How NodeSwitches tells a lost node (issue 19: failover under a second). */
export interface NodeLivenessOptions {
  /** The pause between a node's probes (default 100 ms). */
  probeMs?: number;
  /** A probe unanswered this long (or failing) makes the node lost (default 500 ms). */
  lostAfterMs?: number;
}

/** A node's liveness as NodeSwitches tracks it. */
interface NodeLife {
  /** Why it is lost; undefined while it answers. */
  lost?: string;
  /** Rejects (NodeLostError) when the node is found lost: what waiting operations race. */
  gone: Promise<never>;
  fail: (err: NodeLostError) => void;
  timer?: NodeJS.Timeout;
}

/** Fills `{nodeIP}` in an OVS remote template (tcp:{nodeIP}:6640); brackets IPv6. */
export function remoteFor(template: string, address: string): string {
  return template.replaceAll('{nodeIP}', address.includes(':') ? `[${address}]` : address);
}

/** Checks a remote template by filling in sample addresses: a bad one fails at start, not later. */
export function checkRemoteTemplate(template: string): void {
  for (const sample of ['192.0.2.1', '2001:db8::1']) parseOvsRemote(remoteFor(template, sample));
}

/**
 * A node's br-flowline over TCP or SSL: OVSDB at one remote, OpenFlow (ovs-ofctl) at the other.
 * Over SSL the switch must prove it is that node's: its certificate (signed by the switches' CA
 * in tls.caCert) must name `ovs-switch.<node>` (switchName), the node being the one the pods at
 * that address run on (`nodeNameOf`, from the apiserver). OVSDB checks the name in its TLS
 * handshake; OpenFlow goes through @flowline/ovs's verified relay (ovs-ofctl cannot check names).
 * A node whose name is unknown or whose switch proves another name is not connected (retried).
 */
export function tcpNodeConnector(options: {
  ovsdbRemote: string;
  openflowRemote: string;
  bridge: string;
  /** For ssl: remotes. */
  tls?: OvsTls;
  /** The node name of a node IP (PodDirectory.nodeNameOf); required with tls. */
  nodeNameOf?: (address: string) => string | undefined;
  logger?: Logger;
}): NodeSwitchConnector {
  return async (address) => {
    let tls: { tls?: OvsTls } = {};
    const ssl = [options.ovsdbRemote, options.openflowRemote].some((r) => r.startsWith('ssl:'));
    if (options.tls && !ssl) tls = { tls: options.tls };
    if (options.tls && ssl) {
      const node = options.nodeNameOf?.(address);
      if (!node)
        throw new Error(
          `no single node name is known for ${address} (pods' spec.nodeName), so its switch's certificate cannot be checked`,
        );
      tls = { tls: { ...options.tls, peerName: switchName(node) } };
    }
    const client = await OvsdbClient.connect({
      remote: remoteFor(options.ovsdbRemote, address),
      ...tls,
      connectTimeoutMs: 3000,
      requestTimeoutMs: 5000,
      ...(options.logger ? { logger: options.logger.child({ node: address }) } : {}),
    });
    const openflow = new OpenFlow({
      bridge: options.bridge,
      remote: remoteFor(options.openflowRemote, address),
      ...tls,
    });
    return ovsNodeSwitch({ vswitch: new VSwitch(client), bridge: options.bridge, openflow }, () => {
      openflow.close();
      client.close();
    });
  };
}

/** Port names referenced by a flow in ovs-ofctl syntax: its in_port and its outputs. */
export function flowPorts(flow: string): string[] {
  const ports = new Set<string>();
  for (const m of flow.matchAll(/(?:^|,)in_port=("?)([^,"]+)\1|output:("?)([^,"\s]+)\3/g))
    ports.add((m[2] ?? m[4])!);
  return [...ports];
}

/** The meter ids a table's flows run (`meter:<id>`). */
export function meterIdsOf(flows: readonly string[]): Set<number> {
  const ids = new Set<number>();
  for (const f of flows) for (const m of f.matchAll(/[=,]meter:(\d+)/g)) ids.add(Number(m[1]));
  return ids;
}

/**
 * The meter of the crossing whose too-long flow has `cookie`, in a change's allocation `next`
 * for one node: the one it had (`previous`), else the lowest id neither the previous nor the
 * next allocation uses (the previous table's meters stay until the change is done: an undo
 * needs them).
 */
export function allocateMeter(
  previous: ReadonlyMap<string, number> | undefined,
  next: Map<string, number>,
  cookie: string,
): number {
  const had = next.get(cookie) ?? previous?.get(cookie);
  if (had !== undefined) {
    next.set(cookie, had);
    return had;
  }
  const taken = new Set([...(previous?.values() ?? []), ...next.values()]);
  let id = 1;
  while (taken.has(id)) id++;
  next.set(cookie, id);
  return id;
}

/** Per node, the meter ids `next` has that `previous` did not: allocated by this change. */
function freshMeters(
  previous: ReadonlyMap<string, ReadonlyMap<string, number>>,
  next: ReadonlyMap<string, ReadonlyMap<string, number>>,
): Map<string, Set<number>> {
  const out = new Map<string, Set<number>>();
  for (const [node, meters] of next) {
    const had = new Set(previous.get(node)?.values() ?? []);
    out.set(node, new Set([...meters.values()].filter((id) => !had.has(id))));
  }
  return out;
}

/**
 * The bridges of every node that runs NFs, as the one ChainSwitch the controller drives (a
 * Deployment programming each node's OVS over TCP). Which nodes: the addresses of NF pods'
 * nodes. Each flow goes to the node whose bridge has the ports it names (port names are unique
 * to a pod's interface; a name several nodes have, e.g. a NIC's, counts for each), flows that
 * name no port (the default) to every node; a flow whose ports are on different nodes is
 * refused. A node that cannot be reached is left out, with a warning, until it can: its chains'
 * ports are then unknown, so they fail to resolve rather than being half programmed.
 */
export class NodeSwitches implements ChainSwitch {
  private readonly nodes = new Map<string, NodeSwitch>();
  private readonly connecting = new Map<string, Promise<NodeSwitch | undefined>>();
  /** Node → when to try connecting again after a failure (a dead node must not slow every change). */
  private readonly retryAt = new Map<string, number>();
  /** port → nodes that have it, as of the last portNames(). */
  private portNodes = new Map<string, string[]>();
  /** node → peer's underlay address → its tunnel port there, as of the last portNames(). */
  private tunnels = new Map<string, Map<string, string>>();
  /** node → its underlay address (or why it could not be read), as of the last portNames(). */
  private underlays = new Map<string, string | Error>();
  /** Each node's share as last applied there. */
  private readonly applied = new Map<string, string>();
  /** Each node's table as last applied by applyChains: what an undo gives back. */
  private readonly appliedTables = new Map<string, readonly string[]>();
  /** Each chain's crossings as last applied by applyChains (nodes named by address). */
  private crossed = new Map<string, ChainCrossing[]>();
  /**
   * With an underlay MTU: node → the cookie of each too-long flow there → its meter's id (one
   * meter per crossing and sending node), as last applied.
   */
  private meters = new Map<string, Map<string, number>>();
  /** node → the meter ids its switch holds, as last read or changed here. */
  private readonly installedMeters = new Map<string, Set<number>>();
  /** Nodes whose too-long flows and meters were read (after a controller restart: kept). */
  private readonly metersRead = new Set<string>();
  /** Each probed node's liveness (nodes whose switch has `probe`). */
  private readonly lives = new Map<string, NodeLife>();
  private readonly nodeListeners = new Set<(node: string, up: boolean) => void>();
  /** Each node's ports as last read: what a lost node is taken to have, so its chains resolve. */
  private readonly lastPorts = new Map<string, SwitchPort[]>();
  private closed = false;

  constructor(
    private readonly addresses: () => Iterable<string>,
    private readonly connect: NodeSwitchConnector,
    private readonly log?: Logger,
    private readonly retryMs = 5000,
    /** A node's name for the status, from its address (its pods' spec.nodeName); else the address. */
    private readonly nameOf: (address: string) => string | undefined = () => undefined,
    private readonly liveness: NodeLivenessOptions = {},
    /** The underlay's MTU: the frame limit of every tunnel (unset: not checked). */
    private readonly underlay: { underlayMtu?: number } = {},
  ) {}

  /**
   * Calls `listener` when a node is found lost (its switch stopped answering) and when it
   * answers again; returns the unsubscribe. The controller counts the hops of a lost node as
   * down (their chains' failure policy) and programs the node again when it is back.
   */
  watchNodes(listener: (node: string, up: boolean) => void): () => void {
    this.nodeListeners.add(listener);
    return () => this.nodeListeners.delete(listener);
  }

  /** Why the node `port` is on is lost, if it is (as of the last portNames()). */
  portLost(port: string): string | undefined {
    const [first, ...others] = this.nodesOf(port);
    const reason = first === undefined ? undefined : this.lives.get(first)?.lost;
    if (first === undefined || reason === undefined || others.some((n) => !this.isLost(n)))
      return undefined;
    return `node ${this.nameOf(first) ?? first} is unreachable: ${reason}`;
  }

  /** Whether the node at `address` is lost now. */
  isLost(address: string): boolean {
    return this.lives.get(address)?.lost !== undefined;
  }

  /**
   * A freshly connected node's switch, probed from now on (when it can be): every operation on
   * it fails with NodeLostError at once while it is lost, and one waiting when it is found lost
   * fails then, so that a node gone silent never holds up a change on the others.
   */
  private watchNode(address: string, sw: NodeSwitch): NodeSwitch {
    const probe = sw.probe?.bind(sw);
    if (!probe) return sw;
    const life = this.newLife();
    this.lives.set(address, life);
    const probeMs = this.liveness.probeMs ?? 100;
    const lostAfterMs = this.liveness.lostAfterMs ?? 500;
    const tick = async (): Promise<void> => {
      if (this.closed || this.lives.get(address) !== life) return;
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          // Its own timeouts are later than the deadline: the deadline decides.
          probe(lostAfterMs + 1000),
          new Promise<never>((_, ko) => {
            // Expired timers run before I/O in an event loop turn: after a stall of this
            // process (GC, a busy moment) the deadline would fire before a reply that has been
            // waiting in the socket is read. Deciding after this turn's I/O (setImmediate) lets
            // that reply win, so a stall here is not taken for a lost node.
            timer = setTimeout(
              () =>
                setImmediate(() =>
                  ko(new Error(`its switch did not answer a probe within ${lostAfterMs} ms`)),
                ),
              lostAfterMs,
            );
          }),
        ]);
        if (life.lost !== undefined) this.nodeBack(address, life);
      } catch (err) {
        if (life.lost === undefined) this.nodeLost(address, life, (err as Error).message);
      } finally {
        clearTimeout(timer);
      }
      if (this.closed) return;
      life.timer = setTimeout(() => void tick(), probeMs);
      life.timer.unref();
    };
    void tick();
    const guard = <T>(op: () => Promise<T>): Promise<T> => {
      if (life.lost !== undefined) return Promise.reject(new NodeLostError(address, life.lost));
      const running = op();
      running.catch(() => undefined); // it may lose the race
      return Promise.race([running, life.gone]);
    };
    const { ensureTlvMap, underlayAddress, ensureTunnel, removeTunnel, primeTunnel } = sw;
    const { meterStats, addCountingMeter, deleteMeter } = sw;
    return {
      apply: (flows) => guard(() => sw.apply(flows)),
      flowStats: () => guard(() => sw.flowStats()),
      ports: () => guard(() => sw.ports()),
      ...(ensureTlvMap ? { ensureTlvMap: (m) => guard(() => ensureTlvMap.call(sw, m)) } : {}),
      ...(underlayAddress ? { underlayAddress: () => guard(() => underlayAddress.call(sw)) } : {}),
      ...(ensureTunnel ? { ensureTunnel: (p) => guard(() => ensureTunnel.call(sw, p)) } : {}),
      ...(removeTunnel ? { removeTunnel: (p) => guard(() => removeTunnel.call(sw, p)) } : {}),
      ...(primeTunnel ? { primeTunnel: (p) => guard(() => primeTunnel.call(sw, p)) } : {}),
      ...(meterStats ? { meterStats: () => guard(() => meterStats.call(sw)) } : {}),
      ...(addCountingMeter
        ? { addCountingMeter: (id, reset) => guard(() => addCountingMeter.call(sw, id, reset)) }
        : {}),
      ...(deleteMeter ? { deleteMeter: (id) => guard(() => deleteMeter.call(sw, id)) } : {}),
      probe,
      close: () => sw.close(),
    };
  }

  private newLife(): NodeLife {
    let fail: (err: NodeLostError) => void = () => undefined;
    const gone = new Promise<never>((_, ko) => (fail = ko));
    gone.catch(() => undefined);
    return { gone, fail };
  }

  /** The node stopped answering: operations on it fail, its table counts as unknown. */
  private nodeLost(address: string, life: NodeLife, reason: string): void {
    life.lost = reason;
    life.fail(new NodeLostError(address, reason));
    // Whatever it holds now, it gets its whole table again when it is back.
    this.appliedTables.delete(address);
    this.applied.delete(address);
    this.log?.warn('node switch lost; its hops count as down until it answers', {
      node: address,
      reason,
    });
    for (const l of this.nodeListeners) l(address, false);
  }

  private nodeBack(address: string, life: NodeLife): void {
    const fresh = this.newLife();
    life.lost = undefined;
    life.gone = fresh.gone;
    life.fail = fresh.fail;
    this.log?.info('node switch answers again', { node: address });
    for (const l of this.nodeListeners) l(address, true);
  }

  /**
   * Reachable node switches, connecting to nodes seen for the first time (a connected node's
   * OVSDB client reconnects by itself).
   */
  private async reachable(): Promise<[string, NodeSwitch][]> {
    const out: [string, NodeSwitch][] = [];
    for (const address of new Set([...this.addresses(), ...this.nodes.keys()])) {
      const known = this.nodes.get(address);
      if (known) {
        out.push([address, known]);
        continue;
      }
      if ((this.retryAt.get(address) ?? 0) > Date.now()) continue;
      let pending = this.connecting.get(address);
      if (!pending) {
        pending = this.connect(address).then(
          (connected) => {
            const sw = this.watchNode(address, connected);
            this.nodes.set(address, sw);
            this.log?.info('connected to node switch', { node: address });
            return sw;
          },
          (err: unknown) => {
            this.retryAt.set(address, Date.now() + this.retryMs);
            this.log?.warn('node switch unreachable; leaving it out until it answers', {
              node: address,
              err: (err as Error).message,
            });
            return undefined;
          },
        );
        this.connecting.set(address, pending);
        void pending.finally(() => this.connecting.delete(address));
      }
      const sw = await pending;
      if (sw) out.push([address, sw]);
    }
    return out.sort(([a], [b]) => a.localeCompare(b));
  }

  /**
   * Each reachable node's ports; a node failing now is left out (and warned about), except a
   * lost one, which is taken to have the ports it had (its chains still resolve, its hops down).
   */
  private async portsByNode(): Promise<[string, SwitchPort[]][]> {
    const out: [string, SwitchPort[]][] = [];
    for (const [address, sw] of await this.reachable()) {
      try {
        const ports = await sw.ports();
        this.lastPorts.set(address, ports);
        out.push([address, ports]);
      } catch (err) {
        const last = this.lastPorts.get(address);
        if (err instanceof NodeLostError && last) {
          out.push([address, last]);
          continue;
        }
        this.log?.warn('reading a node switch failed', {
          node: address,
          err: (err as Error).message,
        });
      }
    }
    return out;
  }

  async portNames(): Promise<Set<string>> {
    const portNodes = new Map<string, string[]>();
    const tunnels = new Map<string, Map<string, string>>();
    const underlays = new Map<string, string | Error>();
    for (const [address, ports] of await this.portsByNode()) {
      for (const p of ports) {
        portNodes.set(p.name, [...(portNodes.get(p.name) ?? []), address]);
        // A tunnel port (@flowline/ovs ensureTunnelPort) to a peer at its underlay address. One
        // OVS did not open (ofport -1, an error) is no tunnel: the next change that needs it
        // asks ensureTunnel again, which fails naming OVS's error rather than steering
        // packets into a port that drops them.
        const peer = p.externalIds[TUNNEL_PEER_ID];
        if (peer && portOpened(p))
          tunnels.set(address, (tunnels.get(address) ?? new Map()).set(peer, p.name));
      }
      const sw = this.nodes.get(address);
      const underlay =
        (await sw?.underlayAddress?.().catch((err: unknown) => err as Error)) ?? address;
      const known = this.underlays.get(address);
      // A lost node keeps the underlay address it had.
      underlays.set(
        address,
        underlay instanceof NodeLostError && known !== undefined ? known : underlay,
      );
    }
    this.portNodes = portNodes;
    this.tunnels = tunnels;
    this.underlays = underlays;
    return new Set(portNodes.keys());
  }

  /** A node's underlay address as of the last portNames(); throws why it is unknown. */
  private underlayOf(node: string): string {
    const underlay = this.underlays.get(node);
    if (underlay instanceof Error) throw underlay;
    return underlay ?? node;
  }

  /** Node `from`'s tunnel port to node `to` (to `to`'s underlay address), if it has one. */
  /** The longest frame a tunnel to node `to` carries within the underlay MTU, if one is set. */
  private tunnelFrameLimit(to: string): number | undefined {
    const mtu = this.underlay.underlayMtu;
    const underlay = this.underlays.get(to) ?? to;
    if (mtu === undefined || underlay instanceof Error) return undefined;
    let family: 4 | 6;
    try {
      family = parseAddress(underlay).family;
    } catch {
      return undefined;
    }
    // check_pkt_larger measures the inner frame with its Ethernet header; the MTU counts the
    // outer IP packet, which carries that frame after the encapsulation's headers.
    return mtu - geneveOverhead(family);
  }

  private tunnelPortOf(from: string, to: string): string | undefined {
    const underlay = this.underlays.get(to) ?? to;
    return underlay instanceof Error ? undefined : this.tunnels.get(from)?.get(underlay);
  }

  /**
   * Whether a chain may cross between nodes `a` and `b` (as of the last portNames()): each has
   * a tunnel port to the other's underlay address, or a switch that can add one (applyChains
   * adds what a change needs).
   */
  joined(a: string, b: string): boolean {
    const can = (from: string, to: string): boolean =>
      !!this.tunnelPortOf(from, to) || !!this.nodes.get(from)?.ensureTunnel;
    return a !== b && can(a, b) && can(b, a);
  }

  /**
   * Makes sure that, for every pair of nodes a spanning chain crosses between, each node's
   * bridge has a tunnel port to the other's underlay address: missing ones are added (node
   * pairs in order). A failure removes the ports this call added and is a TunnelCreateError
   * naming both nodes. Returns the ports added, for an undo.
   */
  private async ensureTunnels(
    spanning: readonly ResolvedChain[],
    nodesOf: NodesOf,
  ): Promise<{ node: string; peer: string }[]> {
    const pairs = new Map<string, [string, string]>();
    for (const chain of spanning)
      for (const t of computePath(chain, nodesOf).tunnels)
        for (const [from, to] of [
          [t.from, t.to],
          [t.to, t.from],
        ] as const)
          pairs.set(`${from}\n${to}`, [from, to]);
    const added: { node: string; peer: string }[] = [];
    for (const [from, to] of [...pairs.values()].sort(
      ([a, b], [c, d]) => a.localeCompare(c) || b.localeCompare(d),
    )) {
      if (this.tunnelPortOf(from, to)) continue;
      let peer = '';
      try {
        peer = this.underlayOf(to);
        const sw = this.nodes.get(from);
        if (!sw) throw new Error(`node ${from} is not reachable`);
        if (!sw.ensureTunnel) throw new Error(`node ${from}'s switch cannot add tunnel ports`);
        const { port, created } = await sw.ensureTunnel(peer);
        this.tunnels.set(from, (this.tunnels.get(from) ?? new Map()).set(peer, port));
        if (created) {
          added.push({ node: from, peer });
          // Not fatal: without it the chain's first packets meet the unresolved neighbour.
          await sw.primeTunnel?.(port).catch((err: unknown) =>
            this.log?.warn('tunnel port not primed; its first packets may be dropped', {
              node: from,
              port,
              err: (err as Error).message,
            }),
          );
        }
        this.log?.info('tunnel port ready', {
          node: from,
          peer: to,
          underlay: peer,
          port,
          created,
        });
      } catch (err) {
        await this.removeTunnels(added);
        throw new TunnelCreateError(from, to, peer, err);
      }
    }
    return added;
  }

  /** Removes tunnel ports a failed change added (last first); a failure is only logged. */
  private async removeTunnels(added: readonly { node: string; peer: string }[]): Promise<void> {
    for (const { node, peer } of [...added].reverse()) {
      this.tunnels.get(node)?.delete(peer);
      try {
        await this.nodes.get(node)?.removeTunnel?.(peer);
      } catch (err) {
        this.log?.warn('removing a tunnel port the failed change added failed', {
          node,
          underlay: peer,
          err: (err as Error).message,
        });
      }
    }
  }

  /** The nodes whose bridge has `port` (as of the last portNames()). */
  nodesOf(port: string): string[] {
    return this.portNodes.get(port) ?? [];
  }

  /** The OVS ports of a pod's interfaces, by the external_ids the CNI plugin sets. */
  async podInterfaces(namespace: string, name: string): Promise<Record<string, string>> {
    const ids = ATTACHMENT_EXTERNAL_IDS;
    const out: Record<string, string> = {};
    for (const [, ports] of await this.portsByNode())
      for (const p of ports)
        if (p.externalIds[ids.podNamespace] === namespace && p.externalIds[ids.podName] === name) {
          const ifname = p.externalIds[ids.ifname];
          if (ifname) out[ifname] = p.name;
        }
    return out;
  }

  /** Each node's share of `flows`; throws CrossNodeFlowError before anything is applied. */
  partition(flows: readonly string[], nodes: readonly string[]): Map<string, string[]> {
    const out = new Map<string, string[]>(nodes.map((n) => [n, []]));
    for (const flow of flows) {
      const ports = flowPorts(flow);
      let targets = [...nodes];
      for (const p of ports) targets = targets.filter((n) => this.nodesOf(p).includes(n));
      if (ports.length > 0 && targets.length === 0)
        throw new CrossNodeFlowError(
          flow,
          Object.fromEntries(ports.map((p) => [p, this.nodesOf(p)])),
        );
      for (const n of targets) out.get(n)!.push(flow);
    }
    return out;
  }

  /**
   * Applies each node's share. A node that fails is an error only when this change alters its
   * share: a node that is down must not block changes elsewhere (its unchanged flows are pushed
   * again once it answers, when the controller sees them missing).
   */
  async apply(flows: string[]): Promise<void> {
    const nodes = await this.reachable();
    const shares = this.partition(
      flows,
      nodes.map(([n]) => n),
    );
    for (const [address, sw] of nodes) {
      const share = shares.get(address)!;
      const key = share.join('\n');
      try {
        await sw.apply(share);
        this.applied.set(address, key);
      } catch (err) {
        if (err instanceof NodeLostError) continue; // programmed again when it is back
        if (this.applied.get(address) !== key) throw err;
        this.log?.warn('node switch failed; this change leaves its flows as they were', {
          node: address,
          err: (err as Error).message,
        });
      }
    }
    this.crossed = new Map();
  }

  /** A chain's crossings as last applied, nodes named as the cluster names them where known. */
  crossings(chain: string): readonly ChainCrossing[] {
    return (this.crossed.get(chain) ?? []).map((c) => ({
      ...c,
      from: this.nameOf(c.from) ?? c.from,
      to: this.nameOf(c.to) ?? c.to,
    }));
  }

  /**
   * Programs the chains on every reachable node as one change (issue 19). A chain on one node
   * compiles as before (compileFlows, each flow to the nodes with its ports); a chain spanning
   * nodes gets each node's steps (src/node-flows.ts), before the default flow, after the tunnel
   * ports between the nodes it crosses are made (ensureTunnels: a failure there is a
   * TunnelCreateError and no flow is applied). A node whose table changes and fails undoes the
   * others (src/cross-node-apply.ts) and the tunnel ports this change added are removed; a node
   * whose table does not change may fail (it is down) without failing the change.
   */
  async applyChains(chains: readonly ResolvedChain[], options: CompileOptions): Promise<void> {
    const nodes = await this.reachable();
    const names = nodes.map(([n]) => n);
    await this.portNames();
    const nodesOf = (p: string): string[] => this.nodesOf(p);
    const spans = (c: ResolvedChain): boolean => new Set(placePorts(c, nodesOf).values()).size > 1;
    const spanning = chains.filter(spans);
    const tables = this.partition(
      compileFlows(
        chains.filter((c) => !spanning.includes(c)),
        options,
      ),
      names,
    );
    const tunnelPortOf = (from: string, to: string): string | undefined =>
      this.tunnelPortOf(from, to);
    const added = await this.ensureTunnels(spanning, nodesOf);
    try {
      await this.applyTables(nodes, tables, spanning, tunnelPortOf, options);
    } catch (err) {
      await this.removeTunnels(added);
      throw err;
    }
    this.crossed = chainCrossings(spanning, nodesOf, tunnelPortOf);
  }

  /** applyChains's flows: the spanning chains' steps added to each node's table, then applied. */
  private async applyTables(
    nodes: readonly [string, NodeSwitch][],
    tables: Map<string, string[]>,
    spanning: readonly ResolvedChain[],
    tunnelPortOf: (from: string, to: string) => string | undefined,
    options: CompileOptions,
  ): Promise<void> {
    const names = nodes.map(([n]) => n);
    const nodesOf = (p: string): string[] => this.nodesOf(p);
    await this.readMeters(nodes);
    // This change's meters: nodes not programmed now keep theirs.
    const allocation = new Map(this.meters);
    for (const n of names) allocation.set(n, new Map());
    if (spanning.length > 0) {
      const crossing = compileNodeFlows(spanning, nodesOf, names, {
        ...options,
        tunnelPort: requireTunnelPort(tunnelPortOf),
        tunnelFrameLimit: (_from, to) => this.tunnelFrameLimit(to),
        oversizeMeter: (node, cookie) => {
          const next = allocation.get(node) ?? new Map<string, number>();
          allocation.set(node, next);
          return allocateMeter(this.meters.get(node), next, cookie);
        },
      });
      for (const [node, table] of tables) {
        const extra = (crossing.get(node) ?? []).slice(0, -1); // without its default flow
        tables.set(node, [...table.slice(0, -1), ...extra, ...table.slice(-1)]);
      }
    }
    const byName = new Map(nodes);
    const fresh = freshMeters(this.meters, allocation);
    try {
      await this.applyAcross(tables, byName, fresh, options);
      // Only once every node has its table: an undo needs the old meters.
      this.meters = allocation;
    } finally {
      // The meters no table in force uses: a gone crossing's, or a failed change's.
      await this.pruneMeters(byName);
    }
  }

  private async applyAcross(
    tables: Map<string, string[]>,
    byName: Map<string, NodeSwitch>,
    fresh: Map<string, Set<number>>,
    options: CompileOptions,
  ): Promise<void> {
    await applyAcrossNodes(
      [...tables].map(([node, next]) => ({
        node,
        next,
        previous: this.appliedTables.get(node) ?? [
          `priority=0,actions=${options.defaultAction === 'normal' ? 'NORMAL' : 'drop'}`,
        ],
      })),
      async (node, flows) => {
        const sw = byName.get(node);
        if (!sw) throw new Error(`node ${node} is not reachable`);
        try {
          if (flows.some((f) => f.includes('tun_metadata'))) {
            if (!sw.ensureTlvMap) throw new Error(`node ${node}'s switch cannot set a TLV map`);
            await sw.ensureTlvMap([CHAIN_OPTION]);
          }
          await this.ensureMeters(node, sw, meterIdsOf(flows), fresh.get(node));
          await sw.apply([...flows]);
        } catch (err) {
          // A lost node is left out of the change, not a reason to undo it on the others (they
          // are failing over from it); it gets its whole table when it answers again.
          if (err instanceof NodeLostError) return;
          throw err;
        }
        this.appliedTables.set(node, flows);
        this.applied.set(node, flows.join('\n'));
      },
      this.log,
    );
  }

  /**
   * After a controller restart, the meters its predecessor allocated (read once per node from
   * the too-long flows, whose meters keep counting): kept, so a crossing's count goes on; the
   * others (no longer checked, or no longer crossing) are pruned after the change.
   */
  private async readMeters(nodes: readonly [string, NodeSwitch][]): Promise<void> {
    for (const [node, sw] of nodes) {
      if (this.metersRead.has(node) || !sw.meterStats) continue;
      try {
        const held = new Map<string, number>();
        for (const f of await sw.flowStats()) {
          const meter = /(?:^|,)meter:(\d+)/.exec(f.actions)?.[1];
          const o = originOf(f.cookie);
          if (meter && o && (o.step & TUNNEL_OVERSIZE_BIT) !== 0) held.set(f.cookie, Number(meter));
        }
        this.installedMeters.set(node, new Set((await sw.meterStats()).map((m) => m.meterId)));
        if (!this.meters.has(node)) this.meters.set(node, held);
        this.metersRead.add(node);
      } catch (err) {
        if (err instanceof NodeLostError) continue;
        this.log?.warn("reading a node's meters failed; its crossings' counts may restart", {
          node,
          err: (err as Error).message,
        });
      }
    }
  }

  /**
   * Before a table using meters `wanted` is applied: adds those the switch lacks (after
   * ovs-vswitchd restarted it has none) and sets again those this change allocated anew that it
   * still holds (a meter left over from before: its counters start at 0).
   */
  private async ensureMeters(
    node: string,
    sw: NodeSwitch,
    wanted: ReadonlySet<number>,
    fresh: ReadonlySet<number> | undefined,
  ): Promise<void> {
    if (wanted.size === 0) return;
    if (!sw.meterStats || !sw.addCountingMeter)
      throw new Error(`node ${node}'s switch cannot add meters`);
    const held = new Set((await sw.meterStats()).map((m) => m.meterId));
    this.installedMeters.set(node, held);
    for (const id of [...wanted].sort((a, b) => a - b)) {
      if (held.has(id) && !fresh?.has(id)) continue;
      await sw.addCountingMeter(id, held.has(id));
      held.add(id);
    }
  }

  /**
   * Deletes each node's meters that its table in force does not use (OpenFlow would delete
   * the flows using a deleted meter: a node whose table is unknown, e.g. lost, is left alone).
   * A node that fails keeps them in the list and is pruned again after the next change.
   */
  private async pruneMeters(byName: Map<string, NodeSwitch>): Promise<void> {
    for (const [node, held] of this.installedMeters) {
      const sw = byName.get(node);
      const table = this.appliedTables.get(node);
      if (!sw?.deleteMeter || !table) continue;
      const used = meterIdsOf(table);
      for (const id of [...held].filter((m) => !used.has(m))) {
        try {
          await sw.deleteMeter(id);
          held.delete(id);
        } catch (err) {
          if (err instanceof NodeLostError) break;
          this.log?.warn(
            'deleting a meter no flow uses failed; tried again after the next change',
            {
              node,
              meter: id,
              err: (err as Error).message,
            },
          );
        }
      }
    }
  }

  /** Each crossing's packets too long for its tunnel: its meter's count on the sending node. */
  oversizeCounts(): Promise<OversizeCount[]> {
    return this.readEachNode('meters', async (address, sw, node) => {
      const meters = this.meters.get(address);
      if (!meters || meters.size === 0 || !sw.meterStats) return [];
      const cookieOf = new Map([...meters].map(([cookie, id]) => [id, cookie]));
      return (await sw.meterStats()).flatMap((m) => {
        const cookie = cookieOf.get(m.meterId);
        return cookie ? [{ cookie, node, packets: m.packets }] : [];
      });
    });
  }

  /** Each reachable node's flows, each with its node (the node's address). */
  flowStats(): Promise<SwitchFlowStats[]> {
    return this.readEachNode('flows', async (_address, sw, node) =>
      (await sw.flowStats()).map((f) => ({ ...f, node })),
    );
  }

  /**
   * `read` of each reachable node, `node` named as crossings() names the nodes (so that the two
   * meet in the chain status); a lost node is left out, a failing one too with a warning.
   */
  private async readEachNode<T>(
    what: string,
    read: (address: string, sw: NodeSwitch, node: string) => Promise<T[]>,
  ): Promise<T[]> {
    const out: T[] = [];
    for (const [address, sw] of await this.reachable()) {
      try {
        out.push(...(await read(address, sw, this.nameOf(address) ?? address)));
      } catch (err) {
        if (err instanceof NodeLostError) continue;
        this.log?.warn(`reading ${what} of a node switch failed`, {
          node: address,
          err: (err as Error).message,
        });
      }
    }
    return out;
  }

  close(): void {
    this.closed = true;
    for (const life of this.lives.values()) clearTimeout(life.timer);
    this.lives.clear();
    for (const sw of this.nodes.values()) sw.close();
    this.nodes.clear();
  }
}

/** NF interfaces found on the node switches by the CNI plugin's external_ids ("ns/pod" keys). */
export class SwitchAttachmentDirectory implements NfDirectory {
  constructor(private readonly fleet: NodeSwitches) {}

  async lookup(nf: string): Promise<NfRecord | undefined> {
    const [namespace, pod] = nf.includes('/') ? nf.split('/', 2) : ['default', nf];
    const interfaces = await this.fleet.podInterfaces(namespace!, pod!);
    return Object.keys(interfaces).length > 0 ? { name: nf, interfaces } : undefined;
  }
}
