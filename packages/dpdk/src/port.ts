import { formatMac, parseMac } from '@flowline/packet';

import { PortError, nativeError } from './errors';
import { requireEal } from './eal';
import type { Mempool } from './mempool';
import type { PacketBatch } from './batch';
import { canonicalDevargs, deviceName, validateDevargs } from './devargs';
import { native, type NativeLink, type NativePortInfo, type NativeStats } from './native';
import { VhostHandshakeWatch } from './vhost-watch';

export interface PortOptions {
  rxQueues?: number;
  txQueues?: number;
  rxDescriptors?: number;
  txDescriptors?: number;
  mtu?: number;
  promiscuous?: boolean;
  /** Set the port's MAC address (aa:bb:cc:dd:ee:ff). */
  mac?: string;
  /** Start the port after configuring it (default true). */
  start?: boolean;
  /**
   * Ask for rx queue interrupts (default false), so that a pipeline in rxMode adaptive or
   * interrupt can sleep until the peer kicks: virtio-user and net_vhost queues have them
   * (eventfd kick/call). A driver that refuses them is configured without; its workers fall
   * back to the timer back-off.
   */
  rxInterrupts?: boolean;
}

export type LinkState = NativeLink;
export type PortStats = NativeStats;

/** What runs on a port from a worker lcore (a pipeline, a generator, a replay). */
export interface PortUser {
  close(): void;
}

/** The ports open now, by id (an id of a closed port is DPDK's to give to the next one). */
const openPorts = new Map<number, Port>();

/** @internal The open Port of an id given as `Port | number`, if there is one. */
export function openPort(p: Port | number): Port | undefined {
  return typeof p === 'number' ? openPorts.get(p) : p;
}

function wrap<T>(port: string, op: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    const n = nativeError(e);
    throw new PortError(port, n.message, n.op ?? op, n.errno);
  }
}

/**
 * An ethdev port. Port.open probes devargs (PCI, net_virtio_user, net_vhost, net_ring, ...),
 * configures queues on a mempool and starts it. Queue q of a port may be used by one thread
 * at a time: a pipeline worker or JavaScript, never both.
 */
export class Port {
  private closed = false;
  private untrack: () => void;
  private started = false;
  private readonly vhost: VhostHandshakeWatch | undefined;
  /** The pool its rx queues receive into, and the queue counts set up (none until configured). */
  private pool: Mempool | undefined;
  private rxQueues = 0;
  private txQueues = 0;
  /**
   * What polls or sends on it from an lcore, by description: closed under them, DPDK would give
   * its id to the next port attached while they still poll or send on it (a NULL queue).
   */
  private readonly users = new Map<PortUser, string>();

  private constructor(
    readonly id: number,
    readonly name: string,
    readonly devargs: string,
    private readonly probed: boolean,
  ) {
    // Eal.cleanup: a pipeline given this port after it was opened (a next hop, an inject) is
    // closed after it, so its users go first
    this.untrack = requireEal().track(() => {
      for (const u of [...this.users.keys()]) u.close();
      this.close();
    });
    this.vhost = VhostHandshakeWatch.forDevargs(devargs);
    openPorts.set(id, this);
  }

  /** Probes devargs with rte_dev_probe, configures and starts the port. */
  static open(devargs: string, pool: Mempool, opts: PortOptions = {}): Port {
    requireEal().assertRunning();
    validateDevargs(devargs);
    const name = deviceName(devargs);
    const id = wrap(name, 'rte_dev_probe', () => native().portProbe(canonicalDevargs(devargs)));
    const port = new Port(id, name, devargs, true);
    try {
      port.setup(pool, opts);
    } catch (e) {
      port.close(); // detach so the process stays usable and the name can be probed again
      throw e;
    }
    return port;
  }

  /** Attaches a port that EAL created from --vdev or -a, by its name. */
  static attach(name: string, pool: Mempool, opts: PortOptions = {}): Port {
    requireEal().assertRunning();
    const id = native().portFind(name);
    if (id === null)
      throw new PortError(
        name,
        'no such port: give it in EalOptions.vdevs/pciAllow or use Port.open(devargs)',
        'rte_eth_dev_get_port_by_name',
      );
    const port = new Port(id, name, name, false);
    port.setup(pool, opts);
    return port;
  }

  private setup(pool: Mempool, o: PortOptions): void {
    const q = (v: number | undefined, d: number, what: string, max: number): number => {
      const x = v ?? d;
      if (!Number.isInteger(x) || x < 1 || x > max)
        throw new PortError(this.name, `${what}=${x} must be an integer in 1..${max}`, 'configure');
      return x;
    };
    const conf = {
      pool: pool.handle,
      rxQueues: q(o.rxQueues, 1, 'rxQueues', 1024),
      txQueues: q(o.txQueues, 1, 'txQueues', 1024),
      rxDescriptors: q(o.rxDescriptors, 1024, 'rxDescriptors', 32768),
      txDescriptors: q(o.txDescriptors, 1024, 'txDescriptors', 32768),
      ...(o.mtu !== undefined ? { mtu: q(o.mtu, 1500, 'mtu', 65535) } : {}),
      rxInterrupts: o.rxInterrupts === true,
    };
    // the queues hold the pool's mbufs from here on, so the pool must outlive this port
    pool.use(this, `port ${this.name}`);
    this.pool = pool;
    wrap(this.name, 'configure', () => native().portConfigure(this.id, conf));
    this.rxQueues = conf.rxQueues;
    this.txQueues = conf.txQueues;
    if (o.mac !== undefined) this.setMac(o.mac);
    if (o.start ?? true) this.start();
    if (o.promiscuous !== undefined) this.setPromiscuous(o.promiscuous);
  }

  info(): NativePortInfo {
    this.assertOpen();
    return wrap(this.name, 'info', () => native().portInfo(this.id));
  }

  start(): void {
    this.assertOpen();
    wrap(this.name, 'rte_eth_dev_start', () => native().portStart(this.id));
    this.started = true;
  }

  stop(): void {
    this.assertOpen();
    wrap(this.name, 'rte_eth_dev_stop', () => native().portStop(this.id));
    this.started = false;
  }

  get isStarted(): boolean {
    return this.started;
  }

  /**
   * The link now. For a server=1 virtio-user port the reading also redoes a vhost-user
   * handshake DPDK reported broken (vhost-watch.ts): read it regularly (the NF runtime does,
   * every 100 ms), as a server=1 port needs anyway to accept a returning switch.
   */
  link(): LinkState {
    this.assertOpen();
    const l = wrap(this.name, 'link', () => native().portLink(this.id));
    const vhost = this.vhost;
    if (vhost) wrap(this.name, 'vhost-user reconnect', () => vhost.observe(l.up));
    return l;
  }

  /** vhost-user handshakes redone after DPDK reported them broken (server=1 virtio-user). */
  get vhostHandshakesRedone(): number {
    return this.vhost?.redone ?? 0;
  }

  /** Polls the link every intervalMs and calls cb on each change; returns the unsubscribe. */
  onLinkChange(cb: (link: LinkState) => void, intervalMs = 100): () => void {
    this.assertOpen();
    let last = this.link().up;
    const t = setInterval(() => {
      if (this.closed) return clearInterval(t);
      const l = this.link();
      if (l.up !== last) {
        last = l.up;
        cb(l);
      }
    }, intervalMs);
    t.unref();
    return () => clearInterval(t);
  }

  mac(): string {
    this.assertOpen();
    return formatMac(wrap(this.name, 'mac', () => native().portMac(this.id)));
  }

  macBytes(): Buffer {
    this.assertOpen();
    return wrap(this.name, 'mac', () => native().portMac(this.id));
  }

  setMac(mac: string): void {
    this.assertOpen();
    const b = Buffer.from(parseMac(mac));
    wrap(this.name, 'set mac', () => native().portMac(this.id, b));
  }

  mtu(): number {
    this.assertOpen();
    return wrap(this.name, 'mtu', () => native().portMtu(this.id));
  }

  setMtu(mtu: number): void {
    this.assertOpen();
    wrap(this.name, 'set mtu', () => native().portMtu(this.id, mtu));
  }

  promiscuous(): boolean {
    this.assertOpen();
    return wrap(this.name, 'promiscuous', () => native().portPromisc(this.id));
  }

  setPromiscuous(on: boolean): void {
    this.assertOpen();
    wrap(this.name, 'promiscuous', () => native().portPromisc(this.id, on));
  }

  stats(): PortStats {
    this.assertOpen();
    return wrap(this.name, 'stats', () => native().portStats(this.id));
  }

  xstats(): Record<string, number> {
    this.assertOpen();
    return wrap(this.name, 'xstats', () => native().portXstats(this.id));
  }

  resetStats(): void {
    this.assertOpen();
    wrap(this.name, 'stats reset', () => native().portStatsReset(this.id));
  }

  /** Receives up to batch.capacity packets into the batch (see PacketBatch's ownership rule). */
  rxBurst(queue: number, batch: PacketBatch): number {
    this.checkQueue(queue, this.rxQueues, 'rx');
    // the batch's offsets index its own pool's view: mbufs of another pool would not be viewable
    if (batch.pool !== this.pool)
      throw new PortError(
        this.name,
        `the batch views mempool ${batch.pool.name} but the rx queues receive into ${this.pool?.name ?? 'none'}`,
        'rx',
      );
    return native().rxBurst(this.id, queue, batch.handle);
  }

  /**
   * The JS batch API's adaptive rx (a port opened with `rxInterrupts: true`): `rxArm(queue)`
   * arms the queue's interrupt; poll once more (a burst that landed before arming raised no
   * kick); if that was empty, `await rxWait(queue, ms)` sleeps until the peer kicks (true) or
   * the timeout (false), and disarms; otherwise `rxArm(queue, false)`.
   */
  rxArm(queue: number, on = true): void {
    this.checkQueue(queue, this.rxQueues, 'rx');
    wrap(this.name, 'rx interrupt', () => native().rxIntrArm(this.id, queue, on));
  }

  rxWait(queue: number, timeoutMs: number): Promise<boolean> {
    this.checkQueue(queue, this.rxQueues, 'rx');
    return wrap(this.name, 'rx interrupt', () =>
      native().rxIntrWait(this.id, queue, Math.max(0, Math.round(timeoutMs))),
    );
  }

  /** Sends the batch's packets; the batch is empty afterwards. Returns how many were sent. */
  txBurst(queue: number, batch: PacketBatch): number {
    this.checkQueue(queue, this.txQueues, 'tx');
    return native().txBurst(this.id, queue, batch.handle);
  }

  /** Copies packets into mbufs of pool and sends them (tests, slow paths). Returns sent. */
  send(queue: number, pool: Mempool, packets: Buffer[]): number {
    this.checkQueue(queue, this.txQueues, 'tx');
    if (pool.isFreed) throw new PortError(this.name, `mempool ${pool.name} was freed`, 'tx');
    return wrap(this.name, 'tx', () => native().txCopy(this.id, queue, pool.handle, packets));
  }

  /** Receives up to max packets as copies (tests, slow paths). */
  receive(queue: number, max = 256): Buffer[] {
    this.checkQueue(queue, this.rxQueues, 'rx');
    return wrap(this.name, 'rx', () => native().rxCopy(this.id, queue, max));
  }

  /**
   * Stops the port and detaches its device (rte_dev_remove), so the name can be probed again.
   * Refused while a pipeline, generator or replay uses it: close them first.
   */
  close(): void {
    if (this.closed) return;
    if (this.users.size > 0)
      throw new PortError(
        this.name,
        `still used by ${[...this.users.values()].join(', ')}: close them first`,
        'close',
      );
    this.closed = true;
    this.untrack();
    if (openPorts.get(this.id) === this) openPorts.delete(this.id);
    wrap(this.name, 'close', () => native().portClose(this.id));
    // only once the device released its queues: a failed close keeps the pool from being freed
    this.pool?.unuse(this);
  }

  /** @internal a pipeline, generator or replay that polls or sends on this port. */
  use(user: PortUser, what: string): void {
    this.assertOpen();
    this.users.set(user, what);
  }

  /** @internal */
  unuse(user: PortUser): void {
    this.users.delete(user);
  }

  /** DPDK gives a closed port's id to the next port it attaches: never act on it again. */
  private assertOpen(): void {
    if (this.closed) throw new PortError(this.name, 'the port was closed', 'port');
  }

  /** rte_eth_rx_burst and tx_burst do not check the queue: a queue not set up is a NULL deref. */
  private checkQueue(queue: number, count: number, dir: 'rx' | 'tx'): void {
    this.assertOpen();
    if (!Number.isInteger(queue) || queue < 0 || queue >= count)
      throw new PortError(
        this.name,
        `${dir} queue ${queue} does not exist: the port has ${count} ${dir} queue${count === 1 ? '' : 's'}`,
        dir,
      );
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** @internal */
  get wasProbed(): boolean {
    return this.probed;
  }
}
