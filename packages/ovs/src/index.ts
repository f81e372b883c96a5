export * from './errors';
export * from './atoms';
export { JsonStreamSplitter } from './json-stream';
export {
  OvsdbClient,
  type BackoffOptions,
  type Monitor,
  type MonitorRequest,
  type Operation,
  type OperationResult,
  type OvsdbClientOptions,
  type TableUpdates,
} from './ovsdb-client';
export {
  VSwitch,
  VSWITCH_DB,
  OvsNotFoundError,
  type BridgeInfo,
  type BridgeOptions,
  type InterfaceInfo,
  type PortInfo,
  type PortOptions,
} from './vswitch';
export { OpenFlowEcho } from './openflow-echo';
export {
  COUNTING_METER_RATE,
  OpenFlow,
  parseDumpFlows,
  parseDumpPorts,
  parseMeterStats,
  type FlowStats,
  type MeterStats,
  type OpenFlowTarget,
  type PortStats,
} from './openflow';
export {
  startOvsDpdk,
  DEFAULT_BRIDGE,
  OVS_VSWITCHD_DPDK,
  VSWITCH_SCHEMA,
  type OvsDpdk,
  type OvsDpdkOptions,
} from './lifecycle';
export {
  parseOvsRemote,
  formatOvsRemote,
  OvsRemoteError,
  certificateNames,
  checkPeerName,
  switchName,
  type OvsRemote,
  type OvsTls,
} from './remote';
export {
  CHAIN_OPTION,
  GENEVE_UDP_PORT,
  MAX_TUNNEL_HOP,
  TunnelKeyError,
  checkTunnelKey,
  formatTlvMapping,
  parseTlvMap,
  tunnelKeyActions,
  tunnelKeyMatch,
  type TlvMapping,
  type TunnelKey,
} from './tunnel-key';
export {
  DEFAULT_UNDERLAY_BRIDGE,
  TUNNEL_PEER_ID,
  TunnelSetupError,
  UNDERLAY_ADDRESS_ID,
  addTunnelPeer,
  afPacketDevargs,
  appctl,
  ensureTunnelPort,
  listTunnelPeers,
  readUnderlayAddress,
  removeTunnelPeer,
  setUpUnderlay,
  tunnelPortName,
  type SwitchHandle,
  type TunnelBridge,
  type TunnelPeer,
  type Underlay,
  type UnderlayOptions,
} from './underlay';
export { ATTACHMENT_EXTERNAL_IDS } from './attachment-ids';
export {
  HASHED_FOLDER,
  MAX_IFNAME_BYTES,
  UNIX_SOCKET_PATH_MAX,
  hashedFolderName,
  podFolderName,
  readableFolderName,
  type FolderIdentity,
} from './attachment-folder';
