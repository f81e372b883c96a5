// A server=1 virtio-user port whose vhost-user handshake broke, put back (native/fl_vhost.c
// says why DPDK 22.11 leaves such a port dead while its link reads up): once DPDK has reported
// the device's stop or start failed and the link has read up for a moment, the connected
// socket is shut down, the switch reconnects, and that handshake enables the queues again.
import { validateDevargs } from './devargs';
import { native } from './native';

/**
 * How long the link must read up before the connection is reset: a reconnection's handshake
 * takes a few ms after the link first reads up (DPDK marks it up on accept), and a reset in
 * the middle of it would break it again.
 */
export const VHOST_REDO_SETTLE_MS = 200;

/** What the watch needs from DPDK: the broken-handshake report and the reset. */
export interface VhostHandshakeIo {
  takeBroken(path: string): boolean;
  kick(path: string): number;
}

const nativeIo: VhostHandshakeIo = {
  takeBroken: (path) => native().vhostTakeBroken(path),
  kick: (path) => native().vhostKick(path),
};

export class VhostHandshakeWatch {
  private pending = false;
  private upSince: number | undefined;
  /** Handshakes redone: connections reset after DPDK reported this socket's handshake broken. */
  redone = 0;

  constructor(
    readonly socketPath: string,
    private readonly io: VhostHandshakeIo = nativeIo,
    private readonly now: () => number = Date.now,
  ) {}

  /** The watch of a net_virtio_user devargs with server=1 and a path; other ports have none. */
  static forDevargs(devargs: string, io?: VhostHandshakeIo): VhostHandshakeWatch | undefined {
    const { name, kv } = validateDevargs(devargs);
    if (!name.startsWith('net_virtio_user') || kv.server !== '1' || !kv.path) return undefined;
    return new VhostHandshakeWatch(kv.path, io);
  }

  /** Called with each link reading; returns the sockets reset by this call (usually 0). */
  observe(up: boolean): number {
    if (this.io.takeBroken(this.socketPath)) {
      this.pending = true;
      this.upSince = undefined;
    }
    if (!this.pending) return 0;
    if (!up) {
      this.upSince = undefined;
      return 0;
    }
    const now = this.now();
    this.upSince ??= now;
    if (now - this.upSince < VHOST_REDO_SETTLE_MS) return 0;
    this.pending = false;
    this.upSince = undefined;
    const kicked = this.io.kick(this.socketPath);
    if (kicked > 0) this.redone += 1;
    return kicked;
  }
}
