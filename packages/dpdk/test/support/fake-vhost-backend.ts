/**
 * A vhost-user backend in client mode, as OVS's dpdkvhostuserclient is, that speaks just
 * enough of the protocol (docs: QEMU's vhost-user.rst) to drive a virtio-user front-end
 * through its handshakes and record them: it answers GET_FEATURES, GET_PROTOCOL_FEATURES (no
 * protocol features) and GET_VRING_BASE, records every message, and reconnects whenever a
 * connection ends, as OVS does. `dropFirstAt` makes it drop its first connection right after a
 * given message, as OVS drops one whose handling failed. Descriptors passed with SCM_RIGHTS
 * are not taken (node:net cannot), so the kernel closes them: no memory is mapped.
 */
import { connect, type Socket } from 'node:net';

export const VHOST_USER = {
  GET_FEATURES: 1,
  SET_FEATURES: 2,
  SET_OWNER: 3,
  SET_MEM_TABLE: 5,
  SET_VRING_NUM: 8,
  SET_VRING_ADDR: 9,
  SET_VRING_BASE: 10,
  GET_VRING_BASE: 11,
  SET_VRING_KICK: 12,
  SET_VRING_CALL: 13,
  GET_PROTOCOL_FEATURES: 15,
  SET_PROTOCOL_FEATURES: 16,
  SET_VRING_ENABLE: 18,
} as const;

const HEADER = 12;
const VERSION = 0x1;
const REPLY = 0x4;
/** VIRTIO_F_VERSION_1, VIRTIO_NET_F_MRG_RXBUF and VHOST_USER_F_PROTOCOL_FEATURES. */
const FEATURES = (1n << 32n) | (1n << 15n) | (1n << 30n);

export interface VhostMessage {
  request: number;
  /** For the vring state messages (SET_VRING_NUM/BASE/ENABLE, GET_VRING_BASE). */
  index?: number;
  num?: number;
}

export interface VhostConnection {
  messages: VhostMessage[];
  /** True when this side ended it (dropFirstAt), false when the front-end did. */
  droppedByBackend: boolean;
  ended: boolean;
}

const STATE_MESSAGES = new Set<number>([
  VHOST_USER.SET_VRING_NUM,
  VHOST_USER.SET_VRING_BASE,
  VHOST_USER.GET_VRING_BASE,
  VHOST_USER.SET_VRING_ENABLE,
]);

export class FakeVhostBackend {
  readonly connections: VhostConnection[] = [];
  private socket: Socket | undefined;
  private stopped = false;
  private retry: NodeJS.Timeout | undefined;

  constructor(
    readonly path: string,
    private readonly opts: { dropFirstAt?: (m: VhostMessage) => boolean } = {},
  ) {}

  start(): void {
    this.stopped = false;
    this.connectSoon(0);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retry);
    this.socket?.destroy();
  }

  /** The queue pairs' vrings the backend was last told to enable, per connection. */
  enabledVrings(conn: VhostConnection): number[] {
    const state = new Map<number, number>();
    for (const m of conn.messages)
      if (m.request === VHOST_USER.SET_VRING_ENABLE) state.set(m.index!, m.num!);
    return [...state]
      .filter(([, on]) => on === 1)
      .map(([i]) => i)
      .sort();
  }

  private connectSoon(ms: number): void {
    if (this.stopped) return;
    this.retry = setTimeout(() => this.connectOnce(), ms);
  }

  private connectOnce(): void {
    const socket = connect(this.path);
    let conn: VhostConnection | undefined;
    let buf = Buffer.alloc(0);
    socket.on('connect', () => {
      conn = { messages: [], droppedByBackend: false, ended: false };
      this.connections.push(conn);
      this.socket = socket;
    });
    socket.on('data', (chunk: Buffer) => {
      if (!conn) return;
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= HEADER) {
        const size = buf.readUInt32LE(8);
        if (buf.length < HEADER + size) break;
        const request = buf.readUInt32LE(0);
        const payload = buf.subarray(HEADER, HEADER + size);
        buf = buf.subarray(HEADER + size);
        const m: VhostMessage = { request };
        if (STATE_MESSAGES.has(request) && size >= 8) {
          m.index = payload.readUInt32LE(0);
          m.num = payload.readUInt32LE(4);
        }
        conn.messages.push(m);
        this.reply(socket, m);
        if (this.connections.length === 1 && this.opts.dropFirstAt?.(m)) {
          conn.droppedByBackend = true;
          socket.destroy();
          return;
        }
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      if (conn) conn.ended = true;
      if (this.socket === socket) this.socket = undefined;
      this.connectSoon(conn ? 0 : 20);
    });
  }

  private reply(socket: Socket, m: VhostMessage): void {
    const header = (size: number): Buffer => {
      const h = Buffer.alloc(HEADER);
      h.writeUInt32LE(m.request, 0);
      h.writeUInt32LE(VERSION | REPLY, 4);
      h.writeUInt32LE(size, 8);
      return h;
    };
    if (m.request === VHOST_USER.GET_FEATURES || m.request === VHOST_USER.GET_PROTOCOL_FEATURES) {
      const v = Buffer.alloc(8);
      v.writeBigUInt64LE(m.request === VHOST_USER.GET_FEATURES ? FEATURES : 0n);
      socket.write(Buffer.concat([header(8), v]));
    } else if (m.request === VHOST_USER.GET_VRING_BASE) {
      const v = Buffer.alloc(8);
      v.writeUInt32LE(m.index ?? 0, 0);
      socket.write(Buffer.concat([header(8), v]));
    }
  }
}
