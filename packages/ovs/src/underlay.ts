import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { parseAddress } from '@flowline/packet';
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
/**
 * Open_vSwitch external_ids key holding the node's underlay address with its prefix
 * (`10.0.0.5/24`): set by setUpUnderlay and by the chart's OVS container (start.sh), read by a
 * chain controller that makes the tunnels between nodes (readUnderlayAddress).
 */
export const UNDERLAY_ADDRESS_ID = 'flowline-underlay-address';

/**
 * The chain bridge over an OVSDB connection, all a tunnel port needs: a local OVS's, or a
 * node's reached over TCP or SSL by a chain controller.
 */
export interface TunnelBridge {
  vswitch: Pick<VSwitch, 'addPort' | 'waitForInterface' | 'delPort' | 'listPorts'>;
  /** The chain bridge: tunnel ports go on it. */
  bridge: string;
}

/** A tunnel bridge, with the local switch's run dir and netns when it is one (for the errors). */
type TunnelSwitch = TunnelBridge & Partial<Pick<SwitchHandle, 'runDir' | 'netns'>>;

/** Whether `text` is an IPv4 or IPv6 address, by @flowline/packet's one address parser. */
function isAddress(text: string): boolean {
  try {
    parseAddress(text);
    return true;
  } catch {
    return false;
  }
}

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

async function step<T>(sw: TunnelSwitch, what: string, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (err) {
    const where = sw.runDir ? `the switch in ${sw.runDir}` : `bridge ${sw.bridge}`;
    throw new TunnelSetupError(
      `${what} on ${where}: ${(err as Error).message}`,
      {
        step: what,
        bridge: sw.bridge,
        ...(sw.runDir !== undefined ? { runDir: sw.runDir, netns: sw.netns } : {}),
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
  await step(sw, `recording the underlay address ${options.address}`, () =>
    sw.vswitch.setExternalIds({ [UNDERLAY_ADDRESS_ID]: options.address }),
  );
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
  const { port } = await ensureTunnelPort(sw, peer.address, options);
  const mac = peer.mac;
  if (mac) {
    const bridge = options.underlayBridge ?? DEFAULT_UNDERLAY_BRIDGE;
    await step(sw, `setting ${peer.address}'s MAC ${mac} on ${bridge}`, () =>
      appctl(sw, ['tnl/neigh/set', bridge, peer.address, mac], 'tnl/neigh/set'),
    );
  }
  return port;
}

/**
 * The Geneve port to a peer node's underlay address on the chain bridge (key=flow: the flows
 * set and match the key; external_ids TUNNEL_PEER_ID = the address), added when missing, once
 * OVS has given it an OpenFlow port number. Idempotent: `created` says whether this call added
 * it. An existing port is checked as a new one is (a TunnelSetupError when OVS reports an error
 * on it or gives it no port number in time); one this call added that fails the check is removed
 * again before the error is thrown. Needs only OVSDB (no unixctl), so a chain controller can do it on a node's OVS remotely;
 * addTunnelPeer does it and also sets the peer's MAC.
 */
export async function ensureTunnelPort(
  sw: TunnelSwitch,
  peerAddress: string,
  options: { timeoutMs?: number } = {},
): Promise<{ port: string; created: boolean }> {
  const port = tunnelPortName(peerAddress);
  return step(sw, `adding tunnel port ${port} to ${peerAddress}`, async () => {
    if (!isAddress(peerAddress)) throw new Error(`"${peerAddress}" is not an IP address`);
    const created = await sw.vswitch.addPort(sw.bridge, port, {
      type: 'geneve',
      options: { remote_ip: peerAddress, key: 'flow', dst_port: String(GENEVE_UDP_PORT) },
      externalIds: { [TUNNEL_PEER_ID]: peerAddress },
    });
    try {
      // An existing port is checked as a new one is: OVS opened it (an ofport, no error).
      const iface = await sw.vswitch.waitForInterface(
        port,
        (i) => (i.ofport ?? 0) > 0 || !!i.error,
        options.timeoutMs ?? 15_000,
        'an OpenFlow port number',
      );
      if (iface.error) throw new Error(`OVS could not open it: ${iface.error}`);
    } catch (err) {
      // A port this call added and OVS did not open is removed: left, it would pass for a
      // working tunnel to whoever lists the bridge's tunnel ports. One that was there is left.
      if (!created) throw err;
      const cleanupError = await sw.vswitch.delPort(port).then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      if (cleanupError === undefined) throw err;
      throw new Error(
        `${(err as Error).message}; removing the port again failed too: ${cleanupError.message}`,
        { cause: err },
      );
    }
    return { port, created };
  });
}

/**
 * The node's underlay address as recorded in Open_vSwitch external_ids (UNDERLAY_ADDRESS_ID),
 * without its prefix length; undefined when none is recorded. A recorded value that is not an
 * address is a TunnelSetupError naming it.
 */
export async function readUnderlayAddress(
  vswitch: Pick<VSwitch, 'getOpenVSwitch'>,
): Promise<string | undefined> {
  const recorded = (await vswitch.getOpenVSwitch()).externalIds[UNDERLAY_ADDRESS_ID];
  if (recorded === undefined || recorded === '') return undefined;
  const address = recorded.split('/')[0] ?? '';
  if (!isAddress(address))
    throw new TunnelSetupError(
      `Open_vSwitch external_ids:${UNDERLAY_ADDRESS_ID} is "${recorded}", not an address (address/prefix)`,
      { recorded },
    );
  return address;
}

/** Removes the tunnel port to a peer node; false when there was none. */
export async function removeTunnelPeer(sw: TunnelSwitch, peerAddress: string): Promise<boolean> {
  return step(sw, `removing the tunnel port to ${peerAddress}`, () =>
    sw.vswitch.delPort(tunnelPortName(peerAddress)),
  );
}

/** The chain bridge's tunnel ports: peer address → port name. */
export async function listTunnelPeers(sw: TunnelBridge): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const p of await sw.vswitch.listPorts(sw.bridge)) {
    const peer = p.externalIds[TUNNEL_PEER_ID];
    // A port OVS failed to open (an error, ofport -1) is no tunnel: listed, it would be used as
    // one and drop what is sent into it. One still being opened (no ofport yet) is listed.
    const iface = p.interfaces[0];
    const failed = iface !== undefined && (!!iface.error || iface.ofport === -1);
    if (peer && !failed) out.set(peer, p.name);
  }
  return out;
}
