export { foldChecksum, internetChecksum, pseudoHeaderSum, sumWords } from './checksum';
export {
  formatAddress,
  parseInterfaceAddress,
  parsePrefix,
  prefixContains,
  PrefixError,
  type InterfaceAddress,
  type Prefix,
} from './ip';
export { BROADCAST_MAC, formatMac, MacError, parseMac } from './mac';
export * from './packets';
