// Generated message and service types of flowline.nf.v1, under short names.
export type {
  GetInfoRequest,
  GetInfoRequest__Output,
} from './generated/flowline/nf/v1/GetInfoRequest';
export type {
  NetworkFunctionClient,
  NetworkFunctionDefinition,
  NetworkFunctionHandlers,
} from './generated/flowline/nf/v1/NetworkFunction';
export type {
  NetworkFunctionInfo,
  NetworkFunctionInfo__Output,
} from './generated/flowline/nf/v1/NetworkFunctionInfo';
export type { PortInfo, PortInfo__Output } from './generated/flowline/nf/v1/PortInfo';
export type { PortStats, PortStats__Output } from './generated/flowline/nf/v1/PortStats';
export type { StageStats, StageStats__Output } from './generated/flowline/nf/v1/StageStats';
export type {
  StatsSnapshot,
  StatsSnapshot__Output,
} from './generated/flowline/nf/v1/StatsSnapshot';
export type {
  WatchStatsRequest,
  WatchStatsRequest__Output,
} from './generated/flowline/nf/v1/WatchStatsRequest';
