import { OvsError } from './errors';

/**
 * What a packet between two node switches carries, so the receiving switch steers it to the
 * right hop of the right chain and counts it there: Geneve (RFC 8926), the 32-bit chain key in
 * one Geneve option (tun_metadata0) and the hop in the 24-bit VNI (tun_id). Geneve rather than
 * VXLAN because the chain key the flows' cookies already use (FNV-1a of the chain's name, 32
 * bits) does not fit a 24-bit VNI beside the hop; VXLAN would need a chain number allocated,
 * stored and agreed by every node.
 */
export interface TunnelKey {
  /** The chain, 32 bits (services/chain-controller's chainKey). */
  chain: number;
  /** Which hop of the chain the packet goes to, 24 bits (direction and step). */
  hop: number;
}

/** Geneve's IANA UDP port; OVS's default for type=geneve ports. */
export const GENEVE_UDP_PORT = 6081;

/**
 * The Geneve option carrying the chain key: class 0xffff (experimental use, RFC 8926 §7), type
 * 0x80 (the high bit marks it critical: a receiver that does not know it drops the packet
 * rather than delivering it unsteered), 4 bytes. Mapped to tun_metadata0 on every bridge that
 * matches or sets it (`OpenFlow.ensureTlvMap`): OVS's TLV map is OpenFlow state, lost when
 * ovs-vswitchd restarts, so it is set again before each flow table is applied.
 */
export const CHAIN_OPTION: Readonly<TlvMapping> = {
  optionClass: 0xffff,
  type: 0x80,
  length: 4,
  field: 0,
};

export const MAX_TUNNEL_HOP = 0xff_ffff;

/** A tunnel key out of range; `context` has the key. */
export class TunnelKeyError extends OvsError {}

export function checkTunnelKey(key: TunnelKey): void {
  if (!Number.isInteger(key.chain) || key.chain < 0 || key.chain > 0xffff_ffff)
    throw new TunnelKeyError(`tunnel key chain ${key.chain} is not a 32-bit unsigned integer`, {
      key,
    });
  if (!Number.isInteger(key.hop) || key.hop < 0 || key.hop > MAX_TUNNEL_HOP)
    throw new TunnelKeyError(
      `tunnel key hop ${key.hop} does not fit Geneve's 24-bit VNI (0..${MAX_TUNNEL_HOP})`,
      { key },
    );
}

const hex = (n: number): string => `0x${n.toString(16)}`;

/** OpenFlow actions (ovs-ofctl syntax) that give a packet `key` and send it into `tunnelPort`. */
export function tunnelKeyActions(key: TunnelKey, tunnelPort: string): string {
  checkTunnelKey(key);
  return `set_field:${hex(key.hop)}->tun_id,set_field:${hex(key.chain)}->tun_metadata${CHAIN_OPTION.field},output:${tunnelPort}`;
}

/** The OpenFlow match (ovs-ofctl syntax) of packets that came out of a tunnel with `key`. */
export function tunnelKeyMatch(key: TunnelKey): string {
  checkTunnelKey(key);
  return `tun_id=${hex(key.hop)},tun_metadata${CHAIN_OPTION.field}=${hex(key.chain)}`;
}

/** One line of `ovs-ofctl dump-tlv-map`: an option mapped to a tun_metadata field. */
export interface TlvMapping {
  optionClass: number;
  type: number;
  length: number;
  field: number;
}

/** Parses `ovs-ofctl dump-tlv-map` output (its mapping table). */
export function parseTlvMap(text: string): TlvMapping[] {
  const out: TlvMapping[] = [];
  for (const m of text.matchAll(
    /^\s*0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\d+)\s+tun_metadata(\d+)\s*$/gim,
  ))
    out.push({
      optionClass: parseInt(m[1] ?? '', 16),
      type: parseInt(m[2] ?? '', 16),
      length: Number(m[3]),
      field: Number(m[4]),
    });
  return out;
}

/** Formats a mapping as ovs-ofctl add-tlv-map takes it. */
export function formatTlvMapping(m: TlvMapping): string {
  return `{class=${hex(m.optionClass)},type=${hex(m.type)},len=${m.length}}->tun_metadata${m.field}`;
}
