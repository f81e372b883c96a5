export { foldChecksum, internetChecksum, pseudoHeaderSum, sumWords } from './checksum';
export { formatAddress, parsePrefix, PrefixError, type Prefix } from './ip';
export { BROADCAST_MAC, formatMac, MacError, parseMac } from './mac';
export * from './packets';
