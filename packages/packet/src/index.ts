export { foldChecksum, internetChecksum, pseudoHeaderSum, sumWords } from './checksum';
export {
  AddressError,
  addressPrefix,
  formatAddress,
  parseAddress,
  parseInterfaceAddress,
  parsePrefix,
  prefixContains,
  PrefixError,
  type Address,
  type InterfaceAddress,
  type Prefix,
} from './ip';
export { BROADCAST_MAC, formatMac, MacError, parseMac } from './mac';
export {
  formatProtocol,
  parseProtocol,
  PORT_PROTOCOLS,
  PROTOCOLS,
  ProtocolError,
} from './protocol';
export {
  matchFields,
  MatchError,
  parsePortRange,
  validateMatch,
  type Match,
  type MatchFields,
  type PortRangeFields,
} from './match';
export * from './packets';
