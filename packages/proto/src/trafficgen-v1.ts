import type { ProtoGrpcType } from './generated/trafficgen';
import { loadProto } from './loader';

/** flowline.trafficgen.v1: the TrafficGenerator service and its messages. */
export function loadTrafficGenV1(): ProtoGrpcType['flowline']['trafficgen']['v1'] {
  return loadProto<ProtoGrpcType>('flowline/trafficgen/v1/trafficgen.proto').flowline.trafficgen.v1;
}

export type { Flow, Flow__Output } from './generated/flowline/trafficgen/v1/Flow';
export type { FlowResult, FlowResult__Output } from './generated/flowline/trafficgen/v1/FlowResult';
export type { Latency, Latency__Output } from './generated/flowline/trafficgen/v1/Latency';
export type { Protocol } from './generated/flowline/trafficgen/v1/Protocol';
export type { Results, Results__Output } from './generated/flowline/trafficgen/v1/Results';
export type { RunState } from './generated/flowline/trafficgen/v1/RunState';
export type {
  StartRequest,
  StartRequest__Output,
} from './generated/flowline/trafficgen/v1/StartRequest';
export type { StartResponse } from './generated/flowline/trafficgen/v1/StartResponse';
export type { Totals, Totals__Output } from './generated/flowline/trafficgen/v1/Totals';
export type {
  TrafficGeneratorClient,
  TrafficGeneratorHandlers,
} from './generated/flowline/trafficgen/v1/TrafficGenerator';
