export {
  DpdkError,
  EalOptionError,
  EalInitError,
  EalStateError,
  DevargsError,
  PortError,
  PipelineError,
} from './errors';
export {
  initEal,
  currentEal,
  buildEalArgs,
  explainEalLog,
  hugetlbfsMounts,
  Eal,
  type EalOptions,
  type Lcores,
} from './eal';
export {
  leftoverFiles,
  ealHugepageFiles,
  ealRuntimeDirs,
  DEFAULT_EAL_RUN_DIR,
  DEFAULT_HUGE_DIR,
  EAL_PREFIX_RE,
  type EalFilesOptions,
  type EalPrefixMatch,
} from './eal-files';
export {
  devargs,
  validateDevargs,
  deviceName,
  isPciAddress,
  normalizePci,
  MAX_SOCKET_PATH,
} from './devargs';
export { Mempool, type MempoolOptions } from './mempool';
export { Port, type PortOptions, type LinkState, type PortStats } from './port';
export { VhostHandshakeWatch, VHOST_REDO_SETTLE_MS, type VhostHandshakeIo } from './vhost-watch';
export { PacketBatch } from './batch';
export {
  Pipeline,
  reasons,
  type PipelineSpec,
  type StageSpec,
  type L2FwdStage,
  type AclStage,
  type LpmStage,
  type ConntrackStage,
  type BurnStage,
  type PipelineCycles,
  type ConntrackTimeouts,
  type ConntrackCounters,
  CONNTRACK_DEFAULTS,
  MAX_CREATE_ACL_RULES,
  MAX_BACKOFF_SLEEP_US,
  MAX_INTERRUPT_WAIT_MS,
  type WorkerSpec,
  type Backoff,
  type FateAction,
  type PipelineCounters,
  type StageCounters,
  type RuleHits,
  RX_INTERRUPTS,
  type RxMode,
  type RxWaits,
} from './pipeline';
export { compileAcl, MAX_ACL_PRIORITY, type AclRule } from './acl';
export {
  ESP_ALGORITHMS,
  ESP_VDEVS,
  ESP_DEFAULT_REPLAY_WINDOW,
  ESP_MAX_REPLAY_WINDOW,
  ESP_MAX_SAS,
  ESP_MAX_POLICY_RULES,
  espSaConf,
  espPolicyConf,
  type EspPolicy,
  type EspPolicyHits,
  type EspAlgorithm,
  type EspSa,
  type EspSaCounters,
  type EspStage,
} from './esp';
export { compileRoutes, type RoutingTable, type Route, type NextHop } from './lpm';
export { buildPacket, ipv4Checksum, l3Offset, type PacketSpec } from './packet';
export {
  createJsForwarder,
  type JsForwarder,
  type JsForwarderOptions,
} from './examples/js-forwarder';
export { parsePacket } from './parse';
export {
  TrafficGenerator,
  TrafficGenError,
  latencyFromHistogram,
  flowResults,
  runSpan,
  type RunSpan,
  bucketRange,
  bucketOf,
  minFrameSize,
  frameSizeOf,
  IMIX_SIZES,
  IMIX_PATTERN,
  MAX_FRAME_SIZE,
  type TrafficGenSpec,
  type GenFlowSpec,
  type TrafficResults,
  type FlowResults,
  type LatencyStats,
} from './traffic-gen';
export {
  FrameReplay,
  FrameReplayError,
  type FrameReplaySpec,
  type FrameReplayCounters,
} from './frame-replay';
