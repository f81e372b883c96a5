/**
 * devargs builders for the port types Flowline uses. Each returns the string DPDK's
 * rte_dev_probe (or EAL --vdev / -a) takes: "<name>,<key>=<value>,...". The device name is the
 * ethdev port name as well, so names must be unique within the process.
 */
import * as path from 'node:path';

import { formatMac, parseMac } from '@flowline/packet';

import { DevargsError } from './errors';

const NAME_RE = /^[A-Za-z0-9_:.-]+$/;
const PCI_RE = /^(?:[0-9a-fA-F]{4,8}:)?[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$/;
/** Unix socket paths must fit sockaddr_un.sun_path (108 bytes with the NUL). */
export const MAX_SOCKET_PATH = 107;

export function isPciAddress(s: string): boolean {
  return PCI_RE.test(s);
}

/** Normalises a PCI address to DPDK's ethdev name form, 0000:03:00.1. */
export function normalizePci(s: string): string {
  if (!isPciAddress(s)) throw new DevargsError(s, 'not a PCI address (expected like 0000:03:00.1)');
  const parts = s.toLowerCase().split(':');
  return parts.length === 2
    ? `0000:${s.toLowerCase()}`
    : s.toLowerCase().replace(/^0+(?=[0-9a-f]{4}:)/, '');
}

/** Checks the shape of a devargs string; throws DevargsError naming the bad part. */
export function validateDevargs(devargs: string): { name: string; kv: Record<string, string> } {
  if (typeof devargs !== 'string' || devargs.length === 0)
    throw new DevargsError(String(devargs), 'empty devargs');
  if (/\s/.test(devargs)) throw new DevargsError(devargs, 'must not contain whitespace');
  const [name, ...rest] = devargs.split(',');
  if (!name || !NAME_RE.test(name))
    throw new DevargsError(devargs, `bad device name "${name ?? ''}"`);
  const kv: Record<string, string> = {};
  for (const part of rest) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new DevargsError(devargs, `"${part}" is not key=value`);
    kv[part.slice(0, eq)] = part.slice(eq + 1);
  }
  return { name, kv };
}

/** The ethdev port name of a devargs string (its device name, PCI addresses normalised). */
export function deviceName(devargs: string): string {
  const { name } = validateDevargs(devargs);
  return isPciAddress(name) ? normalizePci(name) : name;
}

/**
 * devargs with the device name deviceName gives: the port is looked up by that name after the
 * probe, and the PCI bus names its device 0000:03:00.1 however the address was written.
 */
export function canonicalDevargs(devargs: string): string {
  const { name } = validateDevargs(devargs);
  return deviceName(devargs) + devargs.slice(name.length);
}

function build(name: string, kv: Record<string, string | number | boolean | undefined>): string {
  if (!NAME_RE.test(name)) throw new DevargsError(name, `bad device name "${name}"`);
  const parts = [name];
  for (const [k, v] of Object.entries(kv)) {
    if (v === undefined || v === false) continue;
    const s = v === true ? '1' : String(v);
    if (/[,\s]/.test(s))
      throw new DevargsError(name, `${k}="${s}" must not contain commas or whitespace`);
    parts.push(`${k}=${s}`);
  }
  return parts.join(',');
}

function suffix(kind: string, id: string | number): string {
  const s = `${kind}${id}`;
  if (!NAME_RE.test(s)) throw new DevargsError(s, `bad device id "${id}"`);
  return s;
}

function socketPath(kind: string, p: string): string {
  if (!path.isAbsolute(p)) throw new DevargsError(kind, `socket path "${p}" must be absolute`);
  if (Buffer.byteLength(p) > MAX_SOCKET_PATH)
    throw new DevargsError(
      kind,
      `socket path "${p}" is longer than ${MAX_SOCKET_PATH} bytes (unix socket limit)`,
    );
  return p;
}

/** A MAC for a devargs string: parsed by @flowline/packet, written aa:bb:cc:dd:ee:ff. */
function mac(kind: string, m: string | undefined): string | undefined {
  if (m === undefined) return undefined;
  try {
    return formatMac(parseMac(m));
  } catch (err) {
    throw new DevargsError(kind, `mac: ${(err as Error).message}`);
  }
}

function posInt(kind: string, key: string, v: number | undefined, max = 65535): number | undefined {
  if (v === undefined) return undefined;
  if (!Number.isInteger(v) || v < 1 || v > max)
    throw new DevargsError(kind, `${key}=${v} must be an integer in 1..${max}`);
  return v;
}

export const devargs = {
  /** A PCI device (e.g. an SR-IOV VF bound to vfio-pci), optionally with driver args. */
  pci(address: string, args: Record<string, string | number> = {}): string {
    return build(normalizePci(address), args);
  },
  /**
   * virtio-user over a vhost-user socket; server: true makes this side listen (Flowline pods do).
   * packed: packed virtqueues (virtio 1.1) instead of split ones, if the vhost side offers them.
   */
  virtioUser(o: {
    id: string | number;
    path: string;
    server?: boolean;
    queues?: number;
    queueSize?: number;
    mac?: string;
    packed?: boolean;
  }): string {
    const name = suffix('net_virtio_user', o.id);
    return build(name, {
      path: socketPath(name, o.path),
      server: o.server ? 1 : undefined,
      queues: posInt(name, 'queues', o.queues, 128),
      queue_size: posInt(name, 'queueSize', o.queueSize, 32768),
      mac: mac(name, o.mac),
      packed_vq: o.packed ? 1 : undefined,
    });
  },
  /** A vhost-user backend port (the switch side); client: true connects to a listening socket. */
  vhost(o: { id: string | number; iface: string; client?: boolean; queues?: number }): string {
    const name = suffix('net_vhost', o.id);
    return build(name, {
      iface: socketPath(name, o.iface),
      client: o.client ? 1 : undefined,
      queues: posInt(name, 'queues', o.queues, 128),
    });
  },
  /** An rte_ring-backed port: what is sent on a queue is received on the same queue. */
  ring(o: { id: string | number }): string {
    return build(suffix('net_ring', o.id), {});
  },
  /** Drops everything sent; receives nothing unless `copy`. */
  null(o: { id: string | number; size?: number }): string {
    const name = suffix('net_null', o.id);
    return build(name, { size: posInt(name, 'size', o.size, 9000) });
  },
  tap(o: { id: string | number; iface?: string; mac?: string }): string {
    const name = suffix('net_tap', o.id);
    if (o.iface !== undefined && !/^[A-Za-z0-9_.-]{1,15}$/.test(o.iface))
      throw new DevargsError(name, `iface "${o.iface}" is not a valid interface name`);
    return build(name, { iface: o.iface, mac: mac(name, o.mac) });
  },
  afPacket(o: { id: string | number; iface: string; qpairs?: number }): string {
    const name = suffix('net_af_packet', o.id);
    if (!/^[A-Za-z0-9_.-]{1,15}$/.test(o.iface))
      throw new DevargsError(name, `iface "${o.iface}" is not a valid interface name`);
    return build(name, { iface: o.iface, qpairs: posInt(name, 'qpairs', o.qpairs, 16) });
  },
  memif(o: {
    id: string | number;
    socket: string;
    role?: 'server' | 'client';
    memifId?: number;
  }): string {
    const name = suffix('net_memif', o.id);
    return build(name, { socket: socketPath(name, o.socket), role: o.role, id: o.memifId });
  },
  pcap(o: { id: string | number; rxPcap?: string; txPcap?: string; iface?: string }): string {
    const name = suffix('net_pcap', o.id);
    if (!o.rxPcap && !o.txPcap && !o.iface)
      throw new DevargsError(name, 'give rxPcap, txPcap or iface');
    return build(name, { rx_pcap: o.rxPcap, tx_pcap: o.txPcap, iface: o.iface });
  },
};
