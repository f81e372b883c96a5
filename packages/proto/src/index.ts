export {
  LOADER_OPTIONS,
  PROTO_ROOT,
  ProtoNotFoundError,
  loadHealthV1,
  loadNetworkFunctionV1,
  loadProto,
} from './loader';
export {
  HEALTH_MAX_SERVICE_NAME,
  HEALTH_MAX_WATCHES,
  HealthService,
  type ServingStatus,
} from './health';
export {
  MAX_WATCH_STREAMS,
  MIN_STATS_INTERVAL_MS,
  WatchStreamLimit,
  type StreamEveryOptions,
  replyFrom,
  streamEvery,
  unaryCall,
  type UnaryMethod,
} from './grpc-helpers';
export type * as nfV1 from './nf-v1';
export type * as healthV1 from './health-v1';
export * as devicePluginV1beta1 from './deviceplugin-v1beta1';
export * as firewallV1 from './firewall-v1';
export * as routerV1 from './router-v1';
export * as chainV1 from './chain-v1';
export * as ipsecV1 from './ipsec-v1';
export type * as matchV1 from './match-v1';
export * as trafficGenV1 from './trafficgen-v1';
