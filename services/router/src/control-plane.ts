import { IcmpErrorLimit } from './icmp-limit';
import { mayAnswerWithIcmpError } from './icmp-rules';
import {
  ETH_P_ARP,
  ETH_P_IPV4,
  ETH_P_IPV6,
  ICMPV6_NEIGHBOR_ADVERTISEMENT,
  ICMPV6_NEIGHBOR_SOLICITATION,
  IPPROTO_ICMPV6,
  PacketError,
  type ParsedFrame,
  arpFrame,
  ethernetHeader,
  formatAddress,
  formatMac,
  fragmentIpv4,
  neighborAdvertisementFrame,
  neighborSolicitationFrame,
  packetTooBigFrame,
  parseAddress,
  parseFrame,
  parseMac,
  parsePrefix,
  timeExceededFrame,
} from '@flowline/packet';
import { type Fib, type FibNextHop, type FibProgrammer, compileFib, fibLookup } from './fib';
import { type RouterInterface, connectedInterface, localAddress } from './interfaces';
import {
  type NeighborEntry,
  NeighborTable,
  type NeighborTimers,
  DEFAULT_TIMERS,
} from './neighbors';
import { InvalidRouteError } from './errors';
import { checkRouteCount } from './limits';
import { type RouteInput, StaticRoutes, validateRoute } from './routes';

/** Why the dataplane handed a packet to the slow path. */
export type PuntReason = 'arp' | 'nd' | 'local' | 'ttl_expired' | 'no_route' | 'too_big' | 'glean';

/** Sends a frame out of a port, through the dataplane's inject path. */
export type Injector = (port: string, frame: Buffer) => void;

export interface SlowPathCounters {
  ttlExpired: bigint;
  icmpTimeExceededSent: bigint;
  /** Packets longer than the MTU of the interface their route leaves by. */
  tooBig: bigint;
  /** ICMP fragmentation needed (IPv4 with DF) and ICMPv6 packet too big sent for them. */
  icmpTooBigSent: bigint;
  /** IPv4 packets without DF among them, fragmented and sent on. */
  fragmented: bigint;
  /** The fragments those made. */
  fragmentsSent: bigint;
  arpRequestsSent: bigint;
  arpRepliesSent: bigint;
  ndSolicitationsSent: bigint;
  ndAdvertisementsSent: bigint;
  neighborUnresolved: bigint;
  noRoute: bigint;
  ignored: bigint;
  /** ICMP errors not sent: over the limit (nf.icmpErrors, src/icmp-limit.ts). */
  icmpRateLimited: bigint;
  /**
   * ICMP errors not sent: about a packet a router must not answer (an ICMP error, a later
   * fragment, to a group or broadcast, from no single host: src/icmp-rules.ts).
   */
  icmpSuppressed: bigint;
}

const ZERO_MAC = '00:00:00:00:00:00';

/**
 * The router's control plane and slow path: interfaces, static routes, the neighbour cache and
 * the FIB compiled from them; answers ARP and ND for its own addresses, resolves neighbours and
 * gateways, answers expired packets with ICMP time exceeded and packets too long for their
 * egress MTU with ICMP fragmentation needed / packet too big (or fragments them: IPv4 without
 * DF). Forwarding itself is the dataplane's LPM stage; this only programs it.
 */
export class RouterControlPlane {
  readonly statics = new StaticRoutes();
  readonly neighbors: NeighborTable;
  readonly counters: SlowPathCounters = {
    ttlExpired: 0n,
    icmpTimeExceededSent: 0n,
    tooBig: 0n,
    icmpTooBigSent: 0n,
    fragmented: 0n,
    fragmentsSent: 0n,
    arpRequestsSent: 0n,
    arpRepliesSent: 0n,
    ndSolicitationsSent: 0n,
    ndAdvertisementsSent: 0n,
    neighborUnresolved: 0n,
    noRoute: 0n,
    ignored: 0n,
    icmpRateLimited: 0n,
    icmpSuppressed: 0n,
  };
  private gen = 0n;
  private fib: Fib | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private reprogram = false;

  constructor(
    readonly interfaces: readonly RouterInterface[],
    private readonly programmer: FibProgrammer,
    private readonly inject: Injector,
    private readonly now: () => number = Date.now,
    timers: NeighborTimers = DEFAULT_TIMERS,
    private readonly icmpLimit = new IcmpErrorLimit(),
  ) {
    this.neighbors = new NeighborTable(
      {
        probe: (entry, unicast) => this.sendProbe(entry, unicast),
        changed: () => {
          this.reprogram = true;
        },
      },
      timers,
    );
  }

  get generation(): bigint {
    return this.gen;
  }

  get currentFib(): Fib | undefined {
    return this.fib;
  }

  /**
   * Adds a configured neighbour (static ARP/ND entry) before start: for next hops that answer
   * no ARP or ND, such as a traffic sink. `at` names the config entry in errors.
   */
  addStaticNeighbor(input: { address: string; mac: string; iface: string }, at: string): void {
    const iface = this.interfaces.find((i) => i.name === input.iface);
    if (!iface)
      throw new InvalidRouteError(
        `${at}.interface`,
        `"${input.iface}" is not one of ${this.interfaces.map((i) => i.name).join(', ') || '(none)'}`,
      );
    let address;
    try {
      address = parsePrefix(input.address);
    } catch (err) {
      throw new InvalidRouteError(`${at}.address`, (err as Error).message);
    }
    if (address.length !== (address.family === 4 ? 32 : 128))
      throw new InvalidRouteError(
        `${at}.address`,
        `"${input.address}" must be an address, not a prefix`,
      );
    try {
      parseMac(input.mac);
    } catch (err) {
      throw new InvalidRouteError(`${at}.mac`, (err as Error).message);
    }
    this.neighbors.addPermanent(iface.name, address.bytes, input.mac.toLowerCase(), this.now());
  }

  /** Programs the first FIB. */
  async start(initial: RouteInput[] = []): Promise<void> {
    checkRouteCount(initial.length);
    const routes = initial.map((r, i) => validateRoute(r, this.interfaces, `routes[${i}]`));
    await this.serial(async () => {
      await this.program(routes);
      this.statics.replaceAll(routes);
    });
  }

  addRoute(input: RouteInput): Promise<bigint> {
    return this.serial(async () => {
      const next = this.statics.withAdded(validateRoute(input, this.interfaces, 'route'));
      await this.program(next);
      this.statics.replaceAll(next);
      return this.gen;
    });
  }

  deleteRoute(prefix: string): Promise<bigint> {
    return this.serial(async () => {
      const next = this.statics.withDeleted(prefix, this.interfaces);
      await this.program(next);
      this.statics.replaceAll(next);
      return this.gen;
    });
  }

  /** Ages neighbours and re-programs the FIB when a MAC appeared, changed or went away. */
  async tick(): Promise<void> {
    this.neighbors.tick(this.now());
    await this.flush();
  }

  /** Re-programs the FIB if the neighbour cache changed since the last program. */
  flush(): Promise<void> {
    if (!this.reprogram) return Promise.resolve();
    return this.serial(async () => {
      if (!this.reprogram) return;
      await this.program(this.statics.list());
    });
  }

  /** Handles one punted frame from `port`; replies go out through the injector. */
  handlePunt(frame: Buffer, port: string, reason: PuntReason): void {
    const iface = this.interfaces.find((i) => i.name === port);
    if (!iface) {
      this.counters.ignored += 1n;
      return;
    }
    let parsed;
    try {
      parsed = parseFrame(frame);
    } catch {
      this.counters.ignored += 1n;
      return;
    }
    const now = this.now();
    if (parsed.etherType === ETH_P_ARP && parsed.arp) return this.onArp(iface, parsed.arp, now);
    if (
      parsed.etherType === ETH_P_IPV6 &&
      parsed.ipv6?.nextHeader === IPPROTO_ICMPV6 &&
      parsed.l4
    ) {
      const type = parsed.l4.icmpType;
      if (type === ICMPV6_NEIGHBOR_SOLICITATION || type === ICMPV6_NEIGHBOR_ADVERTISEMENT) {
        return this.onNeighborDiscovery(iface, frame, parsed.l4.offset, parsed.ipv6.src, now);
      }
    }
    if (reason === 'ttl_expired') return this.onTtlExpired(iface, frame, parsed);
    if (reason === 'too_big') return this.onTooBig(iface, frame, parsed);
    if (reason === 'glean') {
      const dst = parsed.ipv4?.dst ?? parsed.ipv6?.dst;
      this.counters.neighborUnresolved += 1n;
      if (dst) this.resolveFor(dst);
      return;
    }
    if (reason === 'no_route') {
      this.counters.noRoute += 1n;
      return;
    }
    this.counters.ignored += 1n;
  }

  private onArp(
    iface: RouterInterface,
    arp: NonNullable<ReturnType<typeof parseFrame>['arp']>,
    now: number,
  ): void {
    const sender = parsePrefix(arp.senderIp).bytes;
    const ours = iface.addresses.find((a) => a.family === 4 && a.address === arp.targetIp);
    const senderConnected = connectedInterface([iface], sender) !== undefined;
    if (arp.op === 2) {
      if (senderConnected) this.neighbors.learn(iface.name, sender, arp.senderMac, true, now);
      return;
    }
    if (arp.op === 1 && ours) {
      if (senderConnected && arp.senderIp !== '0.0.0.0')
        this.neighbors.learn(iface.name, sender, arp.senderMac, false, now);
      this.inject(
        iface.name,
        arpFrame({
          op: 'reply',
          senderMac: iface.mac,
          senderIp: ours.address,
          targetMac: arp.senderMac,
          targetIp: arp.senderIp,
        }),
      );
      this.counters.arpRepliesSent += 1n;
      return;
    }
    this.counters.ignored += 1n;
  }

  private onNeighborDiscovery(
    iface: RouterInterface,
    frame: Buffer,
    offset: number,
    src: string,
    now: number,
  ): void {
    const type = frame[offset]!;
    const target = frame.subarray(offset + 8, offset + 24);
    const targetText = formatAddress(target, 6);
    // The first option: source (1) or target (2) link-layer address, 8 bytes.
    const option =
      frame.length >= offset + 32 && frame[offset + 25] === 1 ? frame[offset + 24] : undefined;
    const optionMac =
      option !== undefined ? formatMac(frame.subarray(offset + 26, offset + 32)) : undefined;
    if (type === ICMPV6_NEIGHBOR_SOLICITATION) {
      const ours = iface.addresses.find((a) => a.family === 6 && a.address === targetText);
      if (!ours) {
        this.counters.ignored += 1n;
        return;
      }
      const srcBytes = frame.subarray(22, 38);
      const unspecified = srcBytes.every((b) => b === 0); // DAD probe: answer to all-nodes
      if (!unspecified && option === 1 && optionMac)
        this.neighbors.learn(iface.name, Uint8Array.from(srcBytes), optionMac, false, now);
      const dstMac = unspecified
        ? '33:33:00:00:00:01'
        : (optionMac ?? formatMac(frame.subarray(6, 12)));
      this.inject(
        iface.name,
        neighborAdvertisementFrame({
          srcMac: iface.mac,
          dstMac,
          target: ours.address,
          dst: unspecified ? 'ff02::1' : src,
          solicited: !unspecified,
          router: true,
        }),
      );
      this.counters.ndAdvertisementsSent += 1n;
      return;
    }
    // Neighbor Advertisement: learn the target's MAC; solicited ones confirm reachability.
    const mac = option === 2 ? optionMac : undefined;
    if (mac && connectedInterface([iface], target)) {
      const solicited = (frame[offset + 4]! & 0x40) !== 0;
      this.neighbors.learn(iface.name, Uint8Array.from(target), mac, solicited, now);
    }
  }

  private onTtlExpired(iface: RouterInterface, frame: Buffer, parsed: ParsedFrame): void {
    this.counters.ttlExpired += 1n;
    const local = localAddress(iface, parsed.ipv4 ? 4 : 6);
    if (!local) return; // no address of that family to answer from
    if (!this.icmpErrorAllowed(frame, parsed, 'time_exceeded')) return;
    this.inject(iface.name, timeExceededFrame(frame, iface.mac, local.address));
    this.counters.icmpTimeExceededSent += 1n;
  }

  /**
   * A packet longer than the MTU of the interface its route leaves by: the LPM stage punts it
   * as it came in, its TTL checked (over 1). IPv6, and IPv4 with DF: ICMPv6 packet too big /
   * ICMP fragmentation needed with that MTU (RFC 4443 §3.2, RFC 1191), from the interface it
   * came in on, as time exceeded. IPv4 without DF: fragmented to the MTU and sent on with its
   * TTL less one, in order and MTU-sized, as a router must (RFC 1812 §4.2.2.7).
   */
  private onTooBig(iface: RouterInterface, frame: Buffer, parsed: ParsedFrame): void {
    this.counters.tooBig += 1n;
    const dst = parsed.ipv4?.dst ?? parsed.ipv6?.dst;
    const length = parsed.ipv4 ? parsed.ipv4.totalLength : 40 + (parsed.ipv6?.payloadLength ?? 0);
    const hop = dst && this.fib ? fibLookup(this.fib, parseAddress(dst).bytes) : undefined;
    if (!dst || !hop || length <= hop.mtu) {
      this.counters.ignored += 1n; // the FIB changed since the stage punted it
      return;
    }
    // IPv4 flags at 14 + 6: DF is 0x40 of the first byte
    if (parsed.ipv4 && (frame.readUInt8(20) & 0x40) === 0)
      return this.fragment(frame, parsed.ipv4, hop);
    const local = localAddress(iface, parsed.ipv4 ? 4 : 6);
    if (!local) return; // no address of that family to answer from
    if (!this.icmpErrorAllowed(frame, parsed, 'too_big')) return;
    this.inject(iface.name, packetTooBigFrame(frame, iface.mac, local.address, hop.mtu));
    this.counters.icmpTooBigSent += 1n;
  }

  /**
   * One ICMP error about this packet may go out now: one a router may send (src/icmp-rules.ts)
   * and within the limit; otherwise it is counted as not sent.
   */
  private icmpErrorAllowed(
    frame: Buffer,
    parsed: ParsedFrame,
    error: 'time_exceeded' | 'too_big',
  ): boolean {
    if (!mayAnswerWithIcmpError(frame, parsed, error)) {
      this.counters.icmpSuppressed += 1n;
      return false;
    }
    if (this.icmpLimit.take(this.now())) return true;
    this.counters.icmpRateLimited += 1n;
    return false;
  }

  /** Fragments an IPv4 packet without DF to its next hop's MTU and sends the fragments there. */
  private fragment(frame: Buffer, ipv4: NonNullable<ParsedFrame['ipv4']>, hop: FibNextHop): void {
    if (!hop.dstMac) {
      this.counters.neighborUnresolved += 1n; // as a gleaned packet: resolve, this one is lost
      this.resolveFor(ipv4.dst);
      return;
    }
    // The stage forwards a bad header checksum as it is; a new header must not launder it.
    if (!ipv4.headerChecksumOk || ipv4.ttl <= 1) {
      this.counters.ignored += 1n;
      return;
    }
    const packet = Buffer.from(frame.subarray(14, 14 + ipv4.totalLength));
    packet[8] = ipv4.ttl - 1; // every fragment's header checksum is written anew
    let fragments: Buffer[];
    try {
      fragments = fragmentIpv4(packet, hop.mtu);
    } catch (err) {
      if (!(err instanceof PacketError)) throw err;
      this.counters.ignored += 1n; // e.g. an option whose length runs past the header
      return;
    }
    const eth = ethernetHeader(hop.dstMac, hop.srcMac, ETH_P_IPV4);
    for (const f of fragments) this.inject(hop.port, Buffer.concat([eth, f]));
    this.counters.fragmented += 1n;
    this.counters.fragmentsSent += BigInt(fragments.length);
  }

  /** A packet to `dst` found no MAC: resolve the host itself or the route's gateway. */
  private resolveFor(dst: string): void {
    const bytes = parsePrefix(dst).bytes;
    const connected = connectedInterface(this.interfaces, bytes);
    if (connected) {
      this.neighbors.resolve(connected.iface.name, bytes, this.now());
      return;
    }
    for (const u of this.fib?.unresolved ?? [])
      this.neighbors.resolve(u.iface, u.bytes, this.now());
  }

  private sendProbe(entry: NeighborEntry, unicast: boolean): void {
    const iface = this.interfaces.find((i) => i.name === entry.iface);
    const local = iface && localAddress(iface, entry.family);
    if (!iface || !local) return;
    if (entry.family === 4) {
      const frame = arpFrame({
        op: 'request',
        senderMac: iface.mac,
        senderIp: local.address,
        targetMac: ZERO_MAC,
        targetIp: entry.address,
        ...(unicast && entry.mac ? { dstMac: entry.mac } : {}),
      });
      this.inject(iface.name, frame);
      this.counters.arpRequestsSent += 1n;
    } else {
      this.inject(
        iface.name,
        neighborSolicitationFrame({ srcMac: iface.mac, src: local.address, target: entry.address }),
      );
      this.counters.ndSolicitationsSent += 1n;
    }
  }

  private async program(statics: Parameters<typeof compileFib>[1]): Promise<void> {
    // Cleared before compiling, so a neighbour change during apply() sets it again; put back if
    // this FIB never reaches the dataplane, or its neighbour changes wait for another one.
    const pending = this.reprogram;
    this.reprogram = false;
    let fib: Fib;
    try {
      fib = compileFib(this.interfaces, statics, this.neighbors);
      await this.programmer.apply(fib);
    } catch (err) {
      if (pending) this.reprogram = true;
      throw err;
    }
    this.fib = fib;
    this.gen += 1n;
    for (const u of fib.unresolved) this.neighbors.resolve(u.iface, u.bytes, this.now());
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }
}
