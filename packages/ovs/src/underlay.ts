import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { OvsError } from './errors';
import { run } from './run';
import { GENEVE_UDP_PORT } from './tunnel-key';
import type { VSwitch } from './vswitch';

/**
 * Tunnels between node switches on OVS-DPDK's userspace datapath (datapath_type=netdev), the
 * way OVS's userspace tunnelling works (OVS docs, "Userspace tunneling"): the node's underlay
 * port (a NIC as a DPDK port, or on a test bed a veth through DPDK's net_af_packet) sits on its
 * own netdev bridge, br-underlay, whose internal port (a tap in ovs-vswitchd's network namespace)
 * holds the node's underlay address; OVS learns the route to the peers from that kernel address
 * and resolves their MACs by ARP on br-underlay (or is told them: tnl/neigh/set). The chain
 * bridge (br-flowline) has one Geneve port per peer node; a packet output there is encapsulated
 * in userspace (tnl_push) and leaves through br-underlay's port, and one arriving there for the
 * node's address and UDP 6081 is decapsulated (tnl_pop) and enters br-flowline on the tunnel
 * port with its key (src/tunnel-key.ts).
 */

export const DEFAULT_UNDERLAY_BRIDGE = 'br-underlay';
/** external_ids key on a tunnel port (Port and Interface): the peer node's underlay address. */
export const TUNNEL_PEER_ID = 'flowline-tunnel-peer';

/** The switch the underlay and tunnels are set up on (an OvsDpdk is one). */
export interface SwitchHandle {
  vswitch: VSwitch;
  /** The chain bridge: tunnel ports go on it. */
  bridge: string;
  /** ovs-vswitchd's run dir: `ovs-vswitchd.ctl` there is its unixctl socket (ovs-appctl). */
  runDir: string;
  /** The network namespace ovs-vswitchd runs in (its taps are there); '' for the host's. */
  netns: string;
}

export interface UnderlayOptions {
  /** The underlay bridge; default br-underlay. */
  bridge?: string;
  /**
   * The port carrying tunnelled packets off the node: a DPDK port, `devargs` as OVS's
   * options:dpdk-devargs takes them (a NIC's PCI address, or `afPacketDevargs(...)` for a
   * kernel interface such as a veth).
   */
  port: { name: string; devargs: string };
  /**
   * The node's underlay address with its subnet, e.g. `10.0.0.5/24` (in a cluster the node's
   * InternalIP). Handed to `ip` as written: the caller validates it (@flowline/packet).
   */
  address: string;
  /** mtu_request of the underlay port (the tunnel overhead is 50 bytes with the chain option 58). */
  mtu?: number;
  timeoutMs?: number;
}

export interface Underlay {
  bridge: string;
  port: string;
  address: string;
  /** The MAC of br-underlay's internal port: what peers send tunnelled packets to. */
  mac: string;
}

/** Setting up the underlay or a tunnel failed; `context` names the step and the switch. */
export class TunnelSetupError extends OvsError {}

/**
 * DPDK devargs for a kernel interface through net_af_packet (a veth on a test bed, or a NIC
 * the kernel keeps): the vdev name is derived from the port name, so one switch can have several.
 */
export function afPacketDevargs(portName: string, iface: string): string {
  return `net_af_packet_${portName.replace(/[^A-Za-z0-9]/g, '')},iface=${iface}`;
}

/** The tunnel port to a peer node: `gnv` and a hash of its address (an interface name fits 15 bytes). */
export function tunnelPortName(peerAddress: string): string {
  return `gnv${createHash('sha1').update(peerAddress).digest('hex').slice(0, 10)}`;
}

/** ovs-appctl to this switch's ovs-vswitchd. */
export function appctl(
  sw: Pick<SwitchHandle, 'runDir'>,
  args: string[],
  what: string,
): Promise<string> {
  return run('ovs-appctl', ['-t', join(sw.runDir, 'ovs-vswitchd.ctl'), ...args], { what });
}

const ipArgs = (netns: string, args: string[]): string[] => (netns ? ['-n', netns, ...args] : args);

async function step<T>(sw: SwitchHandle, what: string, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (err) {
    throw new TunnelSetupError(
      `${what} on the switch in ${sw.runDir}: ${(err as Error).message}`,
      {
        step: what,
        runDir: sw.runDir,
        netns: sw.netns,
      },
      { cause: err },
    );
  }
}

/**
 * Sets up the node's underlay: br-underlay (netdev, standalone: a learning switch between the
 * underlay port and the node's address), the underlay port, and the address on br-underlay's
 * tap. Idempotent: run it again after ovs-vswitchd restarts (the tap and its address are gone).
 */
export async function setUpUnderlay(sw: SwitchHandle, options: UnderlayOptions): Promise<Underlay> {
  const bridge = options.bridge ?? DEFAULT_UNDERLAY_BRIDGE;
  const timeoutMs = options.timeoutMs ?? 15_000;
  const { name, devargs } = options.port;
  await step(sw, `adding bridge ${bridge}`, () =>
    sw.vswitch.addBridge(bridge, { datapathType: 'netdev', failMode: 'standalone' }),
  );
  await step(sw, `adding the underlay port ${name} (${devargs})`, async () => {
    await sw.vswitch.addPort(bridge, name, {
      type: 'dpdk',
      options: { 'dpdk-devargs': devargs },
      ...(options.mtu ? { mtuRequest: options.mtu } : {}),
    });
    const iface = await sw.vswitch.waitForInterface(
      name,
      (i) => (i.ofport ?? 0) > 0 || !!i.error,
      timeoutMs,
      'an OpenFlow port number',
    );
    if (iface.error) throw new Error(`OVS could not open it: ${iface.error}`);
  });
  const mac = await step(sw, `addressing ${bridge} with ${options.address}`, async () => {
    const iface = await sw.vswitch.waitForInterface(
      bridge,
      (i) => (i.ofport ?? -1) >= 0 && !!i.macInUse,
      timeoutMs,
      'its tap',
    );
    // The tap appears in the kernel a moment after OVS records the port.
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        await run('ip', ipArgs(sw.netns, ['link', 'show', 'dev', bridge]));
        break;
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    await run('ip', ipArgs(sw.netns, ['addr', 'replace', options.address, 'dev', bridge]));
    await run('ip', ipArgs(sw.netns, ['link', 'set', 'dev', bridge, 'up']));
    return iface.macInUse ?? '';
  });
  return { bridge, port: name, address: options.address.split('/')[0] ?? options.address, mac };
}

export interface TunnelPeer {
  /** The peer node's underlay address. */
  address: string;
  /** Its br-underlay MAC when known: set in OVS's tunnel neighbour cache, so no packet waits for ARP. */
  mac?: string;
}

/**
 * Adds (or keeps) the Geneve port to a peer node on the chain bridge, key=flow (the flows set
 * and match the key), and its neighbour entry when the MAC is given. Returns the port's name.
 */
export async function addTunnelPeer(
  sw: SwitchHandle,
  peer: TunnelPeer,
  options: { underlayBridge?: string; timeoutMs?: number } = {},
): Promise<string> {
  const port = tunnelPortName(peer.address);
  await step(sw, `adding tunnel port ${port} to ${peer.address}`, async () => {
    await sw.vswitch.addPort(sw.bridge, port, {
      type: 'geneve',
      options: { remote_ip: peer.address, key: 'flow', dst_port: String(GENEVE_UDP_PORT) },
      externalIds: { [TUNNEL_PEER_ID]: peer.address },
    });
    const iface = await sw.vswitch.waitForInterface(
      port,
      (i) => (i.ofport ?? 0) > 0 || !!i.error,
      options.timeoutMs ?? 15_000,
      'an OpenFlow port number',
    );
    if (iface.error) throw new Error(`OVS could not open it: ${iface.error}`);
  });
  const mac = peer.mac;
  if (mac) {
    const bridge = options.underlayBridge ?? DEFAULT_UNDERLAY_BRIDGE;
    await step(sw, `setting ${peer.address}'s MAC ${mac} on ${bridge}`, () =>
      appctl(sw, ['tnl/neigh/set', bridge, peer.address, mac], 'tnl/neigh/set'),
    );
  }
  return port;
}

/** Removes the tunnel port to a peer node; false when there was none. */
export async function removeTunnelPeer(sw: SwitchHandle, peerAddress: string): Promise<boolean> {
  return step(sw, `removing the tunnel port to ${peerAddress}`, () =>
    sw.vswitch.delPort(tunnelPortName(peerAddress)),
  );
}

/** The chain bridge's tunnel ports: peer address → port name. */
export async function listTunnelPeers(
  sw: Pick<SwitchHandle, 'vswitch' | 'bridge'>,
): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const p of await sw.vswitch.listPorts(sw.bridge)) {
    const peer = p.externalIds[TUNNEL_PEER_ID];
    if (peer) out.set(peer, p.name);
  }
  return out;
}
